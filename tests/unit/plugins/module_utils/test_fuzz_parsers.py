"""Property-based fuzzing of the pure parsers: DSNs, log lines, store value formats.

Every property here runs without network, database or files.  A parser bug this fuzzing finds
is pinned by a test marked ``xfail(strict=True)`` with the KNOWN_BUG settings: it fails until
the bug is fixed, then fails the suite (XPASS), so the mark goes together with the fix.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import string
import time
from collections import Counter

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
    build_dsn,
    decode,
    encode,
    looks_like_dsn,
    parse_dsn,
    same_value,
)
from ansible_collections.credops.pgauth.plugins.module_utils.hba_redact import redact_hba_rule
from ansible_collections.credops.pgauth.plugins.module_utils.logscan import (
    Scanner,
    parse_since,
    parse_timestamp,
    redact,
)
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import (
    unmask_public_fields,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Backend,
    Store,
    StoredValue,
    StoreError,
    StoreValueError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_file import (
    FileBackend,
    dotenv_get,
    dotenv_quote,
    dotenv_set,
    dotenv_unquote,
)

# no example database in the working tree; shrinking is skipped for the known-bug tests
FUZZ = settings(max_examples=150, deadline=None, database=None)
QUICK = settings(max_examples=60, deadline=None, database=None)
KNOWN_BUG = settings(max_examples=25, deadline=None, database=None,
                     phases=[Phase.explicit, Phase.generate])
# an example parses up to 20000 levels of YAML (about 0.3 s) and all take the same error path
DEEP = settings(max_examples=10, deadline=None, database=None)

# -- strategies ------------------------------------------------------------------------------

# what URLs, shells, SQL, YAML and dotenv treat specially
SPECIAL = "@:/?#%&=+[]'\"\\ ;,$`!*~<>{}|^()"
# printable: every Unicode character but surrogates, controls and line/paragraph separators
printable_char = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
hostile_char = st.one_of(st.sampled_from(SPECIAL), printable_char)
hostile_text = st.text(hostile_char, min_size=1, max_size=40)
ascii_printable = st.text(st.sampled_from(string.ascii_letters + string.digits
                                          + string.punctuation + " "),
                          min_size=1, max_size=40)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)
# a marker inside a password: it must never show up in an error message or a public field
MARK = "Zq7S3cr3tMark"
secret_with_mark = st.builds(lambda left, right: left + MARK + right,
                             st.text(hostile_char, max_size=12), st.text(hostile_char, max_size=12))

label = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
hostnames = st.one_of(
    st.lists(label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    # a Unix-socket directory, which libpq takes percent-encoded in the host part
    st.lists(st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), min_size=1, max_size=3)
    .map(lambda parts: "/" + "/".join(parts)),
)
ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))
sslmodes = st.sampled_from([None, "disable", "allow", "prefer", "require", "verify-ca",
                            "verify-full"])
query_params = st.lists(st.tuples(hostile_text.filter(lambda key: key != "sslmode"),
                                  st.text(hostile_char, max_size=20)), max_size=3)


def credential_fields(cred: Credential) -> tuple:
    return (cred.username, cred.password, cred.host, cred.port, cred.dbname, cred.sslmode,
            cred.params)


# -- 1. DSNs (postgresql:// URLs) ------------------------------------------------------------

url_char = st.one_of(st.sampled_from(list("postgresql:/@?#[]%,.=&+ 0123456789abcdefABCDEF")),
                     st.characters(blacklist_categories=("Cs",)))
url_like = st.one_of(
    any_text,
    st.builds(lambda scheme, rest: f"{scheme}://{rest}",
              st.sampled_from(["postgresql", "postgres", "PostgreSQL", " postgres", "mysql",
                               "postgresql+psycopg2", "", "http"]),
              st.text(url_char, max_size=60)),
    # every component in place, none of them encoded
    st.builds(lambda scheme, user, password, host, port, path, query:
              f"{scheme}://{user}:{password}@{host}{port}/{path}?{query}",
              st.sampled_from(["postgresql", "postgres"]), st.text(hostile_char, max_size=10),
              st.text(hostile_char, max_size=15), st.text(url_char, max_size=15),
              st.sampled_from(["", ":5432", ":0", ":65536", ":-1", ":x", ":5432:1"]),
              st.text(hostile_char, max_size=10), st.text(hostile_char, max_size=15)),
)


@FUZZ
@given(text=url_like)
def test_parse_dsn_raises_only_credential_error(text):
    try:
        cred = parse_dsn(text)
    except CredentialError as err:
        assert str(err)
        return
    assert isinstance(cred, Credential)
    assert looks_like_dsn(text), "parse_dsn accepted something looks_like_dsn rejects"
    assert cred.port is None or 0 <= cred.port <= 65535
    for value in (cred.username, cred.password, cred.host, cred.dbname, cred.sslmode):
        assert value is None or isinstance(value, str)
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in cred.params)


@FUZZ
@given(text=url_like, fmt=st.sampled_from(["json", "password", "dsn", "yaml"]))
def test_decode_raises_only_credential_error(text, fmt):
    try:
        cred = decode(text, fmt)
    except CredentialError:
        assert fmt != "password", "any string is a bare password"
        return
    assert isinstance(cred, Credential)
    if fmt == "password":
        assert cred.password == text


@FUZZ
@given(user=hostile_text, password=hostile_text, host=hostnames, port=ports,
       dbname=st.one_of(st.none(), hostile_text), sslmode=sslmodes, params=query_params)
def test_dsn_render_then_parse_round_trips(user, password, host, port, dbname, sslmode, params):
    cred = Credential(username=user, password=password, host=host, port=port, dbname=dbname,
                      sslmode=sslmode, params=params)
    url = build_dsn(cred)
    assert url.startswith("postgresql://") and looks_like_dsn(url)
    back = parse_dsn(url)
    # host names are case-insensitive: urllib lowercases them
    assert credential_fields(back) == (user, password, host.lower(), port, dbname, sslmode,
                                       params)
    # the same through the store-value API, and a re-render is the same value
    again = encode(decode(url, "dsn"), "dsn")
    assert same_value(url, again, "dsn")
    assert credential_fields(decode(again, "dsn")) == credential_fields(back)


dsn_users = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
dsn_tails = st.sampled_from(["h/d", "h:5432/d", "h:5432/d?sslmode=require", "[::1]/d", "h"])


@FUZZ
@given(user=dsn_users, scheme=st.sampled_from(["postgresql", "postgres"]), tail=dsn_tails,
       # digits then '?' read as a port and a query: the same text as a legitimate
       # "host:5432?application_name=a@b" (or with a path before the '?'), so it is accepted
       password=secret_with_mark.filter(lambda pw: not re.match(r"\d+(?:/[^?#@]*)?\?", pw)))
def test_unencoded_password_never_leaks_from_parse_dsn(user, password, scheme, tail):
    """A DATABASE_URL whose password was never URL-encoded: refused or read, the password
    shows up in no error message and in no public field (host names come back lowercased)."""
    url = f"{scheme}://{user}:{password}@{tail}"
    try:
        cred = parse_dsn(url)
    except CredentialError as err:
        assert MARK.lower() not in str(err).lower()
        return
    assert MARK.lower() not in json.dumps(cred.public(), default=str).lower()
    assert MARK.lower() not in repr(cred.params).lower()
    assert cred.password is not None and MARK in cred.password


@FUZZ
@given(password=secret_with_mark, tail=st.text(hostile_char, max_size=8),
       container=st.sampled_from(["object", "list", "string"]))
def test_broken_json_errors_never_echo_the_password(password, tail, container):
    body = {"object": {"username": "app", "password": password},
            "list": ["app", password], "string": password}[container]
    text = json.dumps(body, ensure_ascii=False)
    text = text[:-1] + tail if container == "object" else text
    try:
        cred = decode(text, "json")
    except CredentialError as err:
        assert MARK not in str(err)
        return
    assert container == "object"
    assert MARK not in json.dumps(cred.public(), default=str)


@FUZZ
@given(user=dsn_users, tail=dsn_tails,
       password=st.one_of(
           st.builds(lambda start, pw: start + pw, st.sampled_from("/?"), secret_with_mark),
           st.builds(lambda left, sep, right: f"{left}@{MARK}{sep}{right}",
                     st.text(st.sampled_from(string.ascii_letters), max_size=5),
                     st.sampled_from("/?#"), st.text(st.sampled_from(string.ascii_letters)))))
def test_unencoded_password_with_a_hidden_at_or_leading_slash(user, password, tail):
    try:
        cred = parse_dsn(f"postgresql://{user}:{password}@{tail}")
    except CredentialError as err:
        assert MARK.lower() not in str(err).lower()
        return
    public = json.dumps(cred.public(), default=str) + repr(cred.params)
    assert MARK.lower() not in public.lower()


@FUZZ
@given(password=hostile_text, host=hostnames)
def test_dsn_without_user_keeps_its_password(password, host):
    url = build_dsn(Credential(username=None, password=password, host=host))
    assert parse_dsn(url).password == password


# -- 2. PostgreSQL log lines ---------------------------------------------------------------

# (message template, category); {user} is the role as PostgreSQL prints it, unescaped
FATAL_TEMPLATES = [
    ('password authentication failed for user "{user}"', "password_failed"),
    ('PAM authentication failed for user "{user}"', "pam_failed"),
    (('pg_hba.conf rejects connection for host "10.0.0.7", user "{user}", database "appdb", '
      'SSL encryption'), "hba_reject"),
    (('pg_hba.conf rejects connection for host "10.0.0.7", user "{user}", database "appdb", '
      'no encryption'), "tls_required"),
    ('no pg_hba.conf entry for host "10.0.0.7", user "{user}", database "appdb", SSL off',
     "no_hba_entry"),
    ('too many connections for role "{user}"', "connection_limit_reached"),
    ('role "{user}" is not permitted to log in', "role_cannot_login"),
]
DETAILS = [
    ('Role "{user}" does not exist.', "role_missing"),
    ('User "{user}" has no password assigned.', "role_password_missing"),
    ('User "{user}" has an expired password.', "role_password_expired"),
    ('Password does not match for user "{user}".', "store_password_mismatch"),
    ('User "{user}" does not have a valid SCRAM secret.', "role_password_hash_incompatible"),
]
HBA_DETAIL = 'Connection matched pg_hba.conf line 6: "hostssl all all 127.0.0.1/32 scram-sha-256"'


def lab_line(level: str, msg: str, pid: int, user: str, stamp: str = "2026-11-22 06:50:29.084 UTC",
             db: str = "appdb") -> str:
    """log_line_prefix '%m [%p] %q%u@%d ' (Debian's default)."""
    return f"{stamp} [{pid}] {user}@{db} {level}:  {msg}"


def rds_line(level: str, msg: str, pid: int, user: str, stamp: str = "2026-11-22 06:50:29 UTC",
             db: str = "appdb") -> str:
    """RDS's fixed '%t:%r:%u@%d:[%p]:'."""
    return f"{stamp}:10.0.1.7(53722):{user}@{db}:[{pid}]:{level}:  {msg}"


LINE_MAKERS = {"lab": lab_line, "rds": rds_line}
# role names PostgreSQL allows (quoted identifiers take anything) but whitespace, which has
# its own test below: a role holding ' FATAL:  ' would read as the end of the lab prefix
role_names = st.text(st.one_of(st.sampled_from(list("'\"@:._-$\\`[]{}#%&*=+,;!?<>|/^()")),
                               st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp",
                                                                   "Zs"))),
                     min_size=1, max_size=24).filter(lambda name: not name[:1].isspace())
