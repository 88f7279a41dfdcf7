"""Log lines as PostgreSQL 15 (the lab) and RDS print them, to per-role findings."""
from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils import logscan
from ansible_collections.credops.pgauth.plugins.module_utils.logscan import (
    LINE_LIMIT,
    Scanner,
    parse_since,
    redact,
)
from ansible_collections.credops.pgauth.plugins.module_utils.logsources import file_lines

LAB = """\
2026-11-22 06:50:29.075 UTC [3148] [unknown]@[unknown] LOG:  connection received: host=127.0.0.1 port=42378
2026-11-22 06:50:29.084 UTC [3148] app_user@appdb FATAL:  password authentication failed for user "app_user"
2026-11-22 06:50:29.084 UTC [3148] app_user@appdb DETAIL:  Connection matched pg_hba.conf line 6: "hostssl all all 127.0.0.1/32 scram-sha-256"
2026-11-22 06:50:30.001 UTC [3150] ghost@appdb FATAL:  password authentication failed for user "ghost"
2026-11-22 06:50:30.001 UTC [3150] ghost@appdb DETAIL:  Role "ghost" does not exist.
\tConnection matched pg_hba.conf line 6: "hostssl all all 127.0.0.1/32 scram-sha-256"
2026-11-22 06:50:31.000 UTC [3151] old@appdb FATAL:  password authentication failed for user "old"
2026-11-22 06:50:31.000 UTC [3151] old@appdb DETAIL:  User "old" has an expired password.
\tConnection matched file "/etc/postgresql/16/main/pg_hba.conf" line 7: "host all all 10.0.0.0/8 scram-sha-256"
2026-11-22 06:50:29.251 UTC [3152] iamu@postgres LOG:  pam_authenticate failed: Authentication failure
2026-11-22 06:50:29.252 UTC [3152] iamu@postgres FATAL:  PAM authentication failed for user "iamu"
2026-11-22 06:50:29.252 UTC [3152] iamu@postgres DETAIL:  Connection matched pg_hba.conf line 4: "hostssl all +rds_iam 127.0.0.1/32 pam"
2026-11-22 06:50:29.257 UTC [3154] iamu@postgres FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "iamu", database "postgres", no encryption
2026-11-22 06:50:29.307 UTC [3155] iamu@postgres LOG:  connection authorized: user=iamu database=postgres SSL enabled (protocol=TLSv1.3)
2026-11-22 06:50:32.000 UTC [3156] nopw@appdb FATAL:  password authentication failed for user "nopw"
2026-11-22 06:50:32.000 UTC [3156] nopw@appdb DETAIL:  User "nopw" has no password assigned.
2026-11-22 06:50:33.000 UTC [3157] app_user@appdb FATAL:  too many connections for role "app_user"
2026-11-22 06:50:34.000 UTC [3158] locked@appdb FATAL:  role "locked" is not permitted to log in
2026-11-22 06:50:35.000 UTC [3159] postgres@postgres LOG:  statement: ALTER ROLE "x" PASSWORD 'SCRAM-SHA-256$4096:abc'
"""

RDS = """\
2026-11-22 06:50:29 UTC:10.0.1.7(53722):app_user@appdb:[3148]:FATAL:  password authentication failed for user "app_user"
2026-11-22 06:50:29 UTC:10.0.1.7(53722):app_user@appdb:[3148]:DETAIL:  Password does not match for user "app_user".
\tConnection matched pg_hba.conf line 13: "host all all 0.0.0.0/0 md5"
2026-11-22 06:51:00 UTC:10.0.1.7(53730):app_user@appdb:[3160]:LOG:  connection authorized: user=app_user database=appdb SSL enabled
"""


def scan(text: str, **kwargs) -> dict:
    scanner = Scanner(**kwargs)
    for line in text.splitlines(keepends=True):
        scanner.feed(line)
    return scanner.result()


