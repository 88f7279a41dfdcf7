"""Incidents the lab can be put into: one per finding id as the project grows.

Every scenario starts from `reset` (no app roles, databases or secrets), then
seeds what it needs.  Passwords reach PostgreSQL only as SCRAM verifiers and
are never printed; `.lab/scenario.json` records what was made (no secrets) so
tests and playbooks can find the role, database and stores.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import botocore.auth
import psycopg2
from psycopg2 import sql

from . import slot_holder
from .bao_database import disable_database_engine, enable_database_engine
from .pgbouncer import PgBouncer
from .postgres import Postgres
from .scenarios_pooler import pooler_auth_stale
from .services import Moto, OpenBao, aws_client, vault_client
from .settings import HOST, RDS_INSTANCE, REGION, Lab

APP_ROLE = "app_user"
APP_DB = "appdb"
SECRET_ID = "lab/app_user"
VAULT_PATH = "lab/app_user"


def new_password() -> str:
    return "lab-" + secrets.token_urlsafe(24)


class Seeder:
    """Writes one credential into the database and into each store of the lab."""

    def __init__(self, lab: Lab, pg: Postgres, state: dict):
        self.lab, self.pg, self.state = lab, pg, state
        self.app_dir = lab.dir / "app"
        self.target: dict = {}          # overrides of the recorded target
        self.store_overrides: dict = {}  # store name -> extra keys of its store dict
        self.expect: list[str] = []      # the finding ids diagnose should name first
        self.meta: dict = {}             # more keys of scenario.json (consumers)
        # the names of the stores the app uses
        self.stores_used = ["aws-app", "vault-app", "app-config", "app-env"]
        # the logs diagnose should read: from the start of this scenario, not the earlier ones
        self.started = dt.datetime.now(dt.timezone.utc)

    def credential(self, password: str) -> dict:
        return {"username": APP_ROLE, "password": password, "host": HOST,
                "port": self.lab.pg_port, "dbname": APP_DB}

    def stores(self) -> list[dict]:
        return [{**store, **self.store_overrides.get(store["name"], {})}
                for store in self._stores()
                if store["name"] in self.stores_used]

    def _stores(self) -> list[dict]:
        return [
            {"name": "aws-app", "type": "aws_secretsmanager", "secret_id": SECRET_ID,
             "format": "json"},
            {"name": "vault-app", "type": "vault_kv2", "mount_point": "secret",
             "path": VAULT_PATH, "format": "json"},
            {"name": "app-config", "type": "file", "path": str(self.app_dir / "config.yml"),
             "format": "yaml", "key": "database", "value_format": "json"},
            {"name": "app-env", "type": "file", "path": str(self.app_dir / "app.env"),
             "format": "dotenv", "key": "DATABASE_URL"},
            # only in the scenarios that write them (stores_used)
            {"name": "k8s-secret", "type": "file", "path": str(self.app_dir / "secret.yaml"),
             "format": "k8s_secret", "document": "app-db",
             "keys": {"username": "username", "password": "password"}},
            {"name": "app-properties", "type": "file",
             "path": str(self.app_dir / "application.properties"), "format": "properties",
             "keys": {"dsn": "app.datasource.url", "username": "app.datasource.username",
                      "password": "app.datasource.password"}},
        ]

    def write_k8s_and_properties(self, password: str) -> None:
        """A Kubernetes Secret manifest (beside a ConfigMap, in one file) and a Spring-style
        .properties file, both holding app_user's credential."""
        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()
        manifest = self.app_dir / "secret.yaml"
        manifest.write_text(
            "# the app's manifests (credops.pgauth lab)\napiVersion: v1\nkind: ConfigMap\n"
            "metadata:\n  name: app-config\ndata:\n  LOG_LEVEL: info\n---\napiVersion: v1\n"
            "kind: Secret\nmetadata:\n  name: app-db\ntype: Opaque\ndata:\n"
            f"  username: {b64(APP_ROLE)}\n  password: {b64(password)}  # rotated by credops\n")
        manifest.chmod(0o600)
        url = (f"postgresql://{HOST}:{self.lab.pg_port}/{APP_DB}?sslmode=verify-full"
               f"&sslrootcert={quote(str(self.pg.ca_cert), safe='/')}")
        properties = self.app_dir / "application.properties"
        properties.write_text("# Spring settings (credops.pgauth lab)\n"
                              "spring.application.name = lab-app\n"
                              f"app.datasource.url={url}\n"
                              f"app.datasource.username={APP_ROLE}\n"
                              f"app.datasource.password={password}\n")
        properties.chmod(0o600)

    def create_role(self, password: str | None, *extra_sql: str) -> None:
        """app_user and appdb; extra_sql runs after, with {role} as the quoted role name."""
        with self.pg.admin_cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
            if password is not None:
                self.pg.set_password(cur, APP_ROLE, password)
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(APP_DB), sql.Identifier(APP_ROLE)))
            for statement in extra_sql:
                cur.execute(sql.SQL(statement).format(role=sql.Identifier(APP_ROLE)))

    def write_stores(self, password: str, vault_password: str | None = None,
                     aws_password: str | None = None, dsn: str | None = None,
                     **fields) -> None:
        """Every store gets password unless given its own; fields change the credential."""
        cred = {**self.credential(password), **fields}
        sm = aws_client(self.lab, "secretsmanager", self.state)
        aws_cred = {**cred, "password": aws_password or password, "engine": "postgres"}
        sm.create_secret(Name=SECRET_ID, Description="credops.pgauth lab: app_user",
                         SecretString=json.dumps(aws_cred))
        vault_client(self.lab).secrets.kv.v2.create_or_update_secret(
            path=VAULT_PATH, mount_point="secret",
            secret={**cred, "password": vault_password or password})
        self.app_dir.mkdir(parents=True, exist_ok=True)
        userinfo = quote(APP_ROLE, safe="") + (f":{quote(password, safe='')}" if password else "")
        dsn = dsn or (f"postgresql://{userinfo}"
                      f"@{HOST}:{cred['port']}/{quote(cred['dbname'], safe='')}"
                      f"?sslmode=verify-full&sslrootcert={quote(str(self.pg.ca_cert), safe='/')}")
        config = self.app_dir / "config.yml"
        config.write_text("# the app's config (credops.pgauth lab)\napp:\n  name: lab-app\n"
                          "database:\n" + "".join(
                              f"  {key}: {json.dumps(cred[field])}\n" for key, field in (
                                  ("host", "host"), ("port", "port"), ("dbname", "dbname"),
                                  ("user", "username"), ("password", "password"))))
        if cred.get("sslmode"):
            with config.open("a") as out:
                out.write(f"  sslmode: {cred['sslmode']}\n")
        if cred.get("auth"):
            with config.open("a") as out:
                out.write(f"  auth: {cred['auth']}\n")
        config.chmod(0o600)
        env_file = self.app_dir / "app.env"
        env_file.write_text("# the app's environment (credops.pgauth lab)\n"
                            "APP_NAME=lab-app\n"
                            f"DATABASE_URL={dsn}\n")
        env_file.chmod(0o600)

    def record(self, name: str, description: str) -> None:
        meta = {
            "scenario": name,
            "description": description,
            "target": {"host": HOST, "port": self.lab.pg_port, "dbname": APP_DB,
                       "role": APP_ROLE, "auth": "password", "sslmode": "verify-full",
                       "sslrootcert": str(self.pg.ca_cert),
                       "rds_instance_id": RDS_INSTANCE, "region": REGION, **self.target},
            "stores": self.stores(),
            "logs": {"files": [str(self.pg.logfile), str(self.pg.iam_log)],
                     "since": self.started.isoformat(timespec="milliseconds")},
            "expect": self.expect,
            "consumers": [],
            **self.meta,
        }
        (self.lab.dir / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n")


def healthy(seed: Seeder) -> None:
    password = new_password()
    seed.create_role(password)
    seed.write_stores(password)


def password_mismatch(seed: Seeder) -> None:
    """The classic outage: the database got a new password, no store did."""
    seed.create_role(new_password())
    seed.write_stores(new_password())
    seed.expect = ["store_password_mismatch"]


def password_mismatch_k8s_properties(seed: Seeder) -> None:
    """The credential lives in a Kubernetes Secret manifest and a .properties file (and in
    Secrets Manager, the rotation's primary): the database got a new password, they did not."""
    seed.create_role(new_password())
    stale = new_password()
    seed.write_stores(stale)
    seed.write_k8s_and_properties(stale)
    seed.stores_used = ["aws-app", "k8s-secret", "app-properties"]
    seed.expect = ["store_password_mismatch"]


def _role_state(*extra_sql: str, password: bool = True):
    def scenario(seed: Seeder) -> None:
        secret = new_password()
        seed.create_role(secret if password else None, *extra_sql)
        seed.write_stores(secret)
    return scenario


def role_missing(seed: Seeder) -> None:
    secret = new_password()
    seed.create_role(secret, "REASSIGN OWNED BY {role} TO postgres", "DROP ROLE {role}")
    seed.write_stores(secret)


def role_password_hash_incompatible(seed: Seeder) -> None:
    """An md5 hash where hba says scram-sha-256 (log_statement off: the plaintext stays out)."""
    secret = new_password()
    seed.create_role(None)
    with seed.pg.admin_cursor() as cur:
        cur.execute("SET log_statement = 'none'")
        cur.execute("SET password_encryption = 'md5'")
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}")
        cur.execute(statement.format(sql.Identifier(APP_ROLE), sql.Literal(secret)))
    seed.write_stores(secret)