random_line = st.one_of(
    any_text,
    st.binary(max_size=160).map(lambda raw: raw.decode("utf-8", errors="replace")),
    # a real prefix with a random level and message
    st.builds(lambda maker, level, msg, pid, user: LINE_MAKERS[maker](level, msg, pid, user),
              st.sampled_from(sorted(LINE_MAKERS)),
              st.sampled_from(["FATAL", "DETAIL", "LOG", "ERROR", "fatal", ""]),
              st.text(st.one_of(st.sampled_from(list(' "@:=\t')), printable_char), max_size=80),
              st.integers(min_value=0, max_value=10 ** 7), st.text(printable_char, max_size=10)),
    st.builds(lambda text: "\t" + text, any_text),
    st.builds(lambda user, outcome, reason: f"2026-01-01T00:00:00Z user={user} outcome={outcome} "
                                            f"reason={reason}",
              st.text(printable_char, max_size=12), st.sampled_from(["deny", "allow", "x"]),
              st.text(printable_char, max_size=20)),
)


@FUZZ
@given(lines=st.lists(random_line, max_size=25), role=st.one_of(st.none(), role_names))
def test_scanner_never_raises_on_arbitrary_lines(lines, role):
    scanner = Scanner(role=role, max_samples=3)
    for line in lines:
        scanner.feed(line)
    result = scanner.result()
    assert result["lines_scanned"] == len(lines)
    assert 0 <= result["failures"] <= len(lines)
    assert result["failures"] == sum(stats["failures"] for stats in result["roles"].values())
    if role is not None:
        assert set(result["roles"]) <= {role}
    json.dumps(result)  # the module returns it as-is