def test_reasons_by_role_from_the_lab_format():
    roles = scan(LAB)["roles"]
    assert roles["app_user"]["by_category"] == {"password_failed": 1,
                                                "connection_limit_reached": 1}
    assert roles["app_user"]["by_reason"] == {"store_password_mismatch": 1}
    assert roles["ghost"]["by_reason"] == {"role_missing": 1}
    assert roles["old"]["by_reason"] == {"role_password_expired": 1}
    assert roles["old"]["hba_lines"] == {"line 7: host all all 10.0.0.0/8 scram-sha-256": 1}
    assert roles["nopw"]["by_reason"] == {"role_password_missing": 1}
    assert roles["locked"]["by_category"] == {"role_cannot_login": 1}
    assert roles["iamu"]["by_category"] == {"pam_failed": 1, "tls_required": 1}
    assert roles["iamu"]["by_reason"] == {"pam: Authentication failure": 1}
    assert roles["iamu"]["successes"] == 1
    assert roles["iamu"]["last_success"].startswith("2026-11-22T06:50:29.307")
    assert "x" not in roles  # statements are not logins


def test_rds_prefix():
    roles = scan(RDS)["roles"]
    assert roles["app_user"]["by_reason"] == {"store_password_mismatch": 1}
    assert roles["app_user"]["hba_lines"] == {"line 13: host all all 0.0.0.0/0 md5": 1}
    assert roles["app_user"]["successes"] == 1
    assert roles["app_user"]["first_failure"] == "2026-11-22T06:50:29+00:00"


def test_role_filter_and_window():
    since = dt.datetime(2026, 11, 22, 6, 50, 30, tzinfo=dt.timezone.utc)
    result = scan(LAB, since=since, role="app_user")
    assert list(result["roles"]) == ["app_user"]
    assert result["roles"]["app_user"]["by_category"] == {"connection_limit_reached": 1}
    assert result["failures"] == 1


def test_iam_verifier_log():
    line = "2026-11-22T06:53:33Z user='iamu' outcome=deny reason=token expired\n"
    roles = scan(line + line.replace("deny reason=token expired", "allow reason=ok"))["roles"]
    assert roles["iamu"]["by_reason"] == {"iam: token expired": 1}


def test_samples_are_redacted():
    # a client that passed a presigned URL and a connection URL as its database name
    text = ("2026-11-22 06:50:29.084 UTC [1] a@X-Amz-Signature=abcdef0123 postgresql://a:hunter2@h/d"
            ' FATAL:  password authentication failed for user "a"\n')
    sample = scan(text)["roles"]["a"]["samples"][0]
    assert "abcdef0123" not in sample and "hunter2" not in sample
    assert redact("PASSWORD 'SCRAM-SHA-256$4096:abc'") == "PASSWORD ********"


def lab_fatal(user: str, msg: str, db: str = "appdb") -> str:
    return f"2026-11-22 06:50:29.084 UTC [1] {user}@{db} FATAL:  {msg}"


def rds_fatal(user: str, msg: str, remote: str = "10.0.1.7(53722)") -> str:
    return f"2026-11-22 06:50:29 UTC:{remote}:{user}@appdb:[1]:FATAL:  {msg}"


PW_FAILED = 'password authentication failed for user "{}"'
HBA_REJECT = ('pg_hba.conf rejects connection for host "10.0.1.7", user "{}", database "appdb", '
              'no encryption')


@pytest.mark.parametrize(("line", "role", "category"), [
    # PostgreSQL prints a role's '"' as it is
    (lab_fatal('we"ird', PW_FAILED.format('we"ird')), 'we"ird', "password_failed"),
    (rds_fatal('we"ird', HBA_REJECT.format('we"ird')), 'we"ird', "tls_required"),
    # whitespace in the role or database of the lab prefix
    (lab_fatal("my user", PW_FAILED.format("my user")), "my user", "password_failed"),
    (lab_fatal("app", PW_FAILED.format("app"), db="my db"), "app", "password_failed"),
    # '@' and ':' in the role of the RDS prefix; an IPv6 client address
    (rds_fatal("alice@corp.com", 'too many connections for role "alice@corp.com"'),
     "alice@corp.com", "connection_limit_reached"),
    (rds_fatal("a@b:c", 'role "a@b:c" is not permitted to log in'), "a@b:c",
     "role_cannot_login"),
    (rds_fatal("a@b:c", PW_FAILED.format("a@b:c")), "a@b:c", "password_failed"),
    (rds_fatal("app", PW_FAILED.format("app"), remote="2001:db8::7(53722)"), "app",
     "password_failed"),
    (rds_fatal("alice@corp.com", "sorry, too many clients already"), "alice@corp.com",
     "connection_limit_reached"),
])
def test_the_role_is_read_whatever_its_characters(line, role, category):
    result = scan(line + "\n")
    assert list(result["roles"]) == [role]
    assert result["roles"][role]["by_category"] == {category: 1}