def store_placeholder_password(seed: Seeder) -> None:
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, aws_password="DB")


def stores_disagree(seed: Seeder) -> None:
    """Vault was missed by the last rotation; Secrets Manager and the env file are right."""
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, vault_password=new_password())


def store_dsn_invalid(seed: Seeder) -> None:
    """The DATABASE_URL was rebuilt without URL-encoding a password that has an '@'."""
    secret = "lab@" + new_password()
    seed.create_role(secret)
    seed.write_stores(secret, dsn=f"postgresql://{APP_ROLE}:{secret}@{HOST}:"
                                  f"{seed.lab.pg_port}/{APP_DB}?sslmode=verify-full")


def store_unreadable(seed: Seeder) -> None:
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret)
    seed.store_overrides = {"vault-app": {"url": "http://127.0.0.1:1"}}


def database_missing(seed: Seeder) -> None:
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, dbname="appdb_gone")
    seed.target = {"dbname": "appdb_gone"}


def server_unreachable(seed: Seeder) -> None:
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, port=1)
    seed.target = {"port": 1}


def iam_role_blocks_password(seed: Seeder) -> None:
    """The app sends a password with libpq's default sslmode=prefer: PAM refuses it over TLS,
    then libpq retries without TLS and gets the hba reject, a red herring."""
    secret = new_password()
    seed.create_role(secret, "GRANT rds_iam TO {role}")
    seed.write_stores(secret, sslmode="prefer", dsn=(
        f"postgresql://{APP_ROLE}:{quote(secret, safe='')}@{HOST}:{seed.lab.pg_port}/"
        f"{APP_DB}?sslmode=prefer"))