@FUZZ
@given(line=random_line)
def test_redact_and_parse_timestamp_never_raise(line):
    redacted = redact(line)
    assert isinstance(redacted, str) and redact(redacted) == redacted
    stamp = parse_timestamp(line)
    assert stamp is None or stamp.tzinfo is not None


@FUZZ
@given(text=st.one_of(any_text, st.from_regex(r"\s*[0-9]{1,5}\s*[smhdwy]?\s*", fullmatch=True),
                      st.datetimes().map(dt.datetime.isoformat)))
def test_parse_since_raises_only_value_error(text):
    now = dt.datetime(2026, 11, 22, 6, 50, tzinfo=dt.timezone.utc)
    try:
        since = parse_since(text, now)
    except ValueError:
        return
    assert since is None or since.tzinfo is not None


@FUZZ
@given(amount=st.integers(min_value=0, max_value=5000), unit=st.sampled_from("smhdw"))
def test_parse_since_durations_are_exact(amount, unit):
    now = dt.datetime(2026, 11, 22, 6, 50, tzinfo=dt.timezone.utc)
    seconds = amount * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_since(f" {amount}{unit} ", now) == now - dt.timedelta(seconds=seconds)


@FUZZ
@given(stamp=st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9998, 1, 1)),
       hours=st.integers(min_value=0, max_value=14), minutes=st.sampled_from([0, 30, 45]),
       sign=st.sampled_from("+-"), colon=st.booleans())
def test_parse_timestamp_reads_numeric_zones(stamp, hours, minutes, sign, colon):
    # "-00:30" reads as +00:30, but no real zone is west of UTC by less than an hour
    if hours == 0 and minutes:
        sign = "+"
    zone = f"{sign}{hours:02d}" + ((":" if colon else "") + f"{minutes:02d}" if minutes else "")
    text = f"{stamp.date().isoformat()} {stamp.time().isoformat()} {zone}"
    offset = dt.timedelta(hours=hours, minutes=minutes) * (-1 if sign == "-" else 1)
    assert parse_timestamp(text) == stamp.replace(tzinfo=dt.timezone(offset))


