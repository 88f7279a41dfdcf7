"""Other rotators (rotation_conflict's facts) against the lab's real moto, OpenBao and
PostgreSQL: a rotation Lambda, an RDS-managed master secret, an OpenBao database-engine
static role; and no false alarm on plain stores."""
from __future__ import annotations

import contextlib
import io
import json
import secrets
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import hvac
import psycopg2
import pytest
from lab.bao_database import admin_role, disable_database_engine, enable_database_engine
from lab.postgres import Postgres
from lab.settings import Lab
from labfixtures import connect, lab_client, lab_store_options
from psycopg2 import sql

from ansible_collections.credops.pgauth.plugins.module_utils.conflicts import other_rotators


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def lab_settings(env: dict) -> Lab:
    """The lab's settings object (for the lab helpers) from `labctl env`'s values."""
    return Lab(dir=Path(env["PGAUTH_LAB_DIR"]), pg_port=int(env["PGAUTH_LAB_PGPORT"]),
               moto_port=urlsplit(env["AWS_ENDPOINT_URL"]).port,
               vault_port=urlsplit(env["VAULT_ADDR"]).port)


@pytest.fixture
def options(lab):
    return lab_store_options(lab)


@pytest.fixture
def aws_secret(secretsmanager):
    """Makes Secrets Manager secrets for one test and deletes them afterwards."""
    made = []

    def make(**extra) -> str:
        name = unique("conflict-test/app")
        secretsmanager.create_secret(Name=name, SecretString=json.dumps(
            {"username": "app_user", "password": "not-used-" + secrets.token_hex(8)}), **extra)
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(secretsmanager.exceptions.ResourceNotFoundException):
            secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def rotation_lambda(lab):
    """A Lambda function on moto to rotate with (moto's RotateSecret wants the function to
    exist, but never invokes it with RotateImmediately=False, so no Docker is needed)."""
    iam, lam = lab_client(lab, "iam"), lab_client(lab, "lambda")
    name = unique("conflict-test-rotator")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    arn = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                              Handler="index.handler",
                              Code={"ZipFile": code.getvalue()})["FunctionArn"]
    yield arn
    lam.delete_function(FunctionName=name)
    iam.delete_role(RoleName=name)


@pytest.fixture(scope="module")
def bao_static_role(lab):
    """A throwaway PostgreSQL role managed by an OpenBao static role on a throwaway mount:
    (settings, mount, role, password OpenBao set, seconds enable took)."""
    settings = lab_settings(lab)
    pg = Postgres(settings)
    role, mount = unique("conflict_bao"), unique("database-test")
    with pg.admin_cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        started = time.monotonic()
        password = enable_database_engine(settings, pg, settings.state(), role, mount=mount)
        took = time.monotonic() - started
        yield settings, mount, role, password, took
    finally:
        disable_database_engine(settings, mount=mount)
        with pg.admin_cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def kv2_store(vault, name: str, **extra) -> dict:
    path = unique("conflict-test/app")
    vault.secrets.kv.v2.create_or_update_secret(path=path, mount_point="secret",
                                                secret={"username": "x", "password": "y"})
    return {"name": name, "type": "vault_kv2", "mount_point": "secret", "path": path,
            "format": "json", **extra}


@pytest.fixture
def limited_token(vault):
    """Makes Vault tokens with exactly one policy; the policies go afterwards."""
    made = []

    def make(policy: str) -> str:
        name = unique("conflict-test")
        vault.sys.create_or_update_policy(name=name, policy=policy)
        made.append(name)
        return vault.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]

    yield make
    for name in made:
        vault.sys.delete_policy(name)


# -- Secrets Manager ------------------------------------------------------------------------

def test_rotation_lambda_on_the_secret_is_another_rotator(options, secretsmanager, aws_secret,
                                                          rotation_lambda):
    secret = aws_secret()
    secretsmanager.rotate_secret(SecretId=secret, RotationLambdaARN=rotation_lambda,
                                 RotationRules={"AutomaticallyAfterDays": 30},
                                 RotateImmediately=False)
    store = {"name": "aws-app", "type": "aws_secretsmanager", "secret_id": secret,
             "format": "json"}
    rotators, errors = other_rotators([store], options, "app_user")
    assert errors == []
    assert len(rotators) == 1, rotators
    found = rotators[0]
    assert found["store"] == "aws-app" and found["rotator"] == "secretsmanager_rotation"
    assert found["detail"]["rotation_lambda_arn"] == rotation_lambda
    assert found["detail"]["rotation_rules"]["AutomaticallyAfterDays"] == 30
    assert found["detail"]["secret_id"] == secret and found["detail"]["rotation_enabled"]
    assert "not-used-" not in json.dumps(rotators, default=str)


