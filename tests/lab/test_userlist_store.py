"""The pgbouncer_userlist file store on the lab's real PgBouncer (its auth_file,
userlist.txt): diagnose with an agreeing verifier is healthy; a stale verifier is the
stale-store finding that names it; rotate writes a verifier of the new password (only that
line, the mode kept), in check mode nothing, a second time nothing; a login through
PgBouncer works after the pgbouncer consumer's RELOAD; verify passes by agreement; and no
password or verifier shows in the output at -vvv or in a report."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import psycopg2
from labfixtures import scenario
from psycopg2 import sql
from runbooks import assert_no_leak, lab_secrets, read_report, run_playbook, vars_for
from test_consumers import pooler_admin
from test_consumers import through_pooler as login_through_pooler

from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    parse_verifier,
    verify_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.userlist import entry_of

ROLE, APP_DB = "app_user", "appdb"
# lines of other users and a comment: a write must leave them byte for byte
OTHERS = ('; userlist managed by ops\r\n"report""er" "md5' + "0" * 32 + '"\r\n'
          '"batch"   "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5:c2VydmVya2V5"  ; a note\n')
VERIFIER_TEXT = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")


def auth_file(lab: dict) -> Path:
    return Path(lab["PGAUTH_LAB_PGBOUNCER_AUTH_FILE"])


def consumer(lab: dict, meta: dict) -> dict:
    """The lab's PgBouncer as a pgbouncer consumer, its auth_file the store's file."""
    return {"name": "lab-pgbouncer", "type": "pgbouncer", "host": lab["PGAUTH_LAB_PGHOST"],
            "port": int(lab["PGAUTH_LAB_PGBOUNCER_PORT"]), "dbname": APP_DB,
            "auth_file": str(auth_file(lab)), "sslmode": "verify-full",
            "sslrootcert": meta["target"]["sslrootcert"],
            "admin": {"user": "pgbouncer_admin",
                      "password": lab["PGAUTH_LAB_PGBOUNCER_ADMIN_PASSWORD"]}}


def admin_conn(lab: dict):
    conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]),
                            user=lab["PGAUTH_LAB_ADMIN_USER"],
                            password=lab["PGAUTH_LAB_ADMIN_PASSWORD"], dbname="postgres",
                            sslmode="verify-full", sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"])
    conn.autocommit = True
    return conn


def database_verifier(lab: dict) -> str:
    conn = admin_conn(lab)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ROLE,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def set_database_password(lab: dict, password: str) -> None:
    conn = admin_conn(lab)
    try:
        with conn.cursor() as cur:
            verifier = psycopg2.extensions.encrypt_password(password, ROLE, conn,
                                                            "scram-sha-256")
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE),
                                                                    sql.Literal(verifier)))
    finally:
        conn.close()


def through_pooler(lab: dict, password: str) -> bool:
    """A client's login as ROLE through the lab PgBouncer (test_consumers' helper)."""
    return login_through_pooler(lab, {"target": {"sslrootcert": lab["PGAUTH_LAB_SSLROOTCERT"]}},
                                ROLE, password)


def aws_password(secretsmanager, meta: dict) -> str:
    secret_id = meta["stores"][0]["secret_id"]
    return json.loads(secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"])[
        "password"]


def run(lab, tmp_path: Path, meta: dict, playbook: str, name: str, *args: str,
        consumers=(), **extra):
    where = tmp_path / name
    where.mkdir()
    variables = {**vars_for(meta, lab, where / "reports"), **extra,
                 "pgauth_consumers": list(consumers)}
    if playbook != "diagnose":
        variables.pop("pgauth_logs")
    done = run_playbook(lab, where, variables, *args, playbook=playbook)
    path = where / "reports" / "localhost" / f"{playbook}.json"
    report = read_report(path) if path.exists() else {}
    texts = {f"{name} stdout": done.stdout + done.stderr}
    texts.update({f"{name} {report_file.name}": report_file.read_text()
                  for report_file in (where / "reports").rglob("*") if report_file.is_file()})
    return done, report, texts


def no_secret(texts: dict, secrets: set[str]) -> None:
    """No password, no verifier (the file's, the database's, any SCRAM verifier at all)."""
    assert_no_leak(texts, secrets)
    for where, text in texts.items():
        assert not VERIFIER_TEXT.search(text), f"a SCRAM verifier appears in {where}"
        assert "SCRAM-SHA-256$" not in text, f"a verifier's prefix appears in {where}"


def other_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if not line.startswith(f'"{ROLE}"')]


def test_a_userlist_store_through_every_runbook(lab, tmp_path, secretsmanager):
    path = auth_file(lab)
    with scenario("healthy") as meta:
        old = aws_password(secretsmanager, meta)
        store = {"name": "bouncer", "type": "file", "format": "pgbouncer_userlist",
                 "path": str(path), "key": ROLE}
        meta["stores"] = [meta["stores"][0], store]  # aws-app (the primary) and the file
        # the auth_file as an operator keeps it: other users, a comment, CRLF lines, and the
        # database's verifier for app_user (PgBouncer's SCRAM pass-through needs that one)
        path.write_bytes(path.read_bytes() + OTHERS.encode()
                         + f'"{ROLE}" "{database_verifier(lab)}"\n'.encode())
        path.chmod(0o600)
        pooler_admin(lab, consumer(lab, meta), "RELOAD")
        assert through_pooler(lab, old)
        mode = stat.S_IMODE(path.stat().st_mode)
        pooler = consumer(lab, meta)
        secrets = lab_secrets(lab) | {old, lab["PGAUTH_LAB_PGBOUNCER_ADMIN_PASSWORD"]}
        seen: dict = {}

        # (a) the verifier agrees with the password: healthy, no login_failed
        done, report, texts = run(lab, tmp_path, meta, "diagnose", "a", "-vvv",
                                  consumers=[pooler])
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["verdict"] == "healthy", [f["id"] for f in report["findings"]]
        facts = report["facts"]
        info = next(item for item in facts["stores"] if item["store"] == "bouncer")
        assert info["holds_verifier"] and info["verified"] is True
        assert info["password_fingerprint"] == facts["stores"][0]["password_fingerprint"]
        assert "bouncer" not in [probe["store"] for probe in facts["probes"]]

        # (b) the password changed elsewhere (database and Secrets Manager): the verifier
        # is stale, and diagnose says so by the store's name, with rotate as the fix
        second = "Second-" + os.urandom(9).hex()
        set_database_password(lab, second)
        secretsmanager.put_secret_value(SecretId=store_id(meta), SecretString=json.dumps(
            {**json.loads(secretsmanager.get_secret_value(SecretId=store_id(meta))[
                "SecretString"]), "password": second}))
        secrets.add(second)
        done, report, texts = run(lab, tmp_path, meta, "diagnose", "b")
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        ids = [finding["id"] for finding in report["findings"]]
        assert "login_failed" not in ids, ids
        disagree = next(f for f in report["findings"] if f["id"] == "stores_disagree")
        assert disagree["severity"] == "critical"
        assert disagree["evidence"]["stale"] == ["bouncer"]
        assert disagree["evidence"]["working"] == ["aws-app"]
        assert disagree["fix"]["runbook"] == "rotate"
        assert disagree["fix"]["extra_vars"]["pgauth_source_store"] == "aws-app"

        # (c) rotate in check mode: nothing written anywhere
        before, verifier_before = path.read_bytes(), database_verifier(lab)
        done, report, texts = run(lab, tmp_path, meta, "rotate", "c-check", "--check",
                                  consumers=[pooler])
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        assert path.read_bytes() == before and database_verifier(lab) == verifier_before

        # rotate, without the consumer, brings the stale store in line: it writes the
        # database's own verifier of the working password (what SCRAM pass-through needs),
        # only that line changes, the mode stays; after a RELOAD PgBouncer logs in with it
        done, report, texts = run(lab, tmp_path, meta, "rotate", "c-converge")
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "converged", report.get("outcome")
        text = path.read_bytes().decode()
        written = entry_of(text, ROLE)
        assert verify_password(second, written) and written == database_verifier(lab)
        assert parse_verifier(written).iterations == 4096
        assert other_lines(text) == other_lines(before.decode())
        assert OTHERS.encode() in path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert second not in text
        seen["verifier written"] = written
        pooler_admin(lab, consumer(lab, meta), "RELOAD")
        assert through_pooler(lab, second)

        # a real rotation with the store among the stores: a new password; the file holds a
        # verifier of it (the database's, which the store finds already right), PgBouncer
        # logs in with it after the consumer's RELOAD
        done, report, texts = run(lab, tmp_path, meta, "rotate", "c-rotate", "-vvv",
                                  consumers=[pooler])
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "rotated", report.get("outcome")
        third = aws_password(secretsmanager, meta)
        secrets.add(third)
        assert third not in (old, second)
        text = path.read_bytes().decode()
        assert verify_password(third, entry_of(text, ROLE))
        assert entry_of(text, ROLE) == database_verifier(lab)
        assert other_lines(text) == other_lines(before.decode())
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert through_pooler(lab, third) and not through_pooler(lab, second)
        seen["database verifier"] = database_verifier(lab)

        # a second run changes nothing in the store
        after = path.read_bytes()
        done, report, texts = run(lab, tmp_path, meta, "rotate", "c-again",
                                  consumers=[pooler], pgauth_rotation_min_age="1d")
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        assert report["outcome"] == "not_due", report.get("outcome")
        assert path.read_bytes() == after and aws_password(secretsmanager, meta) == third

        # (d) verify passes, the userlist store checked by agreement
        done, report, texts = run(lab, tmp_path, meta, "verify", "d", "-vvv",
                                  consumers=[pooler])
        seen.update(texts)
        assert done.returncode == 0, done.stdout[-3000:]
        checks = {check["check"]: check for check in report["checks"]}
        assert checks["stores_agree"]["ok"], checks["stores_agree"]
        assert checks["login:bouncer"]["ok"]
        assert "checked by agreement" in checks["login:bouncer"]["detail"]
        assert report["verdict"] == "healthy"

        # (e) no password and no verifier in any output (-vvv) or report
        verifiers = {seen.pop("verifier written"), seen.pop("database verifier"),
                     verifier_before}
        no_secret(seen, secrets | verifiers)


def store_id(meta: dict) -> str:
    return meta["stores"][0]["secret_id"]