@FUZZ
@given(user=role_names, template=st.sampled_from(FATAL_TEMPLATES),
       maker=st.sampled_from(sorted(LINE_MAKERS)), pid=st.integers(min_value=1, max_value=99999))
def test_fatal_lines_are_classified_for_the_right_user(user, template, maker, pid):
    text, category = template
    line = LINE_MAKERS[maker]("FATAL", text.format(user=user), pid, user)
    scanner = Scanner()
    scanner.feed(line + "\n")
    result = scanner.result()
    assert result["failures"] == 1, line
    assert list(result["roles"]) == [user]
    assert result["roles"][user]["by_category"] == {category: 1}
    # only the role filter's own role is counted
    other = Scanner(role=user + "x")
    other.feed(line)
    assert other.result()["failures"] == 0


@FUZZ
@given(user=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), pid=st.integers(1, 99999),
       maker=st.sampled_from(sorted(LINE_MAKERS)))
def test_too_many_clients_is_counted_for_the_prefix_user(user, pid, maker):
    scanner = Scanner()
    scanner.feed(LINE_MAKERS[maker]("FATAL", "sorry, too many clients already", pid, user))
    assert scanner.result()["roles"][user]["by_category"] == {"connection_limit_reached": 1}


@st.composite
def log_streams(draw):
    """A log of failed logins (some with DETAIL lines), successes and noise, with what a
    correct scan counts: failures per (role, category) and DETAIL reasons per role."""
    users = draw(st.lists(role_names, min_size=1, max_size=4, unique=True))
    lines, failures, reasons = [], Counter(), Counter()
    for pid in range(100, 100 + draw(st.integers(min_value=0, max_value=30))):
        user = draw(st.sampled_from(users))
        maker = LINE_MAKERS[draw(st.sampled_from(sorted(LINE_MAKERS)))]
        kind = draw(st.sampled_from(["fatal", "success", "noise", "statement", "garbage"]))
        if kind == "fatal":
            text, category = draw(st.sampled_from(FATAL_TEMPLATES))
            lines.append(maker("FATAL", text.format(user=user), pid, user))
            failures[user, category] += 1
            detail = draw(st.sampled_from([None, "hba", *DETAILS]))
            if detail == "hba":
                # a failed SCRAM exchange logs only the hba line: a wrong password
                lines.append(maker("DETAIL", HBA_DETAIL, pid, user))
                if category == "password_failed":
                    reasons[user, "store_password_mismatch"] += 1
            elif detail is not None:
                lines.append(maker("DETAIL", detail[0].format(user=user), pid, user))
                # PostgreSQL gives a reason only with a failed password or PAM exchange; a
                # DETAIL after any other FATAL is not that FATAL's and must not count
                if category in ("password_failed", "pam_failed"):
                    reasons[user, detail[1]] += 1
        elif kind == "success":
            lines.append(maker("LOG", "connection authorized: user=app database=appdb", pid,
                               user))
        elif kind == "noise":
            lines.append(maker("LOG", "connection received: host=10.0.0.7 port=5432", pid, user))
        elif kind == "statement":
            # the words of a failure, at a level that is not FATAL
            text = draw(st.sampled_from(FATAL_TEMPLATES))[0].format(user=user)
            level = draw(st.sampled_from(["LOG", "ERROR", "WARNING", "STATEMENT"]))
            lines.append(maker(level, f"statement: SELECT '{text}'", pid, user))
        else:
            lines.append(draw(st.one_of(any_text, st.binary(max_size=80).map(
                lambda raw: raw.decode("utf-8", errors="replace"))).filter(
                    lambda text: not text[:1].isdigit() and not text.startswith("\t"))))
    return lines, failures, reasons


@FUZZ
@given(stream=log_streams())
def test_scan_counts_exactly_the_generated_failed_logins(stream):
    lines, failures, reasons = stream
    scanner = Scanner()
    for line in lines:
        scanner.feed(line + "\n")
    result = scanner.result()
    assert result["lines_scanned"] == len(lines)
    assert result["failures"] == sum(failures.values())
    found = Counter({(role, category): count for role, stats in result["roles"].items()
                     for category, count in stats["by_category"].items()})
    assert found == failures
    found_reasons = Counter({(role, reason): count for role, stats in result["roles"].items()
                             for reason, count in stats["by_reason"].items()
                             if not reason.startswith("pam: ")})
    assert found_reasons == reasons


@FUZZ
@given(left=role_names, right=role_names, maker=st.sampled_from(sorted(LINE_MAKERS)))
def test_fatal_lines_with_a_double_quote_in_the_role(left, right, maker):
    user = f'{left}"{right}'
    scanner = Scanner()
    scanner.feed(LINE_MAKERS[maker]("FATAL", FATAL_TEMPLATES[0][0].format(user=user), 7, user))
    assert list(scanner.result()["roles"]) == [user]


@FUZZ
@given(left=st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True), sep=st.sampled_from("@:"),
       right=st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True),
       template=st.sampled_from(FATAL_TEMPLATES))
