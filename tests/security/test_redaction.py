"""Item 6 of the security review: secrets in what the log scan returns.

PostgreSQL logs the whole pg_hba.conf line a failed login matched ('Connection matched
pg_hba.conf line N: "..."'), options and comments included, so an LDAP line's bind password
or a RADIUS line's shared secrets sit in the server log; the scan returns those lines
(``hba_lines``) in its result, and so in reports and task output.  And the sample lines it
returns must not carry a SQL PASSWORD literal in any of SQL's forms.

The real lines come from a throwaway PostgreSQL server of our own with LDAP and RADIUS lines
in its pg_hba.conf (the shared lab's pg_hba.conf stays as it is), logging in the lab's format.
"""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from lab.postgres import find_bindir
from secsupport import run_tasks

PREFIX = "2026-11-22 06:50:29.084 UTC [{pid}] {user}@appdb "
MASKED = ("ldapbindpasswd=********", "radiussecrets=********", "radiussecret=********")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def hba_secrets() -> dict[str, str]:
    return {name: f"Zq7{name}{secrets.token_hex(6)}" for name in
            ("ldap_old", "ldap", "radius")}


@pytest.fixture(scope="module")
def private_pg(hba_secrets):
    """A PostgreSQL server of this test's own, with pg_hba.conf lines that hold secrets:
    LDAP (search+bind, its options comma-joined and quoted, an old password in a comment)
    and RADIUS (a secret with a space, in the docs' doubled-quote form).  Neither the LDAP
    nor the RADIUS server exists, so each login fails after the server read the line."""
    as_root = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="pgauth-redaction-"))
    data, log = root / "data", root / "postgresql.log"

    def as_pg(*argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv] if as_root else list(argv)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    bindir = find_bindir()
    port = _free_port()
    try:
        as_pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C", "-N")
        (data / "postgresql.auto.conf").write_text(
            f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{root}'\nlog_connections = on\n"
            "log_line_prefix = '%m [%p] %q%u@%d '\nlog_timezone = 'UTC'\n"
            "logging_collector = off\nfsync = off\nshared_buffers = 16MB\n")
        ldap = (f"ldapserver=127.0.0.1 ldapport={_free_port()},"
                'ldapbasedn="dc=example,dc=invalid" ldapbinddn="cn=pg,dc=example,dc=invalid" '
                f'ldapbindpasswd="{hba_secrets["ldap"]} two"  '
                f"# before the rotation: ldapbindpasswd={hba_secrets['ldap_old']}")
        radius = (f"radiusservers=127.0.0.1 radiusports={_free_port(socket.SOCK_DGRAM)} "
                  f'radiussecrets="""{hba_secrets["radius"]} two"""')
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all sec_ldap 127.0.0.1/32 ldap {ldap}\n"
            f"host all sec_radius 127.0.0.1/32 radius {radius}\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        if as_root:
            for path in (data / "postgresql.auto.conf", data / "pg_hba.conf"):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
        yield {"host": "127.0.0.1", "port": port, "socket": str(root), "log": log}
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _fail_login(server: dict, user: str) -> str:
    try:
        psycopg2.connect(host=server["host"], port=server["port"], user=user, dbname="postgres",
                         password="not-the-password", sslmode="disable",
                         connect_timeout=20).close()
    except psycopg2.OperationalError as err:
        return str(err)
    pytest.fail(f"{user} logged in")


def _wait_for(log: Path, text: str) -> str:
    for _attempt in range(100):
        content = log.read_text(errors="replace")
        if text in content:
            return content
        time.sleep(0.1)
    pytest.fail(f"the server never logged {text!r}")


