"""The lab for the pytest suites (tests/lab, tests/reliability): its settings, fixtures and
helpers, importable from either directory."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import hvac
import psycopg2
import pytest
from psycopg2 import sql

LAB_SRC = Path(__file__).resolve().parent
LABCTL = LAB_SRC / "labctl"
sys.path.insert(0, str(LAB_SRC))
from lab import slot_holder  # noqa: E402  (the lab package is on the path from here)
from lab.settings import Lab  # noqa: E402


def _lab_env() -> dict[str, str]:
    out = subprocess.run([sys.executable, str(LABCTL), "env"], check=True,
                         capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        key, _sep, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    try:
        return _lab_env()
    except subprocess.CalledProcessError as err:
        pytest.fail(f"the lab is not up (run `make lab-up`): {err.stderr}")


@pytest.fixture(scope="session")
def iam_lab(lab):
    if lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off: labctl was not run as root, so no PAM service exists")
    return lab


def connect(lab: dict, user: str, password: str, sslmode: str = "verify-full",
            dbname: str = "postgres"):
    return psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]),
                            user=user, password=password, dbname=dbname, sslmode=sslmode,
                            sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"], connect_timeout=5)


def login_error(lab: dict, user: str, password: str, sslmode: str = "require") -> str:
    with pytest.raises(psycopg2.OperationalError) as err:
        connect(lab, user, password, sslmode).close()
    return str(err.value)


@pytest.fixture
def admin(lab):
    conn = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"])
    conn.autocommit = True
    yield conn.cursor()
    conn.close()


@pytest.fixture
def temp_role(admin):
    """Makes login roles for one test and drops them afterwards."""
    made = []

    def make(name: str, *, iam: bool = False, password: str | None = None) -> str:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        made.append(name)
        if iam:
            admin.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(name)))
        if password is not None:
            verifier = psycopg2.extensions.encrypt_password(password, name, admin.connection,
                                                            "scram-sha-256")
            admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(verifier)))
        return name

    yield make
    for name in made:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def create_admin_role(lab: dict, role: str, password: str) -> None:
    """A CREATEROLE login role (an RDS master user's stand-in) with password's SCRAM verifier,
    made by the superuser over the lab's socket; scenarios reset it away."""
    conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGSOCKET"], port=lab["PGAUTH_LAB_PGPORT"],
                            user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            verifier = psycopg2.extensions.encrypt_password(password, role, conn,
                                                            "scram-sha-256")
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier)))
    finally:
        conn.close()


def lab_client(lab: dict, service: str):
    return boto3.client(service, region_name=lab["AWS_REGION"],
                        endpoint_url=lab["AWS_ENDPOINT_URL"],
                        aws_access_key_id=lab["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=lab["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture
def rds(lab):
    return lab_client(lab, "rds")


@pytest.fixture
def secretsmanager(lab):
    return lab_client(lab, "secretsmanager")


@pytest.fixture
def vault(lab):
    return hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])


def run_labctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LABCTL), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


@contextlib.contextmanager
def scenario(name: str):
    done = run_labctl("scenario", name)
    assert done.returncode == 0, done.stderr
    try:
        yield json.loads(Path(_lab_env()["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
    finally:
        # the one scenario that outlives its seeding in a process: a test after it that
        # makes no scenario of its own must find free connection slots
        slot_holder.stop(Lab.from_env())


# The store backends are tested here against the real servers: the collection copy that
# `make collection` builds must be importable as ansible_collections.credops.pgauth.
# PGAUTH_BUILD points the suites at another copy (an older commit's, to show that a test
# fails on the code before a fix).
BUILD = Path(os.environ.get("PGAUTH_BUILD") or LAB_SRC.parent.parent / ".build")
if BUILD.is_dir():
    sys.path.insert(0, str(BUILD))


def lab_store_options(lab: dict) -> dict:
    return {"region": lab["AWS_REGION"], "endpoint_url": lab["AWS_ENDPOINT_URL"],
            "access_key": lab["AWS_ACCESS_KEY_ID"], "secret_key": lab["AWS_SECRET_ACCESS_KEY"],
            "url": lab["VAULT_ADDR"], "token": lab["VAULT_TOKEN"], "validate_certs": True}
