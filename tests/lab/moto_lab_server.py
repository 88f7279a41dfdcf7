"""moto_server with the lab's corrections, so the stand-in behaves like AWS.

Secrets Manager: moto's UpdateSecretVersionStage moves the AWSCURRENT label
but GetSecretValue without a stage keeps returning the old version (it reads
an internal default that only PutSecretValue/RotateSecret update).  AWS
returns the version that carries AWSCURRENT, and rotations depend on that.
"""
from __future__ import annotations

import os
import sys

from moto import server
from moto.rds.models import MasterUserSecret, RDSBackend
from moto.secretsmanager.models import SecretsManagerBackend

_original_update_stage = SecretsManagerBackend.update_secret_version_stage


def _update_stage_and_default(self, secret_id, version_stage, remove_from_version_id,
                              move_to_version_id):
    result = _original_update_stage(self, secret_id, version_stage, remove_from_version_id,
                                    move_to_version_id)
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


SecretsManagerBackend.update_secret_version_stage = _update_stage_and_default

# RDS: ModifyDBInstance(MasterUserPassword) changes the master user's password on the
# instance.  The lab's instances all stand for the one lab PostgreSQL, so the new password is
# set there (as a SCRAM verifier, over the superuser's Unix socket) as RDS would do it.
_original_modify_instance = RDSBackend.modify_db_instance


def _set_master_password(user: str, password: str) -> None:
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password
    conn = psycopg2.connect(host=os.environ["PGAUTH_LAB_PGSOCKET"],
                            port=os.environ["PGAUTH_LAB_PGPORT"], user="postgres",
                            dbname="postgres", application_name="moto-lab-rds")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            verifier = encrypt_password(password, user, conn, "scram-sha-256")
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}")
            cur.execute(statement.format(sql.Identifier(user), sql.Literal(verifier)))
    finally:
        conn.close()


def _modify_instance_and_master_password(self, db_instance_identifier, db_kwargs):
    password = db_kwargs.get("master_user_password")
    database = _original_modify_instance(self, db_instance_identifier, db_kwargs)
    if password and os.environ.get("PGAUTH_LAB_PGSOCKET"):
        _set_master_password(database.master_username, password)
    return database


RDSBackend.modify_db_instance = _modify_instance_and_master_password


# RDS-managed master passwords (ManageMasterUserPassword): moto's secret holds a fixed
# {"username": "admin", "password": "P@55w0rd!"} and its RotateMasterUserPassword only stages
# a copy.  RDS makes a random password for the real master user, sets it on the database and
# writes it into the secret as AWSCURRENT: so does the lab, for a master role that exists.
def _managed_secret_string(self) -> str:
    import json
    import secrets
    password = "rds-" + secrets.token_urlsafe(24)
    user = self.resource.master_username
    if os.environ.get("PGAUTH_LAB_PGSOCKET") and _role_exists(user):
        _set_master_password(user, password)
    return json.dumps({"username": user, "password": password})


def _role_exists(user: str) -> bool:
    import psycopg2
    conn = psycopg2.connect(host=os.environ["PGAUTH_LAB_PGSOCKET"],
                            port=os.environ["PGAUTH_LAB_PGPORT"], user="postgres",
                            dbname="postgres", application_name="moto-lab-rds")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def _rotate_managed_secret(self) -> None:
    import uuid
    self._status = "rotating"
    self.secretsmanager.put_secret_value(self.secret.arn, self._generate_secret_string(), None,
                                         str(uuid.uuid4()), ["AWSCURRENT"])


MasterUserSecret._generate_secret_string = _managed_secret_string
MasterUserSecret.rotate_secret = _rotate_managed_secret

if __name__ == "__main__":
    server.main(sys.argv[1:])
