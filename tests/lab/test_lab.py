"""Self-tests of the lab: each stand-in behaves like the real service it replaces."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import types
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import botocore.auth
import hvac
import pytest
import yaml
from labfixtures import connect, login_error, run_labctl, scenario

PAM_FAILED = "PAM authentication failed"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# -- PostgreSQL, TLS, SCRAM --------------------------------------------------

def test_scram_login_over_verified_tls(lab, admin):
    conn = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"],
                   sslmode="verify-full")
    try:
        assert conn.info.ssl_in_use
        cur = conn.cursor()
        cur.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                    "WHERE rolname = current_user")
        assert cur.fetchone()[0] is True
    finally:
        conn.close()


def test_verify_full_rejects_a_name_the_certificate_does_not_carry(lab):
    import psycopg2
    with pytest.raises(psycopg2.OperationalError, match=r"does not match|certificate"):
        psycopg2.connect(host=socket.gethostbyname("localhost"), hostaddr="127.0.0.1",
                         port=int(lab["PGAUTH_LAB_PGPORT"]), user="x", password="x",
                         sslmode="verify-full", sslrootcert="/etc/ssl/certs/ca-certificates.crt",
                         connect_timeout=5)


def test_rds_shaped_roles_and_hba(admin):
    admin.execute("SELECT rolname, rolcanlogin FROM pg_roles "
                  "WHERE rolname IN ('rds_iam', 'rds_superuser') ORDER BY 1")
    assert admin.fetchall() == [("rds_iam", False), ("rds_superuser", False)]
    admin.execute("SELECT type, user_name, auth_method FROM pg_hba_file_rules "
                  "WHERE type <> 'local' ORDER BY line_number")
    assert admin.fetchall() == [
        ("hostssl", ["+rds_iam"], "pam"),
        ("host", ["+rds_iam"], "reject"),
        ("hostssl", ["all"], "scram-sha-256"),
        ("host", ["all"], "scram-sha-256"),
    ]


def test_log_records_connections_and_statements(lab, admin):
    marker = unique("marker")
    admin.execute("SELECT %s", (marker,))
    log = Path(lab["PGAUTH_LAB_PGLOG"]).read_text()
    assert marker in log
    assert "connection authorized: user=postgres" in log


# -- RDS IAM through PAM -----------------------------------------------------

def test_iam_token_logs_in_a_rds_iam_member(iam_lab, temp_role, rds):
    user = temp_role(unique("iam"), iam=True)
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    conn = connect(iam_lab, user, token, sslmode="verify-full")
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == user
    finally:
        conn.close()
    iam_log = Path(iam_lab["PGAUTH_LAB_IAM_LOG"]).read_text()
    assert f"user='{user}' outcome=allow" in iam_log


def test_token_for_another_user_is_refused(iam_lab, temp_role, rds):
    user = temp_role(unique("iam"), iam=True)
    other = temp_role(unique("iam"), iam=True)
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), other)
    assert PAM_FAILED in login_error(iam_lab, user, token)


def test_expired_token_is_refused(iam_lab, temp_role, rds, monkeypatch):
    user = temp_role(unique("iam"), iam=True)
    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda *a, **kw: real_now(*a, **kw) - dt.timedelta(minutes=16))
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    monkeypatch.undo()
    assert PAM_FAILED in login_error(iam_lab, user, token)
    assert f"user='{user}' outcome=deny reason=token expired" in Path(
        iam_lab["PGAUTH_LAB_IAM_LOG"]).read_text()


def test_token_signed_with_an_unknown_key_is_refused(iam_lab, temp_role):
    import boto3
    user = temp_role(unique("iam"), iam=True)
    stranger = boto3.client("rds", region_name=iam_lab["AWS_REGION"],
                            aws_access_key_id="AKIAUNKNOWNKEY000000",
                            aws_secret_access_key="not-a-lab-secret")
    token = stranger.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                            int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    assert PAM_FAILED in login_error(iam_lab, user, token)


def test_token_with_a_forged_signature_is_refused(iam_lab, temp_role, rds):
    user = temp_role(unique("iam"), iam=True)
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    head, _sep, signature = token.rpartition("X-Amz-Signature=")
    forged = head + "X-Amz-Signature=" + ("0" if signature[0] != "0" else "1") + signature[1:]
    assert PAM_FAILED in login_error(iam_lab, user, forged)


def test_password_for_a_rds_iam_member_gets_pam_failure(iam_lab, temp_role):
    user = temp_role(unique("iam"), iam=True, password="a-real-password-1")
    assert PAM_FAILED in login_error(iam_lab, user, "a-real-password-1")


def test_rds_iam_member_over_plain_tcp_is_rejected(iam_lab, temp_role, rds):
    user = temp_role(unique("iam"), iam=True)
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    message = login_error(iam_lab, user, token, sslmode="disable")
    assert "pg_hba.conf rejects connection" in message and "no encryption" in message


def test_token_for_a_non_member_is_a_password_failure(lab, temp_role, rds):
    user = temp_role(unique("plain"), password="some-password-2")
    token = rds.generate_db_auth_token(lab["PGAUTH_LAB_PGHOST"], int(lab["PGAUTH_LAB_PGPORT"]),
                                       user)
    assert "password authentication failed" in login_error(lab, user, token)


def test_tokens_never_reach_the_logs(iam_lab, temp_role, rds):
    user = temp_role(unique("iam"), iam=True)
    token = rds.generate_db_auth_token(iam_lab["PGAUTH_LAB_PGHOST"],
                                       int(iam_lab["PGAUTH_LAB_PGPORT"]), user)
    connect(iam_lab, user, token).close()
    signature = token.rpartition("X-Amz-Signature=")[2]
    for path in (iam_lab["PGAUTH_LAB_IAM_LOG"], iam_lab["PGAUTH_LAB_PGLOG"]):
        assert signature not in Path(path).read_text()


# -- AWS (moto) and Vault (OpenBao) ------------------------------------------

def test_rds_instance_is_registered(lab, rds):
    db = rds.describe_db_instances(
        DBInstanceIdentifier=lab["PGAUTH_LAB_RDS_INSTANCE"])["DBInstances"][0]
    assert db["Engine"] == "postgres"
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert db["DbiResourceId"].startswith("db-")


def test_secrets_manager_stage_moves(secretsmanager):
    name = unique("lab-test/stages")
    first = secretsmanager.create_secret(Name=name, SecretString="v1")["VersionId"]
    try:
        pending = str(uuid.uuid4())
        secretsmanager.put_secret_value(SecretId=name, SecretString="v2",
                                        ClientRequestToken=pending,
                                        VersionStages=["AWSPENDING"])
        assert secretsmanager.get_secret_value(SecretId=name)["SecretString"] == "v1"
        assert secretsmanager.get_secret_value(
            SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "v2"
        secretsmanager.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=pending,
            RemoveFromVersionId=first)
        assert secretsmanager.get_secret_value(SecretId=name)["SecretString"] == "v2"
        stages = secretsmanager.describe_secret(SecretId=name)["VersionIdsToStages"]
        assert "AWSPREVIOUS" in stages[first]
        assert "AWSCURRENT" in stages[pending]
    finally:
        secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_vault_kv2_cas_conflict(vault):
    path = unique("lab-test/cas")
    kv2 = vault.secrets.kv.v2
    kv2.create_or_update_secret(path=path, secret={"password": "one"}, cas=0)
    try:
        kv2.create_or_update_secret(path=path, secret={"password": "two"}, cas=1)
        with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
            kv2.create_or_update_secret(path=path, secret={"password": "three"}, cas=1)
        assert kv2.read_secret_version(path=path, raise_on_deleted_version=True)[
            "data"]["data"] == {"password": "two"}
    finally:
        kv2.delete_metadata_and_all_versions(path=path)


def test_vault_kv1_mount(vault):
    path = unique("lab-test/kv1")
    vault.secrets.kv.v1.create_or_update_secret(path=path, secret={"a": "b"}, mount_point="kv1")
    try:
        assert vault.secrets.kv.v1.read_secret(path=path, mount_point="kv1")["data"] == {"a": "b"}
    finally:
        vault.secrets.kv.v1.delete_secret(path=path, mount_point="kv1")


# -- scenarios -----------------------------------------------------------------

def _dotenv_password(path: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith("DATABASE_URL="):
            return unquote(urlsplit(line.partition("=")[2]).password or "")
    raise AssertionError("no DATABASE_URL")


def _store_passwords(meta, secretsmanager, vault) -> list[str]:
    """Each store's password, read with the plain clients (not the collection's code)."""
    stores = {store["name"]: store for store in meta["stores"]}
    aws, kv2, config, env_file = (stores[name] for name in ("aws-app", "vault-app",
                                                            "app-config", "app-env"))
    return [
        json.loads(secretsmanager.get_secret_value(SecretId=aws["secret_id"])["SecretString"])[
            "password"],
        vault.secrets.kv.v2.read_secret_version(path=kv2["path"], mount_point=kv2["mount_point"],
                                                raise_on_deleted_version=True)["data"]["data"][
            "password"],
        str(yaml.safe_load(Path(config["path"]).read_text())[config["key"]]["password"]),
        _dotenv_password(env_file["path"]),
    ]


def test_scenario_healthy(lab, secretsmanager, vault):
    with scenario("healthy") as meta:
        passwords = _store_passwords(meta, secretsmanager, vault)
        assert len(set(passwords)) == 1
        target = meta["target"]
        connect(lab, target["role"], passwords[0], dbname=target["dbname"]).close()


def test_scenario_password_mismatch(lab, secretsmanager, vault):
    with scenario("password_mismatch") as meta:
        passwords = _store_passwords(meta, secretsmanager, vault)
        assert len(set(passwords)) == 1, "the stores agree with each other"
        message = login_error(lab, meta["target"]["role"], passwords[0])
        assert "password authentication failed" in message
    for secret in passwords:  # seeded as SCRAM verifiers: plaintext never in the server log
        assert secret not in Path(lab["PGAUTH_LAB_PGLOG"]).read_text()


def test_unknown_scenario_is_a_clear_error():
    done = run_labctl("scenario", "no_such_incident")
    assert done.returncode == 2
    assert "unknown scenario 'no_such_incident'" in done.stderr


# -- lifecycle -----------------------------------------------------------------

def _lab_processes(lab_dir: Path) -> list[int]:
    """PIDs whose command line or working directory points into lab_dir."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(lab_dir) in cmd or cwd.startswith(str(lab_dir)):
            found.append(int(entry))
    return found