def test_rds_lines_with_at_or_colon_in_the_role(left, sep, right, template):
    # the first once made the RDS prefix miss, the second was counted for the part before "@"
    user = f"{left}@{right}:{left}" if 'user "' in template[0] else f"{left}{sep}{right}"
    scanner = Scanner()
    scanner.feed(rds_line("FATAL", template[0].format(user=user), 7, user))
    assert list(scanner.result()["roles"]) == [user]


@FUZZ
@given(left=role_names, right=role_names, space=st.sampled_from([" ", "\u00a0", "\u3000"]))
def test_lab_lines_with_whitespace_in_the_role(left, right, space):
    user = f"{left}{space}{right}"
    scanner = Scanner()
    scanner.feed(lab_line("FATAL", FATAL_TEMPLATES[0][0].format(user=user), 7, user))
    assert scanner.result()["failures"] == 1


@FUZZ
@given(hours=st.integers(min_value=24, max_value=99), sign=st.sampled_from("+-"))
def test_scanner_survives_an_out_of_range_zone(hours, sign):
    scanner = Scanner()
    line = lab_line("FATAL", 'password authentication failed for user "u"', 7, "u",
                    stamp=f"2026-11-22 06:50:29 {sign}{hours:02d}")
    scanner.feed(line)
    assert scanner.result()["failures"] == 1


@FUZZ
@given(amount=st.integers(min_value=10 ** 6, max_value=10 ** 30), unit=st.sampled_from("dw"))
def test_parse_since_huge_durations(amount, unit):
    now = dt.datetime(2026, 11, 22, 6, 50, tzinfo=dt.timezone.utc)
    try:
        since = parse_since(f"{amount}{unit}", now)
    except ValueError as err:
        assert "since" in str(err)
        return
    assert since < now


safe_secret = st.builds(lambda left, right: left + MARK + right,
                        st.text(st.sampled_from(string.ascii_letters + "!$%^&*()-+=[]{}~,."),
                                max_size=10),
                        st.text(st.sampled_from(string.ascii_letters + "!$%^&*()-+=[]{}~,."),
                                max_size=10))


@FUZZ
@given(secret=safe_secret, form=st.sampled_from([
    "LOG:  statement: ALTER ROLE app PASSWORD '{pw}'",
    'LOG:  statement: ALTER ROLE app WITH LOGIN PASSWORD "{pw}"',
    "DETAIL:  password={pw} host=h",
    "DETAIL:  Password: {pw}",
    "FATAL:  bad url postgresql://app:{pw}@db.internal:5432/appdb",
    "FATAL:  bad url postgres://app:{pw}@db/appdb?x=1",
    "GET /?X-Amz-Signature={pw}&X-Amz-Date=1",
]), prefix=st.text(printable_char, max_size=20))
def test_redact_removes_passwords_in_every_known_form(secret, form, prefix):
    if "X-Amz" in form:
        secret = secret.replace("&", "")  # a query string value holds no raw '&'
    line = prefix + " " + form.format(pw=secret)
    assert MARK not in redact(line)


@FUZZ
@given(left=st.text(st.sampled_from(string.ascii_letters), min_size=1, max_size=5),
       form=st.sampled_from(["ALTER ROLE app PASSWORD '{left}''{mark}'",
                             "postgresql://app:{left}@{mark}@db/appdb"]))
def test_redact_sql_escaped_and_unencoded_url_passwords(left, form):
    assert MARK not in redact(form.format(left=left, mark=MARK))


# fixed texts of the messages the scanner reads: lines made of them are what made the old
# patterns try every (start, separator, quote) combination
FRAGMENTS = [', user "', '", database "', '"', ", ", 'for user "', 'for role "', 'Role "',
             '" does not exist', "Connection matched pg_hba.conf line 1: ", "postgres://a:",
             "PASSWORD ", "password=", "$a$", "'", "''", "\\", "@", " FATAL:  ", "x", " "]


@QUICK
@given(parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12),
       start=st.sampled_from(["password authentication failed for user \"",
                              "no pg_hba.conf entry for host \"h\", user \"",
                              'invalid value for parameter "replication": "', ""]),
       maker=st.sampled_from(sorted(LINE_MAKERS)))