def test_a_bad_zone_leaves_the_time_unknown_and_the_line_counted():
    line = ('2026-11-22 06:50:29 +99 [1] u@appdb FATAL:  password authentication failed for '
            'user "u"\n')
    result = scan(LAB + line)
    assert result["roles"]["u"]["failures"] == 1
    assert result["roles"]["u"]["first_failure"] is None
    assert result["failures"] == scan(LAB)["failures"] + 1


@pytest.mark.parametrize(("line", "secret"), [
    ("LOG:  statement: ALTER ROLE app PASSWORD 'ab''SECRET'", "SECRET"),
    ('LOG:  statement: ALTER ROLE app PASSWORD "ab""SECRET"', "SECRET"),
    ("LOG:  statement: ALTER ROLE app PASSWORD 'cut off SECRET", "SECRET"),
    ("FATAL:  bad url postgresql://u:p@ss@h/d", "ss"),
    ("FATAL:  bad url postgresql://u:p@SECRET/x@h/d", "SECRET"),
    ("LOG:  statement: ALTER ROLE app PASSWORD $$SECRET$$", "SECRET"),
    ("LOG:  statement: ALTER ROLE app PASSWORD $pw$SEC'RET$pw$", "RET"),
    ("LOG:  statement: ALTER ROLE app PASSWORD E'SEC\\'RET'", "RET"),
    ("LOG:  connection string host=h password=SECRET user=u", "SECRET"),
])
def test_redact_sql_escapes_and_unencoded_url_passwords(line, secret):
    assert secret not in redact(line)
    assert redact(redact(line)) == redact(line)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600),
                                               ("2d", 172800)])
def test_since_durations(text, seconds):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert (now - parse_since(text, now)).total_seconds() == seconds


def test_since_timestamp_and_garbage():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_since("2025-12-31T23:00:00", now).tzinfo is not None
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday-ish", now)


@pytest.mark.parametrize("text", ["3000000d", "1000000w", "99999999999999999999999d"])
def test_since_too_far_back_is_a_value_error(text):
    with pytest.raises(ValueError, match="since"):
        parse_since(text, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))


def test_redact_keeps_the_words_of_a_failed_login():
    line = 'FATAL:  password authentication failed for user "app"'
    assert redact(line) == line


# -- which DETAIL belongs to which FATAL ------------------------------------------------------

def lab_line(pid: int, level: str, msg: str, stamp: str = "2026-11-22 06:50:29.084") -> str:
    return f"{stamp} UTC [{pid}] app@appdb {level}:  {msg}\n"


FAILED = 'password authentication failed for user "app"'
MISSING = 'Role "app" does not exist.'


@pytest.mark.parametrize(("lines", "reasons"), [
    # the same process and timestamp, next line of the process: its reason
    ([lab_line(1, "FATAL", FAILED), lab_line(1, "DETAIL", MISSING)], {"role_missing": 1}),
    # lines of other processes in between do not matter
    ([lab_line(1, "FATAL", FAILED), lab_line(2, "LOG", "connection authorized: user=x"),
      lab_line(1, "DETAIL", MISSING)], {"role_missing": 1}),
    # another timestamp: another message (a reused pid, or a forged line)
    ([lab_line(1, "FATAL", FAILED), lab_line(1, "DETAIL", MISSING, "2026-11-22 06:50:29.085")],
     {}),
    # another line of the process in between ends the wait
    ([lab_line(1, "FATAL", FAILED), lab_line(1, "LOG", "pam_authenticate failed: x"),
      lab_line(1, "DETAIL", MISSING)], {}),
    # one DETAIL per FATAL
    ([lab_line(1, "FATAL", FAILED), lab_line(1, "DETAIL", MISSING),
      lab_line(1, "DETAIL", 'User "app" has an expired password.')], {"role_missing": 1}),
    # PostgreSQL explains no connection limit with a DETAIL: one after it is not its reason
    ([lab_line(1, "FATAL", 'too many connections for role "app"'),
      lab_line(1, "DETAIL", MISSING)], {}),
])
def test_a_detail_counts_only_for_its_own_fatal(lines, reasons):
    assert scan("".join(lines))["roles"]["app"]["by_reason"] == reasons