def _ports_closed(ports) -> bool:
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


@contextlib.contextmanager
def _port_held_until(port: int, log: Path, text: str, limit: float = 90.0):
    """Bind the port (no SO_REUSEADDR, no listen) until `text` shows in `log`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    state = types.SimpleNamespace(seen=False)

    def watch() -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not state.seen:
            with contextlib.suppress(OSError):
                state.seen = text in log.read_text(errors="replace").lower()
            time.sleep(0.1)
        sock.close()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield state
    finally:
        watcher.join(limit)
        sock.close()


def test_up_twice_then_down_leaves_nothing_running(tmp_path):
    """A second lab on its own ports and directory: up, up again (fast), down."""
    # 100 above the lab under test (whatever its ports), and PgBouncer 1000 above that lab's
    # PostgreSQL: a fixed set collided with a lab run on other ports (its PostgreSQL on the
    # self-test's PgBouncer port)
    def above(name: str, default: int) -> int:
        return int(os.environ.get(name, default)) + 100
    pg = above("PGAUTH_LAB_PGPORT", 55432)
    ports = {"PGAUTH_LAB_PGPORT": str(pg),
             "PGAUTH_LAB_MOTO_PORT": str(above("PGAUTH_LAB_MOTO_PORT", 55000)),
             "PGAUTH_LAB_VAULT_PORT": str(above("PGAUTH_LAB_VAULT_PORT", 58200)),
             "PGAUTH_LAB_PGBOUNCER_PORT": str(pg + 1000)}
    lab_dir = Path("/var/tmp") / unique("pgauth-lab-selftest")
    env = {"PGAUTH_LAB_DIR": str(lab_dir), **ports}
    try:
        # each server's port held as an outgoing connection holds one, until the server has
        # failed on it once: `up` must start it again, not give up (as it did in CI)
        logs = lab_dir / "logs"
        held_ports = {"PostgreSQL": (pg, lab_dir / "pg" / "postgresql.log", "could not bind"),
                      "moto": (int(ports["PGAUTH_LAB_MOTO_PORT"]), logs / "moto.log", "in use"),
                      "OpenBao": (int(ports["PGAUTH_LAB_VAULT_PORT"]), logs / "bao.log", "in use"),
                      "PgBouncer": (pg + 1000, lab_dir / "pg" / "pgbouncer" / "pgbouncer.log",
                                    "in use")}
        with contextlib.ExitStack() as stack:
            held = {name: stack.enter_context(_port_held_until(*spec))
                    for name, spec in held_ports.items()}
            first = run_labctl("up", env=env)
        assert first.returncode == 0, first.stderr
        never = [name for name, state in held.items() if not state.seen]
        assert not never, f"a held port never made {never} fail: the test proves nothing there"
        pids = run_labctl("status", env=env)
        assert pids.returncode == 0, pids.stdout
        assert "pgbouncer   up" in pids.stdout, pids.stdout
        started = time.monotonic()
        second = run_labctl("up", env=env)
        assert second.returncode == 0, second.stderr
        assert time.monotonic() - started < 5, "a second `up` must be fast"
        down = run_labctl("down", env=env)
        assert down.returncode == 0, down.stderr
        assert _ports_closed(int(p) for p in ports.values())
        assert _lab_processes(lab_dir) == []
        assert run_labctl("status", env=env).returncode == 3
        assert not Path(f"/etc/pam.d/pgauth-lab-{pg}").exists()
    finally:
        run_labctl("down", env=env)
        import shutil
        shutil.rmtree(lab_dir, ignore_errors=True)