def test_rds_managed_master_secret_is_another_rotator(lab, options):
    rds, sm = lab_client(lab, "rds"), lab_client(lab, "secretsmanager")
    instance = unique("conflict-test-db")
    made = rds.create_db_instance(
        DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="conflict_master", ManageMasterUserPassword=True,
        Port=int(lab["PGAUTH_LAB_PGPORT"]))["DBInstance"]
    arn = made["MasterUserSecret"]["SecretArn"]
    try:
        store = {"name": "rds-master", "type": "aws_secretsmanager", "secret_id": arn}
        rotators, errors = other_rotators([store], options, "conflict_master")
        assert errors == []
        assert [(r["store"], r["rotator"]) for r in rotators] == [
            ("rds-master", "rds_managed_secret")]
        detail = rotators[0]["detail"]
        assert detail["secret_id"].startswith("rds!") and detail["arn"] == arn
        assert detail["owning_service"] == "rds"
        assert detail["rds_resources"]["aws:rds:primaryDBInstanceArn"] == made["DBInstanceArn"]
        master = sm.get_secret_value(SecretId=arn)["SecretString"]
        assert json.loads(master)["password"] not in json.dumps(rotators, default=str)
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


# -- OpenBao database engine ----------------------------------------------------------------

def test_enable_database_engine_sets_a_working_password_and_logs_no_plaintext(
        lab, bao_static_role):
    settings, mount, role, password, took = bao_static_role
    print(f"enable_database_engine took {took:.3f}s")
    assert took < 10
    connect(lab, role, password).close()  # the password OpenBao set, over verify-full TLS
    pg_log = Path(lab["PGAUTH_LAB_PGLOG"]).read_text(errors="replace")
    assert password not in pg_log  # OpenBao sent a SCRAM verifier (log_statement=all)
    with Postgres(settings).admin_cursor() as cur:
        cur.execute("SELECT rolcreaterole, rolsuper FROM pg_roles WHERE rolname = %s",
                    (admin_role(mount),))
        assert cur.fetchone() == (True, False)


def test_vault_static_role_for_the_role_is_another_rotator(
        options, vault, bao_static_role, monkeypatch):
    _settings, mount, role, password, _took = bao_static_role
    listed = []
    real_list = hvac.api.secrets_engines.Database.list_static_roles

    def counting_list(self, *args, **kwargs):
        listed.append(kwargs.get("mount_point"))
        return real_list(self, *args, **kwargs)

    monkeypatch.setattr(hvac.api.secrets_engines.Database, "list_static_roles", counting_list)
    stores = [kv2_store(vault, "vault-app"), kv2_store(vault, "vault-other"),
              {"name": "vault-v1", "type": "vault_kv1", "mount_point": "kv1", "path": "nope"}]
    rotators, errors = other_rotators(stores, options, role)
    assert errors == []
    mine = [r for r in rotators if r["detail"]["mount"] == f"{mount}/"]
    assert len(mine) == 1, rotators
    found = mine[0]
    assert found["store"] == "vault-app" and found["rotator"] == "vault_database_static_role"
    assert found["detail"]["static_role"] == "app"
    assert found["detail"]["db_name"] == "lab-postgres"
    assert found["detail"]["rotation_period"] == 86400
    assert found["detail"]["stores"] == ["vault-app", "vault-other", "vault-v1"]
    assert listed.count(mount) == 1  # one Vault: asked once, not once per store
    assert password not in json.dumps(rotators, default=str)
    # PostgreSQL role names are case-sensitive, and so is the match
    assert other_rotators(stores, options, role.upper()) == ([], [])


def test_token_without_sys_mounts_still_finds_the_mounts_it_may_read(
        options, vault, bao_static_role, limited_token):
    _settings, mount, role, _password, _took = bao_static_role
    store = kv2_store(vault, "vault-app")
    token = limited_token(f'path "secret/data/{store["path"]}" {{ capabilities = ["read"] }}\n'
                          f'path "{mount}/static-roles" {{ capabilities = ["list"] }}\n'
                          f'path "{mount}/static-roles/*" {{ capabilities = ["read"] }}\n')
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=options["url"], token=token).sys.list_mounted_secrets_engines()
    rotators, errors = other_rotators([store], {**options, "token": token}, role)
    assert errors == []
    assert [(r["rotator"], r["detail"]["mount"]) for r in rotators] == [
        ("vault_database_static_role", f"{mount}/")]