def test_scanning_a_long_crafted_line_takes_linear_time(parts, start, maker):
    unit = "".join(parts)
    crafted = start + unit * (15000 // len(unit))
    scanner = Scanner()
    began = time.process_time()
    scanner.feed(LINE_MAKERS[maker]("FATAL", crafted, 7, "u"))
    scanner.feed(LINE_MAKERS[maker]("DETAIL", unit * (15000 // len(unit)), 7, "u"))
    redact(crafted)
    # linear: a few ms; the old patterns took seconds to hours on such lines
    assert time.process_time() - began < 0.5


@FUZZ
@given(user=role_names, maker=st.sampled_from(sorted(LINE_MAKERS)),
       other=st.sampled_from(["pid", "stamp", "line between"]),
       detail=st.sampled_from(DETAILS))
def test_a_detail_of_another_message_never_counts(user, maker, other, detail):
    make = LINE_MAKERS[maker]
    lines = [make("FATAL", FATAL_TEMPLATES[0][0].format(user=user), 7, user)]
    if other == "pid":
        lines.append(make("DETAIL", detail[0].format(user=user), 8, user))
    elif other == "stamp":
        lines.append(make("DETAIL", detail[0].format(user=user), 7, user,
                          stamp="2026-11-22 06:50:30 UTC"))
    else:
        lines.append(make("LOG", "pam_authenticate failed: x", 7, user))
        lines.append(make("DETAIL", detail[0].format(user=user), 7, user))
    scanner = Scanner()
    for line in lines:
        scanner.feed(line)
    assert scanner.result()["roles"][user]["by_reason"] == {}


hba_char = st.one_of(st.sampled_from(list(' ,#"=\'\t')), printable_char)
hba_secret = st.builds(lambda left, right: left + MARK + right,
                       st.text(hba_char, max_size=10), st.text(hba_char, max_size=10))


@FUZZ
@given(secret=hba_secret, option=st.sampled_from(["ldapbindpasswd", "radiussecrets",
                                                  "radiussecret"]),
       before=st.sampled_from(["", "ldapserver=h ", "ldapserver=h,", '"ldapbinddn=cn=a b" ']),
       after=st.sampled_from(["", " ldaptls=1", ",ldaptls=1", "  # a comment"]),
       quoted=st.booleans())
def test_redact_hba_rule_never_leaves_a_secret(secret, option, before, after, quoted):
    # pg_hba.conf quoting: a value with a blank, ',', '#' or '"' is quoted, '"' doubled;
    # unquoted, the server would cut the value there (and reject the line), but the logged
    # line is still all there
    value = f'"{secret.replace(chr(34), chr(34) * 2)}"' if quoted else secret
    rule = f"host all all 0.0.0.0/0 ldap {before}{option}={value}{after}"
    redacted = redact_hba_rule(rule)
    if quoted or not any(char in secret for char in ' \t#"'):
        assert MARK not in redacted, redacted
    assert redact_hba_rule(redacted) == redacted


# -- 3. store value formats --------------------------------------------------------------------

class MemoryBackend(Backend):
    """A store that holds one value in memory (what Store decodes and encodes)."""

    def __init__(self, value, as_text: bool):
        super().__init__({"name": "mem"}, {})
        self.value = value
        self.value_is_text = as_text

    def describe(self) -> str:
        return "memory"

    def read(self, stage: str) -> StoredValue | None:
        if stage != "current" or self.value is None:
            return None
        return StoredValue(self.value, "1", ["current"])

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        self.value = value
        return "2"


def memory_store(value, value_format: str, as_text: bool = True) -> Store:
    store = Store({"name": "mem", "type": "file", "path": "/nonexistent/app.env",
                   "format": "dotenv", "key": "K", "value_format": value_format}, {})
    store._backend = MemoryBackend(value, as_text)
    return store


def value_in(backend: FileBackend, text: str):
    """What a file store reads from the file's text (no file is opened)."""
    return backend._value_in(text)  # pylint: disable=protected-access


def render(backend: FileBackend, text: str, value) -> str:
    """The file's text after a write of value (no file is written)."""
    return backend._render(text, value)  # pylint: disable=protected-access


def file_backend(fmt: str, key: str, **spec) -> FileBackend:
    return FileBackend({"name": "f", "type": "file", "path": "/nonexistent/app." + fmt,
                        "format": fmt, "key": key, **spec}, {})


@FUZZ
@given(value=st.one_of(url_like, secret_with_mark.map(lambda pw: f'{{"password": "{pw}"')),
       value_format=st.sampled_from(["json", "dsn", "password", ""]))
def test_store_read_raises_only_store_value_error_without_the_secret(value, value_format):
    store = memory_store(value, value_format)
    try:
        cred, stored = store.read()
    except StoreValueError as err:
        assert str(err).startswith("store 'mem'")
        assert MARK not in str(err)
        return
    assert stored.value == value and isinstance(cred, Credential)


existing_values = st.fixed_dictionaries({
    "user": hostile_text, "host": hostnames, "port": ports, "dbname": hostile_text,
    "old": hostile_text, "sslmode": sslmodes, "params": query_params,
    "extra": st.dictionaries(st.sampled_from(["engine", "proxy", "note", "dbClusterIdentifier"]),
                             st.one_of(hostile_text, st.integers(), st.none(),
                                       st.dictionaries(hostile_text, hostile_text, max_size=2)),
                             max_size=3),
})


@FUZZ
@given(old=existing_values, password=hostile_text,
       fmt=st.sampled_from(["json", "json-mapping", "dsn", "password"]))
def test_store_rewrites_only_the_password(old, password, fmt):
    """Writing a new password to a store keeps every other field (and every unknown JSON
    key, URL parameter) of what it held, and reads back as exactly that password."""
    base = Credential(username=old["user"], password=old["old"], host=old["host"],
                      port=old["port"], dbname=old["dbname"], sslmode=old["sslmode"],
                      params=old["params"] if fmt == "dsn" else [],
                      extra=old["extra"] if fmt.startswith("json") else {})
    value_format, as_text = fmt.split("-")[0], fmt != "json-mapping"
    if value_format == "password":
        base = Credential(password=old["old"])
    value = encode(base, value_format, None, as_text=as_text)
    store = memory_store(value, value_format, as_text)
    plan = store.plan_write({"password": password})
    assert plan.changed == (password != old["old"])
    after = decode(plan.value, value_format)
    assert after.password == password
    assert credential_fields(after.merged({"password": old["old"]})) == \
        credential_fields(decode(value, value_format))
    if value_format == "json":
        before_map = value if isinstance(value, dict) else json.loads(value)
        after_map = plan.value if isinstance(plan.value, dict) else json.loads(plan.value)
        assert list(after_map) == list(before_map)
        assert {k: v for k, v in after_map.items() if k != "password"} == \
            {k: v for k, v in before_map.items() if k != "password"}
    store.write(plan)
    assert store.read()[0].password == password


@QUICK
@given(value=hostile_text.flatmap(lambda pw: st.fixed_dictionaries({
    "username": st.one_of(hostile_text, st.just(pw)), "password": st.just(pw),
    "host": hostnames, "port": ports, "dbname": st.one_of(hostile_text, st.just(pw))})))
def test_unmask_public_fields_keeps_the_password_masked(value):
    no_log = {str(field) for field in value.values() if field is not None}
    unmask_public_fields(no_log, value)
    assert no_log == {value["password"]}


# dotenv

env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True)
# a value a dotenv file can hold: anything printable (no newline, no NUL)
env_values = st.text(hostile_char, max_size=30)


@st.composite
def dotenv_documents(draw):
    """(text, {key: value}) of a dotenv file with export, spacing, quoting and comments."""
    values = draw(st.dictionaries(env_keys, env_values, min_size=1, max_size=6))
    lines = []
    for key, value in values.items():
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# a comment", "  # KEY=not this",
                                               "#export X=1"])))
        lead = draw(st.sampled_from(["", "export ", "  ", "\texport  "]))
        equals = draw(st.sampled_from(["=", " = ", "= "]))
        raw = dotenv_quote(value, draw(st.sampled_from(["", "'x'", '"x"'])))
        lines.append(f"{lead}{key}{equals}{raw}")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline])), values