def _iam_app(*extra_sql: str, iam_flag: bool = True, sslmode: str = "verify-full"):
    """The app uses IAM tokens: stores say auth=iam and hold no password."""
    def scenario(seed: Seeder) -> None:
        seed.create_role(None, *extra_sql)
        seed.write_stores("", auth="iam", sslmode=sslmode)
        seed.target = {"auth": "iam", "sslmode": sslmode}
        if not iam_flag:
            Moto(seed.lab).ensure_rds_instance(seed.state, iam_enabled=False)
    return scenario


def _hba_variant(variant: str, sslmode: str):
    """Working credentials, but the server's hba rules refuse how the app connects."""
    def scenario(seed: Seeder) -> None:
        secret = new_password()
        seed.create_role(secret)
        seed.write_stores(secret, sslmode=sslmode, dsn=(
            f"postgresql://{APP_ROLE}:{quote(secret, safe='')}@{HOST}:{seed.lab.pg_port}/"
            f"{APP_DB}?sslmode={sslmode}&sslrootcert={quote(str(seed.pg.ca_cert), safe='/')}"))
        if seed.pg.write_hba(seed.pg.hba_text(variant)):
            seed.pg.reload()
    return scenario


def _iam_token(seed: Seeder, age_minutes: int = 0) -> str:
    """An RDS IAM token for app_user signed age_minutes ago with the lab's key."""
    rds = aws_client(seed.lab, "rds", seed.state)
    if not age_minutes:
        return rds.generate_db_auth_token(HOST, seed.lab.pg_port, APP_ROLE)
    real_now = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = (
        lambda *args, **kw: real_now(*args, **kw) - dt.timedelta(minutes=age_minutes))
    try:
        return rds.generate_db_auth_token(HOST, seed.lab.pg_port, APP_ROLE)
    finally:
        botocore.auth.get_current_datetime = real_now


