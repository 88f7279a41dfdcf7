"""Consumers on the lab (issue 18): the real PgBouncer in front of the lab PostgreSQL, and an
http consumer against a small local server.  rotate refreshes, then confirms, each consumer;
without the pgbouncer consumer a rotation leaves the pooler stale, and diagnose names
pooler_auth_stale first."""
from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path
from typing import ClassVar

import psycopg2
import pytest
from labfixtures import scenario
from runbooks import assert_no_leak, lab_secrets, read_report, read_stores, run_playbook, vars_for

APP_DB = "appdb"


def through_pooler(lab: dict, meta: dict, user: str, password: str) -> bool:
    """A client's login through PgBouncer, TLS verified, and one query."""
    try:
        conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"],
                                port=int(lab["PGAUTH_LAB_PGBOUNCER_PORT"]), user=user,
                                password=password, dbname=APP_DB, sslmode="verify-full",
                                sslrootcert=meta["target"]["sslrootcert"], connect_timeout=5)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    finally:
        conn.close()


def pooler_admin(lab: dict, pooler: dict, command: str) -> None:
    """One command on the lab PgBouncer's admin console (the test's own hand), as the admin
    of pooler (a pgbouncer consumer item)."""
    admin = pooler["admin"]
    conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"],
                            port=int(lab["PGAUTH_LAB_PGBOUNCER_PORT"]), user=admin["user"],
                            password=admin["password"], dbname="pgbouncer", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(command)
    finally:
        conn.close()


