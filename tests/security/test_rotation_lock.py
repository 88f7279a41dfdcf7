"""Item 8 of the security review: roles belong to the cluster, advisory locks to one
database.  Two rotations of one role that connect to two databases must still exclude each
other, or the stores can end holding different passwords."""
from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from secsupport import run_tasks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))
from harness import wait_stopped

ROLE = "sec_lock_app"
OTHER_DB = "sec_lock_db"


@pytest.fixture
def second_database(admin):
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(OTHER_DB)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(OTHER_DB)))
    yield OTHER_DB
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(OTHER_DB)))


def rotate_task(lab: dict, store: dict, login_db: str) -> dict:
    return {"name": f"rotate from {login_db}", "credops.pgauth.pg_rotate": {
        "role": ROLE, "dbname": "postgres", "stores": [store],
        "login_host": lab["PGAUTH_LAB_PGHOST"], "login_port": int(lab["PGAUTH_LAB_PGPORT"]),
        "login_user": lab["PGAUTH_LAB_ADMIN_USER"],
        "login_password": lab["PGAUTH_LAB_ADMIN_PASSWORD"], "login_db": login_db,
        "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"]}}


def test_two_runs_on_two_databases_do_not_rotate_one_role_at_once(
        lab, tmp_path, temp_role, second_database, vault):
    temp_role(ROLE, password="Initial-pw-0123456789")
    path = f"security/lock/{uuid.uuid4().hex}"
    vault.secrets.kv.v2.create_or_update_secret(path=path, mount_point="secret", secret={
        "username": ROLE, "password": "Initial-pw-0123456789"})
    store = {"name": "vault-app", "type": "vault_kv2", "mount_point": "secret", "path": path,
             "format": "json"}
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    # the first run holds its lock and stops right after taking it
    first = run_tasks(lab, first_dir, [rotate_task(lab, store, "postgres")], verbosity="",
                      background=True,
                      env={"PGAUTH_FAILPOINT": "lock", "PGAUTH_FAILPOINT_ACTION": "stop"})
    stopped = wait_stopped(first)
    try:
        second = run_tasks(lab, second_dir, [rotate_task(lab, store, second_database)],
                           verbosity="")
        assert second.returncode != 0, "the second run rotated the role while the first held it"
        assert f"another rotation of role '{ROLE}' is in progress" in second.stdout
    finally:
        os.kill(stopped, signal.SIGCONT)
        output = first.communicate(timeout=120)[0]
    assert first.returncode == 0, output[-3000:]
    # the one rotation that ran left the store and the database in agreement
    held = vault.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                   raise_on_deleted_version=True)["data"]["data"]
    assert held["password"] != "Initial-pw-0123456789"
    psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=lab["PGAUTH_LAB_PGPORT"], user=ROLE,
                     password=held["password"], dbname="postgres", sslmode="verify-full",
                     sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"], connect_timeout=5).close()