def test_continuation_lines_count_only_after_a_detail_line():
    text = (lab_line(1, "FATAL", FAILED) + lab_line(1, "DETAIL", MISSING)
            + '\tConnection matched pg_hba.conf line 6: "host all all 0.0.0.0/0 scram-sha-256"\n'
            # a user name with a line break: the rest of its FATAL is no DETAIL of process 1
            + "2026-11-22 06:50:30.000 UTC [2] \n"
            + 'x@appdb FATAL:  password authentication failed for user "\n'
            + '\tConnection matched pg_hba.conf line 1: "host all all 0.0.0.0/0 trust"\n')
    roles = scan(text)["roles"]
    assert roles["app"]["hba_lines"] == {"line 6: host all all 0.0.0.0/0 scram-sha-256": 1}
    assert roles["app"]["by_reason"] == {"role_missing": 1}


def test_a_fatal_that_only_contains_the_words_of_one_is_none():
    # what an unauthenticated client gets logged with replication=<anything>
    line = lab_line(1, "FATAL", 'invalid value for parameter "replication": "password '
                    'authentication failed for user "app""')
    assert scan(line)["failures"] == 0


def test_a_role_name_cut_by_a_line_break_is_counted_as_unreadable():
    result = scan(lab_line(1, "FATAL", 'password authentication failed for user "app')
                  + '\tmore"\n')
    assert result["roles"] == {} and result["failures"] == 0
    assert result["dropped"]["unreadable_events"] == 1 and result["truncated"] is True


def test_tls_required_is_read_after_the_names():
    # a role named "SSL off" is no TLS problem
    msg = ('pg_hba.conf rejects connection for host "10.0.0.7", user "SSL off", database "d", '
           'SSL encryption')
    assert scan(lab_line(1, "FATAL", msg))["roles"]["SSL off"]["by_category"] == {"hba_reject": 1}


def test_ldap_and_radius_failures_with_their_masked_hba_lines():
    text = (lab_line(1, "FATAL", 'LDAP authentication failed for user "app"')
            + lab_line(1, "DETAIL", 'Connection matched pg_hba.conf line 2: "host all app '
                       '0.0.0.0/0 ldap ldapserver=h ldapbindpasswd=hunter2"')
            + lab_line(2, "FATAL", 'RADIUS authentication failed for user "app"')
            + lab_line(2, "DETAIL", 'Connection matched pg_hba.conf line 3: "host all app '
                       '0.0.0.0/0 radius radiusservers=r radiussecrets=hunter3"'))
    stats = scan(text)["roles"]["app"]
    assert stats["by_category"] == {"ldap_failed": 1, "radius_failed": 1}
    assert stats["hba_lines"] == {
        "line 2: host all app 0.0.0.0/0 ldap ldapserver=h ldapbindpasswd=********": 1,
        "line 3: host all app 0.0.0.0/0 radius radiusservers=r radiussecrets=********": 1}
    assert stats["by_reason"] == {}  # a wrong password is a password login's reason only


# -- bounds -----------------------------------------------------------------------------------

def test_roles_beyond_the_bound_are_counted_not_kept(monkeypatch):
    monkeypatch.setattr(logscan, "MAX_ROLES", 3)
    text = "".join(lab_line(i, "FATAL", f'password authentication failed for user "r{i}"')
                   for i in range(5))
    result = scan(text)
    assert sorted(result["roles"]) == ["r0", "r1", "r2"]
    assert result["failures"] == 5
    assert result["dropped"]["role_events"] == 2 and result["truncated"] is True