@FUZZ
@given(text=st.one_of(any_text, st.text(st.sampled_from(list("AB_=export '\"#\\$`\n\t ")),
                                        max_size=60)),
       key=st.one_of(env_keys, st.sampled_from(["A", "B", "A_B", "export"])))
def test_dotenv_parsing_never_raises_but_key_error(text, key):
    assert isinstance(dotenv_unquote(text), str)
    try:
        value = dotenv_get(text, key)
    except KeyError:
        return
    assert isinstance(value, str) and "\n" not in value


@FUZZ
@given(value=st.text(st.one_of(hostile_char, st.sampled_from(["\n", "\x00"])), max_size=30))
def test_dotenv_quote_refuses_only_newline_and_nul(value):
    try:
        quoted = dotenv_quote(value)
    except ValueError:
        assert "\n" in value or "\x00" in value
        return
    assert dotenv_unquote(quoted) == value


@FUZZ
@given(document=dotenv_documents(), data=st.data(), password=env_values)
def test_dotenv_edit_changes_one_value_and_no_other_line(document, data, password):
    text, values = document
    for key, value in values.items():
        assert dotenv_get(text, key) == value
    key = data.draw(st.sampled_from(sorted(values)))
    new_text = dotenv_set(text, key, password)
    assert dotenv_get(new_text, key) == password
    for other, value in values.items():
        assert dotenv_get(new_text, other) == value or other == key
    old_lines, new_lines = text.splitlines(keepends=True), new_text.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    changed = [old for old, new in zip(old_lines, new_lines, strict=True) if old != new]
    assert len(changed) <= 1
    # the FileBackend path gives the same text
    assert render(file_backend("dotenv", key), text, password) == new_text