def iam_token_stale(seed: Seeder) -> None:
    """IAM works: a connection logs in with a fresh token; a pool then opens a new connection
    with the same token 16 minutes later, and PAM refuses it."""
    _iam_app("GRANT rds_iam TO {role}")(seed)
    login = {"host": HOST, "port": seed.lab.pg_port, "user": APP_ROLE, "dbname": APP_DB,
             "sslmode": "verify-full", "sslrootcert": str(seed.pg.ca_cert), "connect_timeout": 5}
    with contextlib.suppress(psycopg2.OperationalError):  # IAM emulation off: no success logged
        psycopg2.connect(password=_iam_token(seed), **login).close()
    time.sleep(0.01)  # the failure is logged strictly after the success
    with contextlib.suppress(psycopg2.OperationalError):
        psycopg2.connect(password=_iam_token(seed, age_minutes=16), **login).close()


def iam_policy_denies_connect(seed: Seeder) -> None:
    """The app's IAM role may rds-db:connect, but as another database user."""
    _iam_app("GRANT rds_iam TO {role}")(seed)
    iam = aws_client(seed.lab, "iam", seed.state)
    rds = aws_client(seed.lab, "rds", seed.state)
    db = rds.describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE)["DBInstances"][0]
    account = db["DBInstanceArn"].split(":")[4]
    other = f"arn:aws:rds-db:{REGION}:{account}:dbuser:{db['DbiResourceId']}/reporting_user"
    seed.target["iam_principal_arn"] = Moto(seed.lab).ensure_app_principal(
        seed.state, "lab-app", [{"Effect": "Allow", "Action": "rds-db:connect",
                                 "Resource": other}], iam)


def auth_failures_in_logs(seed: Seeder) -> None:
    """Everything works now, but the log shows a burst of failed logins."""
    healthy(seed)
    for _attempt in range(5):
        with contextlib.suppress(psycopg2.OperationalError):
            psycopg2.connect(host=HOST, port=seed.lab.pg_port, user=APP_ROLE, dbname=APP_DB,
                             password="not-the-password", sslmode="require",
                             connect_timeout=5).close()


def database_connect_denied(seed: Seeder) -> None:
    """The database's CONNECT privilege was revoked from PUBLIC, and the role has no grant of
    its own (the database belongs to someone else)."""
    _role_state("ALTER DATABASE appdb OWNER TO postgres",
                "REVOKE CONNECT ON DATABASE appdb FROM PUBLIC")(seed)


def role_password_expiring(seed: Seeder) -> None:
    """VALID UNTIL is tomorrow: everything works today."""
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat(
        timespec="seconds")
    _role_state(f"ALTER ROLE {{role}} VALID UNTIL '{tomorrow}'")(seed)