def test_hba_secrets_of_real_failed_logins_stay_out_of_the_scan(
        lab, tmp_path, private_pg, hba_secrets):
    assert "LDAP authentication failed" in _fail_login(private_pg, "sec_ldap")
    assert "RADIUS authentication failed" in _fail_login(private_pg, "sec_radius")
    server_log = _wait_for(private_pg["log"], 'RADIUS authentication failed for user "sec_radius"')
    # the server itself logs every secret of the matched lines (this is the attack's input)
    for secret in hba_secrets.values():
        assert secret in server_log
    out = tmp_path / "scan.json"
    tasks = [{"name": "scan", "credops.pgauth.pg_auth_log_scan":
              {"files": [str(private_pg["log"])], "since": ""}, "register": "scan"},
             {"name": "keep", "ansible.builtin.copy":
              {"content": "{{ scan | to_json }}", "dest": str(out), "mode": "0600"}}]
    done = run_tasks(lab, tmp_path, tasks)  # -vvv: the task output an AWX job event holds
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result_json = out.read_text()
    result = json.loads(result_json)
    for secret in hba_secrets.values():
        assert secret not in result_json
        assert secret not in done.stdout + done.stderr
    # the failures are read, with the lines that matched them, masked
    ldap, radius = result["roles"]["sec_ldap"], result["roles"]["sec_radius"]
    assert ldap["by_category"] == {"ldap_failed": 1}
    assert radius["by_category"] == {"radius_failed": 1}
    (ldap_line,), (radius_line,) = ldap["hba_lines"], radius["hba_lines"]
    assert "ldapbinddn=\"cn=pg,dc=example,dc=invalid\"" in ldap_line  # not a secret: kept
    assert ldap_line.count("ldapbindpasswd=********") == 2, ldap_line  # the comment's too
    assert "radiussecrets=********" in radius_line and "radiusservers=127.0.0.1" in radius_line


def test_the_servers_hba_rules_view_is_masked_too(private_pg, hba_secrets):
    """pg_role_info/pg_auth_facts read pg_hba_file_rules: the same redaction."""
    from ansible_collections.credops.pgauth.plugins.module_utils.pg_info import hba_rules
    conn = psycopg2.connect(host=private_pg["socket"], port=private_pg["port"], user="postgres",
                            dbname="postgres")
    try:
        with conn.cursor() as cur:
            rules = hba_rules(cur, "sec_ldap", []) + hba_rules(cur, "sec_radius", [])
    finally:
        conn.close()
    options = [option for rule in rules for option in rule["options"] or []]
    assert "ldapbindpasswd=********" in options and "radiussecrets=********" in options
    assert not any(secret in json.dumps(rules, default=str) for secret in hba_secrets.values())


# the rule text PostgreSQL logs, in the option forms pg_hba.conf allows (hba.c's tokenizer:
# quotes, doubled quotes, comma-joined options, comments); SECRET marks what must go
LDAP = "host all sec_ldap 0.0.0.0/0 ldap ldapserver=h "
RADIUS = "host all sec_radius 0.0.0.0/0 radius "
RULES = [
    LDAP + "ldapbasedn=dc=x ldapbinddn=cn=pg ldapbindpasswd=SECRET",
    LDAP + 'ldapbindpasswd="SECRET with spaces, and a comma"',
    LDAP + '"ldapbindpasswd=SECRET"',
    LDAP.rstrip() + ",ldapbindpasswd=SECRET,ldaptls=1",
    LDAP + "ldapbindpasswd=x  # was: ldapbindpasswd=SECRET",
    LDAP + "ldapbindpasswd= SECRET",
    RADIUS + 'radiusservers="a,b" radiussecrets="""SECRET one"",""SECRET two"""',
    RADIUS + "radiusserver=a radiussecret=SECRET",
]