def test_a_name_longer_than_any_role_is_not_kept():
    result = scan(lab_line(1, "FATAL", f'password authentication failed for user "{"r" * 300}"'))
    assert result["roles"] == {} and result["dropped"]["role_events"] == 1


def test_reasons_per_role_are_bounded(monkeypatch):
    monkeypatch.setattr(logscan, "KEY_LIMIT", 2)
    text = "".join(lab_line(i, "FATAL", FAILED)
                   + lab_line(i, "DETAIL", f'Connection matched pg_hba.conf line {i}: "rule {i}"')
                   for i in range(1, 5))
    result = scan(text)
    assert len(result["roles"]["app"]["hba_lines"]) == 2
    assert result["dropped"]["reason_keys"] == 2
    assert result["roles"]["app"]["failures"] == 4


def test_waiting_fatals_are_bounded_and_expire(monkeypatch):
    monkeypatch.setattr(logscan, "PENDING_LIMIT", 3)
    # five at once: two dropped while they could still get a DETAIL
    text = "".join(lab_line(i, "FATAL", FAILED) for i in range(5))
    result = scan(text)
    assert result["dropped"]["pending_events"] == 2
    # one a minute: none is waiting any more when the next comes, so none is dropped
    text = "".join(lab_line(i, "FATAL", FAILED, f"2026-11-22 06:{i:02d}:29.084")
                   for i in range(5))
    assert scan(text)["dropped"]["pending_events"] == 0


def test_samples_are_cut():
    line = lab_line(1, "FATAL", FAILED).replace("app@appdb", "app@" + "d." * 2500)
    (sample,) = scan(line)["roles"]["app"]["samples"]
    assert len(sample) < 1100 and sample.endswith("...[cut]")


def test_a_line_over_the_bound_is_counted_and_not_read():
    long = lab_line(1, "FATAL", FAILED).replace("app@appdb", "app@" + "d" * LINE_LIMIT)
    result = scan(long + lab_line(1, "DETAIL", MISSING))
    assert result["roles"] == {} and result["lines_scanned"] == 2
    assert result["dropped"]["long_lines"] == 1


def test_file_lines_cut_a_long_line_and_skip_its_rest(tmp_path):
    forged = lab_line(9, "FATAL", 'password authentication failed for user "forged"')
    path = tmp_path / "postgresql.log"
    path.write_text("x" * (LINE_LIMIT + 1) + forged.rstrip("\n") + "y" * 40000 + "\n"
                    + lab_line(1, "FATAL", FAILED))
    lines = list(file_lines(str(path), None))
    assert len(lines) == 2 and len(lines[0]) == LINE_LIMIT + 1 and lines[1].startswith("2026")
    result = scan("".join(lines[:1]) + "\n" + lines[1])
    assert list(result["roles"]) == ["app"] and result["dropped"]["long_lines"] == 1


def test_file_lines_keep_a_line_of_exactly_the_bound(tmp_path):
    path = tmp_path / "postgresql.log"
    path.write_text("a" * LINE_LIMIT + "\nb\n")
    assert [len(line) for line in file_lines(str(path), None)] == [LINE_LIMIT + 1, 2]


@pytest.mark.parametrize("statement", [
    "ALTER ROLE app PASSWORD U&'SECRET'", "ALTER ROLE app PASSWORD N'SECRET'",
    "ALTER ROLE app PASSWORD /* c */ 'SECRET'", "ALTER ROLE app PASSWORD -- c\n'SECRET'",
    "ALTER ROLE app PASSWORD $a$SEC$b$SECRET$a$", "ALTER ROLE app PASSWORD'SECRET'",
    "ALTER ROLE app PASSWORD 'SEC'\n  'SECRET'", "ldap passwd=SECRET",
])
def test_redact_sql_literal_forms(statement):
    assert "SECRET" not in redact(statement)
    assert redact(redact(statement)) == redact(statement)