@FUZZ
@given(password=env_values.filter(bool), equals=st.sampled_from(["=", " = "]),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_dotenv_edit_of_an_empty_value(password, equals, newline):
    text = dotenv_set(f"DB_PASSWORD{equals}{newline}DB_USER=app{newline}", "DB_PASSWORD", password)
    assert dotenv_get(text, "DB_PASSWORD") == password
    assert dotenv_get(text, "DB_USER") == "app"


@FUZZ
@given(value=st.text(st.sampled_from(string.ascii_letters + string.digits), min_size=1),
       quote=st.sampled_from("'\""),
       comment=st.text(st.sampled_from(string.ascii_letters), min_size=1, max_size=10))
def test_dotenv_quoted_value_with_a_trailing_comment(value, quote, comment):
    assert dotenv_get(f"K={quote}{value}{quote} # {comment}\n", "K") == value


@FUZZ
@given(left=env_values, right=env_values,
       brk=st.sampled_from(["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                            "\u2029"]))
def test_dotenv_values_with_other_line_breaks(left, right, brk):
    value = left + brk + right
    try:
        text = dotenv_set("A=1\nK=old\nB=2\n", "K", value)
    except ValueError:
        return  # refusing the value would be right too
    assert dotenv_get(text, "K") == value
    assert dotenv_get(text, "B") == "2"


# YAML and JSON documents

doc_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
doc_scalars = st.one_of(st.text(printable_char, max_size=20), st.integers(), st.booleans(),
                        st.none())
documents = st.dictionaries(doc_keys, st.one_of(
    doc_scalars, st.dictionaries(doc_keys, doc_scalars, min_size=1, max_size=4)),
    min_size=1, max_size=5)


def leaf_paths(doc: dict) -> list[list[str]]:
    return [[key, *([sub] if isinstance(value, dict) else [])]
            for key, value in doc.items()
            for sub in (value if isinstance(value, dict) else [None])]


def with_value(doc: dict, path: list[str], value) -> dict:
    expected = copy.deepcopy(doc)
    node = expected
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return expected


def leaf(doc: dict, path: list[str]):
    node = doc
    for part in path:
        node = node[part]
    return node


def cleaned(path: list[str | None]) -> list[str]:
    return [part for part in path if part is not None]


@FUZZ
@given(doc=documents, data=st.data(), value=hostile_text,
       fmt=st.sampled_from(["yaml", "json-indent", "json-flat"]))
def test_yaml_and_json_edit_sets_one_key_and_keeps_the_rest(doc, data, value, fmt):
    path = cleaned(data.draw(st.sampled_from(leaf_paths(doc))))
    if fmt == "yaml":
        text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(doc, indent=2 if fmt == "json-indent" else None) + "\n"
    backend = file_backend(fmt.split("-")[0], ".".join(path))
    assert value_in(backend, text) == leaf(doc, path)
    new_text = render(backend, text, value)
    expected = with_value(doc, path, value)
    loaded = yaml.safe_load(new_text) if fmt == "yaml" else json.loads(new_text)
    assert loaded == expected
    assert list(loaded) == list(doc)
    assert value_in(backend, new_text) == value
    if fmt != "yaml":
        assert new_text.endswith("\n")


@st.composite
def commented_yaml(draw):
    """Block-style YAML with comment lines (ASCII values, so no re-dump is ever needed)."""
    ascii_scalars = st.one_of(ascii_printable, st.integers(), st.booleans(), st.none())
    doc = draw(st.dictionaries(doc_keys, st.one_of(
        ascii_scalars, st.dictionaries(doc_keys, ascii_scalars, min_size=1, max_size=4)),
        min_size=1, max_size=5))
    dumped = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, width=1 << 30)
    lines = []
    for number, line in enumerate(dumped.splitlines(keepends=True)):
        if draw(st.booleans()):
            lines.append(f"# comment {number}: password: not-this\n")
        lines.append(line)
    return "".join(lines), doc


@FUZZ
@given(document=commented_yaml(), data=st.data(), value=ascii_printable)
def test_yaml_edit_in_place_keeps_comments_and_other_lines(document, data, value):
    text, doc = document
    path = cleaned(data.draw(st.sampled_from(leaf_paths(doc))))
    backend = file_backend("yaml", ".".join(path))
    new_text = render(backend, text, value)
    assert backend.warnings == []
    assert yaml.safe_load(new_text) == with_value(doc, path, value)
    old_lines, new_lines = text.splitlines(), new_text.splitlines()
    assert len(old_lines) == len(new_lines)
    assert sum(old != new for old, new in zip(old_lines, new_lines, strict=True)) <= 1


@FUZZ
@given(text=st.one_of(any_text, st.text(st.sampled_from(list("{}[]:,-#'\"&*!|>%@`?~ \n\tab1")),
                                        max_size=80)),
       fmt=st.sampled_from(["yaml", "json", "dotenv"]),
       key=st.sampled_from(["a", "a.b", "password", "0", "DATABASE_URL"]),
       value_format=st.sampled_from([None, "password", "dsn", "json"]))
def test_file_values_raise_only_store_error(text, fmt, key, value_format):
    backend = file_backend(fmt, key, value_format=value_format)
    try:
        value = value_in(backend, text)
    except StoreError as err:
        assert str(err).startswith("store 'f'")
        return
    if fmt == "dotenv" or value_format in ("password", "dsn"):
        assert isinstance(value, str)


@DEEP
@given(depth=st.integers(min_value=3000, max_value=20000), opener=st.sampled_from("[{"),
       where=st.sampled_from(["credential", "json-file", "yaml-file"]))
def test_deeply_nested_documents(depth, opener, where):
    text = '{"a": ' + opener * depth if opener == "{" else opener * depth
    # the document is never closed: a clear "not valid" error, whatever the depth
    with pytest.raises((CredentialError, StoreError), match="not valid"):
        if where == "credential":
            decode(text, "json")
        else:
            value_in(file_backend(where.split("-")[0], "a"), text)


@FUZZ
@given(path=st.text(printable_char, max_size=20), fmt=st.sampled_from(["yaml", "json", "dotenv",
                                                                      "toml"]),
       key=st.text(printable_char, max_size=10))
def test_file_store_without_a_name(path, fmt, key):
    try:
        backend = FileBackend({"type": "file", "path": path, "format": fmt, "key": key}, {})
    except StoreError as err:
        assert str(err).startswith("store ")
        return
    assert backend.label == backend.describe()