def store_target_mismatch(seed: Seeder) -> None:
    """The app's DATABASE_URL names the role with a typo; its password is the right one."""
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, dsn=(
        f"postgresql://app_usr:{quote(secret, safe='')}@{HOST}:{seed.lab.pg_port}/{APP_DB}"
        f"?sslmode=verify-full&sslrootcert={quote(str(seed.pg.ca_cert), safe='/')}"))


def store_unreadable_missing(seed: Seeder) -> None:
    """A Vault path with a typo: the secret the store names does not exist."""
    healthy(seed)
    seed.store_overrides = {"vault-app": {"path": VAULT_PATH + "_typo"}}
    seed.expect = ["store_unreadable"]


def rotation_incomplete(seed: Seeder) -> None:
    """A rotation died after ALTER ROLE: Secrets Manager's AWSPENDING holds what the database
    has, AWSCURRENT and the other stores the old password."""
    old, new = new_password(), new_password()
    seed.create_role(new)
    seed.write_stores(old)
    sm = aws_client(seed.lab, "secretsmanager", seed.state)
    sm.put_secret_value(SecretId=SECRET_ID, VersionStages=["AWSPENDING"],
                        SecretString=json.dumps({**seed.credential(new), "engine": "postgres"}))


def store_password_whitespace(seed: Seeder) -> None:
    """`echo "$PW" | vault kv put ...`: the Vault copy ends with a newline."""
    secret = new_password()
    seed.create_role(secret)
    seed.write_stores(secret, vault_password=secret + "\n")


def rotation_conflict(seed: Seeder) -> None:
    """OpenBao's database engine manages app_user with a static role; the stores hold the
    password it set, so every login works today."""
    seed.create_role(new_password())
    seed.write_stores(enable_database_engine(seed.lab, seed.pg, seed.state, APP_ROLE))


def server_too_many_clients(seed: Seeder) -> None:
    """Another client leaks connections until no slot is left: the app's logins are refused
    (53300); superusers still get in on the reserved slots."""
    healthy(seed)
    with seed.pg.admin_cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(
            slot_holder.HOLDER_ROLE)))
    slot_holder.start(seed.lab, seed.pg.sock)


MISMATCH_DESCRIPTION = ("app_user's password in Secrets Manager, Vault, the app's config "
                        "file and its DATABASE_URL differs from the database (28P01)")
K8S_DESCRIPTION = ("app_user's password in Secrets Manager, a Kubernetes Secret manifest and "
                   "a .properties file differs from the database (28P01)")