@pytest.mark.parametrize("rule", RULES, ids=range(len(RULES)))
def test_hba_lines_in_every_option_form_are_masked(rule):
    """The lines as the lab's server logs them.  Process 4242 failed a password login, and
    hours later, its pid reused, an LDAP or RADIUS login: the old scan gave the second one's
    DETAIL (and its secret) to the first."""
    from ansible_collections.credops.pgauth.plugins.module_utils.logscan import Scanner
    user = rule.split()[2]
    method = "LDAP" if " ldap " in rule else "RADIUS"
    lines = [
        PREFIX.format(pid=4242, user="app")
        + 'FATAL:  password authentication failed for user "app"',
        PREFIX.format(pid=4242, user="app")
        + 'DETAIL:  Connection matched pg_hba.conf line 9: "host all all 0.0.0.0/0 scram-sha-256"',
        PREFIX.format(pid=4242, user=user).replace("06:50:29.084", "09:12:03.500")
        + f'FATAL:  {method} authentication failed for user "{user}"',
        PREFIX.format(pid=4242, user=user).replace("06:50:29.084", "09:12:03.500")
        + f'DETAIL:  Connection matched pg_hba.conf line 3: "{rule}"',
    ]
    scanner = Scanner()
    for line in lines:
        scanner.feed(line + "\n")
    result = scanner.result()
    text = json.dumps(result)
    assert "SECRET" not in text, result["roles"]
    assert result["roles"]["app"]["hba_lines"] == {
        "line 9: host all all 0.0.0.0/0 scram-sha-256": 1}
    (line,) = result["roles"][user]["hba_lines"]
    assert any(mask in line for mask in MASKED) or line.endswith("ldapbindpasswd= ********"), line
    assert line.startswith(f"line 3: host all {user} 0.0.0.0/0 ")


# -- redact(): SQL literals in logged statements ----------------------------------------------

MARK = "Zq7S3cr3tMark"


@pytest.mark.parametrize("statement", [
    "ALTER ROLE app PASSWORD 'SECRET'",
    "ALTER ROLE app PASSWORD 'it''s SECRET'",
    "ALTER ROLE app PASSWORD E'SEC\\'RET'",
    "ALTER ROLE app PASSWORD e'SECRET\\\\'",
    "ALTER ROLE app PASSWORD U&'SECRET\\0041'",
    "ALTER ROLE app PASSWORD u&'SECRET!0041' UESCAPE '!'",
    "ALTER ROLE app PASSWORD N'SECRET'",
    "ALTER ROLE app PASSWORD X'SECRET'",
    "ALTER ROLE app PASSWORD $$SECRET$$",
    "ALTER ROLE app PASSWORD $pw$SEC$x$RET$pw$",
    "ALTER ROLE app PASSWORD /* the new one */ 'SECRET'",
    "ALTER ROLE app PASSWORD /* a /* nested */ comment */ 'SECRET'",
    "ALTER ROLE app PASSWORD -- the new one\n 'SECRET'",
    "ALTER ROLE app PASSWORD 'SEC'\n'RET'",
    "CREATE ROLE app LOGIN PASSWORD'SECRET'",
    "ALTER ROLE app WITH ENCRYPTED PASSWORD\t'SECRET' VALID UNTIL 'infinity'",
    "ALTER ROLE app PASSWORD 'cut off by the end of the line SECRET",
    "host=db user=app password='SEC RET' dbname=app",
    "host=db passwd=SECRET",
    "radiussecrets=SECRET",
])
def test_redact_takes_every_sql_literal_form(statement):
    from ansible_collections.credops.pgauth.plugins.module_utils.logscan import redact
    prefix = "2026-11-22 06:50:29.084 UTC [7] postgres@postgres LOG:  statement: "
    redacted = redact(prefix + statement.replace("SECRET", MARK).replace("RET", MARK))
    assert MARK not in redacted and "SEC" not in redacted[len(prefix):], redacted
    assert redact(redacted) == redacted
    assert redacted.startswith(prefix)


def test_redact_keeps_the_words_of_log_messages():
    from ansible_collections.credops.pgauth.plugins.module_utils.logscan import redact
    for line in ('FATAL:  password authentication failed for user "app"',
                 "DETAIL:  Password does not match for user \"app\".",
                 "ALTER ROLE app PASSWORD NULL"):
        assert redact(line) == line