def runbook(lab: dict, tmp_path: Path, meta: dict, playbook: str, *args: str, consumers=None,
            env: dict | None = None, **extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    variables = {**vars_for(meta, lab, tmp_path / "reports"), **extra}
    if playbook != "diagnose":
        variables.pop("pgauth_logs")
    variables["pgauth_consumers"] = meta["consumers"] if consumers is None else consumers
    done = run_playbook(lab, tmp_path, variables, *args, playbook=playbook, env=env)
    path = tmp_path / "reports" / "localhost" / f"{playbook}.json"
    return done, (read_report(path) if path.exists() else {})


def no_leak(lab: dict, stdout: str, report: dict) -> None:
    """No password in the output, the report or the pooler's log; the admin console's
    password neither."""
    assert_no_leak({"stdout": stdout, "report": json.dumps(report),
                    "pgbouncer.log": Path(lab["PGAUTH_LAB_PGBOUNCER_LOG"]).read_text(),
                    "postgresql.log": Path(lab["PGAUTH_LAB_PGLOG"]).read_text()},
                   lab_secrets(lab) | {lab["PGAUTH_LAB_PGBOUNCER_ADMIN_PASSWORD"]})


def primary(meta: dict, lab: dict):
    return next(iter(read_stores(meta, lab).values()))


def line_of(report: dict, name: str = "lab-pgbouncer") -> dict:
    return next(line for line in report["consumers"] if line["consumer"] == name)


def test_diagnose_names_pooler_auth_stale_first(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        cred = primary(meta, lab)
        assert not through_pooler(lab, meta, "app_user", cred.password)
        done, report = runbook(lab, tmp_path, meta, "diagnose")
        assert done.returncode == 0, done.stdout[-3000:]
        first = report["findings"][0]
        assert first["id"] == "pooler_auth_stale", [f["id"] for f in report["findings"]]
        assert first["evidence"]["consumer"] == "lab-pgbouncer"
        assert first["evidence"]["auth_file_current"] is False
        # the stores point at the pooler: that is no target mismatch
        assert "store_target_mismatch" not in [f["id"] for f in report["findings"]]
        no_leak(lab, done.stdout, report)


def test_rotate_refreshes_a_stale_pooler_without_a_new_password(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        before = primary(meta, lab)
        done, report = runbook(lab, tmp_path, meta, "rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "consumers_refreshed"
        assert primary(meta, lab).password == before.password  # never rotated again
        line = line_of(report)
        assert line["refreshed"] and line["confirmed"], line
        assert through_pooler(lab, meta, "app_user", before.password)
        # a second run: nothing is left behind, so it rotates (no min_age)
        auth_file = Path(meta["consumers"][0]["auth_file"]).read_text()
        assert before.password not in auth_file and "SCRAM-SHA-256$" in auth_file


@pytest.mark.parametrize("strategy", ["single_user", "alternating_users"])
def test_rotation_through_the_pooler_confirms_it(lab, tmp_path, strategy):
    with scenario("pooler_auth_stale") as meta:
        done, _report = runbook(lab, tmp_path, meta, "rotate")  # the pooler is in line
        assert done.returncode == 0, done.stdout[-3000:]
        old = primary(meta, lab)
        done, report = runbook(lab, tmp_path, meta, "rotate", pgauth_strategy=strategy)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "rotated"
        new = primary(meta, lab)
        assert new.password != old.password
        line = line_of(report)
        assert line["refreshed"] and line["confirmed"], line
        assert report["consumers_seconds"] is not None
        assert through_pooler(lab, meta, new.username or "app_user", new.password)
        if strategy == "single_user":
            assert not through_pooler(lab, meta, "app_user", old.password)
        auth_file = Path(meta["consumers"][0]["auth_file"]).read_text()
        assert new.password not in auth_file
        no_leak(lab, done.stdout, report)


def test_the_admin_consoles_password_from_a_store(lab, tmp_path, vault):
    """admin: {user, store}: the pooler's admin password is read inside the module, never a
    playbook variable."""
    with scenario("pooler_auth_stale") as meta:
        vault.secrets.kv.v2.create_or_update_secret(
            path="lab/pgbouncer_admin", mount_point="secret",
            secret={"password": lab["PGAUTH_LAB_PGBOUNCER_ADMIN_PASSWORD"]})
        consumer = {**meta["consumers"][0], "admin": {
            "user": "pgbouncer_admin", "store": {"type": "vault_kv2", "mount_point": "secret",
                                                 "path": "lab/pgbouncer_admin",
                                                 "format": "json"}}}
        done, report = runbook(lab, tmp_path, meta, "rotate", consumers=[consumer])
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "consumers_refreshed" and line_of(report)["confirmed"]
        no_leak(lab, done.stdout, report)


def test_check_mode_changes_nothing_then_twice_for_real(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        auth_file = Path(meta["consumers"][0]["auth_file"])
        before = auth_file.read_bytes()
        done, report = runbook(lab, tmp_path / "check", meta, "rotate", "--check")
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "consumers_refreshed"
        steps = {step["step"]: step["status"] for step in report["steps"]}
        assert steps == {"refresh:lab-pgbouncer": "planned", "confirm:lab-pgbouncer": "skipped"}
        assert auth_file.read_bytes() == before
        done, report = runbook(lab, tmp_path / "one", meta, "rotate")
        assert done.returncode == 0 and report["outcome"] == "consumers_refreshed"
        after = auth_file.read_bytes()
        assert after != before
        # the second run with min_age: nothing is due and nothing is left behind
        done, report = runbook(lab, tmp_path / "two", meta, "rotate",
                               pgauth_rotation_min_age="30d")
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "not_due" and report["consumers"] == []
        assert "changed=0" in done.stdout.split("PLAY RECAP")[1].splitlines()[1]
        assert auth_file.read_bytes() == after


def test_a_run_killed_after_promote_is_finished_without_a_new_password(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        done, _report = runbook(lab, tmp_path, meta, "rotate")  # the pooler is in line
        assert done.returncode == 0, done.stdout[-3000:]
        old = primary(meta, lab)
        auth_file = Path(meta["consumers"][0]["auth_file"])
        stale = auth_file.read_bytes()
        # killed (SIGKILL) right after the last store's promote: before any refresh
        done, _report = runbook(lab, tmp_path / "killed", meta, "rotate",
                                env={"PGAUTH_FAILPOINT": "promote:app-env"})
        assert done.returncode != 0
        new = primary(meta, lab)
        assert new.password != old.password  # promoted
        # prepare gave the pooler the database's verifier before promote: it works already
        assert through_pooler(lab, meta, "app_user", new.password)
        # as if prepare had not taken (it is a note, not a failure): the old file, reloaded
        auth_file.write_bytes(stale)
        # PgBouncer's RELOAD re-reads the auth_file only when its inode, size or mtime (in
        # seconds) changed: an in-place rewrite of the same size within the second prepare
        # wrote it looked unchanged (seen in CI). The product writes a new inode each time.
        written = auth_file.stat()
        os.utime(auth_file, ns=(written.st_atime_ns, written.st_mtime_ns + 2_000_000_000))
        pooler_admin(lab, meta["consumers"][0], "RELOAD")
        assert not through_pooler(lab, meta, "app_user", new.password)  # the pooler is stale
        done, report = runbook(lab, tmp_path / "again", meta, "rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "consumers_refreshed"
        assert primary(meta, lab).password == new.password
        assert through_pooler(lab, meta, "app_user", new.password)


def test_without_the_consumer_the_pooler_is_left_stale(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        done, _report = runbook(lab, tmp_path, meta, "rotate")  # the pooler is in line
        assert done.returncode == 0, done.stdout[-3000:]
        done, report = runbook(lab, tmp_path / "bare", meta, "rotate", consumers=[])
        # promoted, but the app's logins through the pooler fail: the run says so
        assert done.returncode != 0
        assert report["outcome"] == "rotated" and report["promoted"] is True
        new = primary(meta, lab)
        assert not through_pooler(lab, meta, "app_user", new.password)
        done, diagnosis = runbook(lab, tmp_path / "diag", meta, "diagnose")
        assert done.returncode == 0, done.stdout[-3000:]
        assert diagnosis["findings"][0]["id"] == "pooler_auth_stale"


def test_verify_checks_every_consumer(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        done, report = runbook(lab, tmp_path, meta, "verify")
        assert done.returncode != 0
        check = next(c for c in report["checks"] if c["check"] == "consumer:lab-pgbouncer")
        assert not check["ok"], check
        done, _report = runbook(lab, tmp_path / "rotate", meta, "rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        done, report = runbook(lab, tmp_path / "again", meta, "verify")
        assert done.returncode == 0, done.stdout[-3000:]
        check = next(c for c in report["checks"] if c["check"] == "consumer:lab-pgbouncer")
        assert check["ok"], check
        no_leak(lab, done.stdout, report)


class ScriptedHealth(http.server.BaseHTTPRequestHandler):
    """Answers the statuses of `script` in turn, then `then` for good."""
    script: ClassVar[list] = []
    then = 200
    seen = 0

    def do_GET(self):  # the stdlib's name
        cls = type(self)
        cls.seen += 1
        status = cls.script.pop(0) if cls.script else cls.then
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"not yet")

    def log_message(self, *_args):
        return None


@pytest.fixture
def health_server():
    handler = type("Handler", (ScriptedHealth,), {"seen": 0, "script": [], "then": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_consumer_answers_500_then_200(lab, tmp_path, health_server):
    server, handler = health_server
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    with scenario("healthy") as meta:
        consumers = [{"name": "app", "type": "http", "url": url, "timeout": 20,
                      "interval": 0.2}]
        # observe finds it working; after promote it answers 500 twice, then 200
        handler.script = [200, 500, 500]
        done, report = runbook(lab, tmp_path, meta, "rotate", consumers=consumers)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "rotated"
        line = line_of(report, "app")
        assert line["confirmed"], line
        assert handler.seen >= 4  # the two 500s were retried
        # after promote it keeps answering 500 past the timeout: the run fails loudly
        handler.script, handler.then = [200], 500
        consumers[0]["timeout"] = 1
        done, report = runbook(lab, tmp_path / "fail", meta, "rotate", consumers=consumers)
        assert done.returncode != 0
        assert "answered 500" in done.stdout and "does not rotate again" in done.stdout
        assert report["promoted"] is True and not line_of(report, "app")["confirmed"]
        before = primary(meta, lab)
        # the next run sees it still failing (left behind), confirms it once it answers 200,
        # and does not rotate again
        handler.script, handler.then = [500], 200
        consumers[0]["timeout"] = 20
        done, report = runbook(lab, tmp_path / "again", meta, "rotate", consumers=consumers)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "consumers_refreshed"
        assert primary(meta, lab).password == before.password


def test_a_command_consumer_restarts_and_a_failing_one_fails_loudly(lab, tmp_path):
    """A restart through the safe runner after promote (the marker file shows it ran); a
    restart that exits 3 fails the run after promote, naming the consumer and the exit code
    and saying that a re-run does not rotate again."""
    marker = tmp_path / "restarted"
    with scenario("healthy") as meta:
        consumers = [{"name": "app-restart", "type": "command",
                      "argv": ["sh", "-c", f"date +%s%N > {marker}"]}]
        done, report = runbook(lab, tmp_path / "ok", meta, "rotate", consumers=consumers)
        assert done.returncode == 0, done.stdout[-3000:]
        line = line_of(report, "app-restart")
        assert line["refreshed"] and line["confirmed"] and marker.exists(), line
        consumers = [{"name": "app-restart", "type": "command", "argv": ["sh", "-c", "exit 3"]}]
        done, report = runbook(lab, tmp_path / "fail", meta, "rotate", consumers=consumers,
                               pgauth_force=True)
        assert done.returncode != 0
        assert "app-restart" in done.stdout and "3" in done.stdout
        assert "does not rotate again" in done.stdout
        assert report["promoted"] is True
        no_leak(lab, done.stdout, report)