_EXPIRED = "ALTER ROLE {role} VALID UNTIL '2001-01-01'"
SCENARIOS: dict[str, tuple[Callable[[Seeder], None], str]] = {
    "healthy": (healthy, "app_user logs in with the password every store holds"),
    "password_mismatch": (password_mismatch, MISMATCH_DESCRIPTION),
    "password_mismatch_k8s_properties": (password_mismatch_k8s_properties, K8S_DESCRIPTION),
    "role_missing": (role_missing, "the stores name app_user, the role does not exist"),
    "role_cannot_login": (_role_state("ALTER ROLE {role} NOLOGIN"), "app_user is NOLOGIN"),
    "role_password_expired": (_role_state(_EXPIRED), "app_user's VALID UNTIL is in the past"),
    "role_password_missing": (_role_state(password=False), "app_user has no password"),
    "role_password_hash_incompatible": (role_password_hash_incompatible,
                                        "app_user's password is an md5 hash; hba wants SCRAM"),
    "connection_limit_reached": (_role_state("ALTER ROLE {role} CONNECTION LIMIT 0"),
                                 "app_user has CONNECTION LIMIT 0"),
    "store_placeholder_password": (store_placeholder_password,
                                   "Secrets Manager holds the placeholder 'DB'"),
    "stores_disagree": (stores_disagree, "Vault holds an old password; the others are right"),
    "store_dsn_invalid": (store_dsn_invalid,
                          "the app's DATABASE_URL has an unencoded '@' in the password"),
    "store_unreadable": (store_unreadable, "the Vault store cannot be reached"),
    "database_missing": (database_missing, "the stores name a database that does not exist"),
    "server_unreachable": (server_unreachable, "the stores point at a closed port"),
    "iam_role_blocks_password": (iam_role_blocks_password,
                                 "app_user is in rds_iam; the app sends a password"),
    "iam_role_not_granted": (_iam_app(), "the app uses IAM tokens; app_user is not in rds_iam"),
    "iam_disabled_on_instance": (_iam_app("GRANT rds_iam TO {role}", iam_flag=False),
                                 "the app uses IAM; lab-db has IAM authentication off"),
    "iam_tls_missing": (_iam_app("GRANT rds_iam TO {role}", sslmode="disable"),
                        "the app uses IAM tokens without TLS"),
    "tls_required": (_hba_variant("force_ssl", "disable"),
                     "the server rejects plain TCP (rds.force_ssl); the app uses sslmode=disable"),
    "no_hba_entry": (_hba_variant("admin_db_only", "verify-full"),
                     "pg_hba.conf has no rule for the app's database"),
    "iam_token_stale": (iam_token_stale,
                        "an IAM login worked, then a new connection reused the old token"),
    "iam_policy_denies_connect": (iam_policy_denies_connect,
                                  "the app's IAM role may connect only as another user"),
    "auth_failures_in_logs": (auth_failures_in_logs,
                              "logins work, the log shows recent failures"),
    "database_connect_denied": (database_connect_denied,
                                "CONNECT on appdb was revoked from PUBLIC; app_user has no grant"),
    "database_not_accepting": (_role_state("ALTER DATABASE appdb ALLOW_CONNECTIONS false"),
                               "appdb has ALLOW_CONNECTIONS false"),
    "role_password_expiring": (role_password_expiring, "app_user's VALID UNTIL is tomorrow"),
    "store_target_mismatch": (store_target_mismatch,
                              "the app's DATABASE_URL names app_usr, not app_user"),
    "rotation_incomplete": (rotation_incomplete,
                            "AWSPENDING holds the database's password, the rest the old one"),
    "store_password_whitespace": (store_password_whitespace,
                                  "the Vault copy of the password ends with a newline"),
    "rotation_conflict": (rotation_conflict,
                          "OpenBao's database engine manages app_user (a static role)"),
    "store_unreadable_missing": (store_unreadable_missing,
                                 "the Vault store's path has a typo: no such secret"),
    "server_too_many_clients": (server_too_many_clients,
                                "another client holds every connection slot"),
    "login_failed": (_hba_variant("ldap_app", "verify-full"),
                     "pg_hba.conf sends app_user to an LDAP server that is down"),
    "pooler_auth_stale": (pooler_auth_stale, ("the app connects through PgBouncer, whose "
                                              "auth_file holds app_user's old verifier")),
}


def reset(lab: Lab, pg: Postgres, state: dict) -> None:
    # before the roles go: a mount left behind would rotate a dropped role every day
    disable_database_engine(lab)
    slot_holder.stop(lab)
    PgBouncer(lab, pg).reset(state)
    pg.reset_objects()
    Moto(lab).reset(state)
    OpenBao(lab).reset()
    app_dir = lab.dir / "app"
    if app_dir.exists():
        for path in app_dir.iterdir():
            path.unlink()
    (lab.dir / "scenario.json").unlink(missing_ok=True)


def apply(lab: Lab, pg: Postgres, state: dict, name: str) -> str:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    seed_fn, description = SCENARIOS[name]
    reset(lab, pg, state)
    seeder = Seeder(lab, pg, state)
    seed_fn(seeder)
    # scenarios are named after the finding diagnose should put first
    seeder.expect = seeder.expect or ([] if name == "healthy" else [name])
    seeder.record(name, description)
    return description


def scenario_file(lab: Lab) -> Path:
    return lab.dir / "scenario.json"