# -- no false alarm -------------------------------------------------------------------------

def test_plain_stores_have_no_other_rotator(options, vault, aws_secret, tmp_path):
    config = tmp_path / "app.env"
    config.write_text("DATABASE_URL=postgresql://app_user:pw@127.0.0.1/appdb\n")
    stores = [
        {"name": "aws-plain", "type": "aws_secretsmanager", "secret_id": aws_secret(),
         "format": "json"},
        {"name": "aws-missing", "type": "aws_secretsmanager",
         "secret_id": unique("conflict-test/none")},
        kv2_store(vault, "vault-plain"),
        {"name": "app-env", "type": "file", "path": str(config), "format": "dotenv",
         "key": "DATABASE_URL"},
    ]
    assert other_rotators(stores, options, unique("conflict_plain")) == ([], [])
    assert other_rotators([], options, "app_user") == ([], [])


def test_app_token_that_reads_only_its_secret_is_no_false_alarm(options, vault, limited_token):
    store = kv2_store(vault, "vault-app")
    token = limited_token(f'path "secret/data/{store["path"]}" {{ capabilities = ["read"] }}\n')
    assert other_rotators([store], {**options, "token": token}, "app_user") == ([], [])


# -- what cannot be asked is an error string, never an exception ----------------------------

def test_refused_everywhere_is_an_error_naming_the_store(options, vault, monkeypatch,
                                                         limited_token):
    store = kv2_store(vault, "vault-app")
    token = limited_token(f'path "secret/data/{store["path"]}" {{ capabilities = ["read"] }}\n')
    real_get = hvac.adapters.JSONAdapter.get

    def no_ui_mounts(self, url, *args, **kwargs):
        if "sys/internal/ui/mounts" in url:  # an older Vault, or a policy that denies it
            raise hvac.exceptions.Forbidden("permission denied")
        return real_get(self, url, *args, **kwargs)

    monkeypatch.setattr(hvac.adapters.JSONAdapter, "get", no_ui_mounts)
    rotators, errors = other_rotators([store], {**options, "token": token}, "app_user")
    assert rotators == []
    assert len(errors) == 1 and "'vault-app'" in errors[0]
    assert "database/static-roles" in errors[0] and "cannot be ruled out" in errors[0]
    assert token not in errors[0]


def test_unreachable_and_bad_stores_are_errors(options, vault):
    bogus = "hvs." + secrets.token_urlsafe(16)
    stores = [
        {"name": "vault-down", "type": "vault_kv2", "path": "x", "url": "http://127.0.0.1:1"},
        {"name": "vault-badtoken", "type": "vault_kv2", "path": "x"},
        {"name": "vault-nonamespace", "type": "vault_kv2", "path": "x", "namespace": "nowhere"},
        {"name": "aws-down", "type": "aws_secretsmanager", "secret_id": "x",
         "endpoint_url": "http://127.0.0.1:1"},
        {"name": "aws-noid", "type": "aws_secretsmanager"},
    ]
    rotators, errors = other_rotators(stores, {**options, "token": bogus,
                                               "aws_config": {"retries": {"max_attempts": 1},
                                                              "connect_timeout": 1}},
                                      "app_user")
    assert rotators == []
    for name in ("vault-down", "vault-badtoken", "vault-nonamespace", "aws-down", "aws-noid"):
        assert any(f"'{name}'" in error for error in errors), (name, errors)
    assert not any(bogus in error for error in errors)
    assert not any(options["secret_key"] in error for error in errors)


def test_disable_database_engine_leaves_nothing(lab):
    """disable_database_engine(lab) with no mount (the lab's reset) is safe when none exists."""
    settings = lab_settings(lab)
    before = vault_database_mounts(lab)
    mount = unique("database-test")
    role = unique("conflict_gone")
    pg = Postgres(settings)
    with pg.admin_cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        enable_database_engine(settings, pg, {}, role, mount=mount)
        assert f"{mount}/" in vault_database_mounts(lab)
    finally:
        assert disable_database_engine(settings, mount=mount) == [mount]
        with pg.admin_cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (admin_role(mount),))
            assert cur.fetchone() == (0,)
    assert vault_database_mounts(lab) == before
    assert disable_database_engine(settings, mount=mount) == []  # again: nothing to do
    with pytest.raises(psycopg2.OperationalError):
        connect(lab, admin_role(mount), "anything").close()


def vault_database_mounts(lab) -> set[str]:
    client = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    return {path for path, info in client.sys.list_mounted_secrets_engines()["data"].items()
            if info["type"] == "database"}
