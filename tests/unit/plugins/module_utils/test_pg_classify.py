"""Login-error classification over message texts real servers and libpq print."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    NO_PASSFILE,
    classify_login_error,
    connect_kwargs,
    effective_sslmode,
    explain_cleartext_refusal,
    first_fatal,
    login_kwargs,
    transport_guard,
)

PREFIX = 'connection to server at "127.0.0.1", port 55432 failed: '

CASES = [
    # (message, auth, category, sqlstate)
    (PREFIX + 'FATAL:  password authentication failed for user "app_user"\n',
     "password", "store_password_mismatch", "28P01"),
    (PREFIX + 'FATAL:  password authentication failed for user "iamu"\n',
     "iam", "iam_role_not_granted", "28P01"),
    (PREFIX + 'FATAL:  PAM authentication failed for user "iamu"\n',
     "password", "iam_role_blocks_password", "28000"),
    (PREFIX + 'FATAL:  PAM authentication failed for user "iamu"\n',
     "iam", "iam_token_stale", "28000"),
    # sslmode=prefer: libpq retries without TLS and appends the hba reject;
    # the PAM line is the cause
    (PREFIX + 'FATAL:  PAM authentication failed for user "iamu"\n' + PREFIX +
     'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "iamu", '
     'database "postgres", no encryption\n',
     "password", "iam_role_blocks_password", "28000"),
    (PREFIX + 'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "iamu", '
     'database "postgres", no encryption\n', "iam", "iam_tls_missing", "28000"),
    (PREFIX + 'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "x", '
     'database "postgres", SSL off\n', "password", "tls_required", "28000"),
    (PREFIX + 'FATAL:  no pg_hba.conf entry for host "10.0.0.5", user "app", database "app", '
     'no encryption\n', "password", "tls_required", "28000"),
    (PREFIX + 'FATAL:  no pg_hba.conf entry for host "10.0.0.5", user "app", database "app", '
     'SSL encryption\n', "password", "no_hba_entry", "28000"),
    (PREFIX + 'FATAL:  role "app_user" is not permitted to log in\n',
     "password", "role_cannot_login", "28000"),
    (PREFIX + 'FATAL:  database "nodb" does not exist\n', "password", "database_missing", "3D000"),
    (PREFIX + 'FATAL:  too many connections for role "app_user"\n',
     "password", "connection_limit_reached", "53300"),
    (PREFIX + 'FATAL:  sorry, too many clients already\n',
     "password", "server_too_many_clients", "53300"),
    # the real texts of the lab's PostgreSQL 15 (collected by hand: REVOKE CONNECT, ALTER
    # DATABASE ... ALLOW_CONNECTIONS false, non-superuser slots exhausted)
    (PREFIX + 'FATAL:  permission denied for database "msgtest"\nDETAIL:  User does not have '
     'CONNECT privilege.\n', "password", "database_connect_denied", "42501"),
    (PREFIX + 'FATAL:  database "msgtest" is not currently accepting connections\n',
     "password", "database_not_accepting", "55000"),
    (PREFIX + 'FATAL:  remaining connection slots are reserved for non-replication superuser '
     'connections\n', "password", "server_too_many_clients", "53300"),
    (PREFIX + 'FATAL:  the database system is shutting down\n', "password",
     "server_unreachable", "57P03"),
    (PREFIX + 'FATAL:  the database system is starting up\n', "password",
     "server_unreachable", "57P03"),
    ('connection to server at "127.0.0.1", port 5 failed: fe_sendauth: no password supplied\n',
     "password", "store_placeholder_password", None),
    (('connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server '
     'running on that host and accepting TCP/IP connections?\n'),
     "password", "server_unreachable", "08001"),
    ('could not translate host name "nope.invalid" to address: Name or service not known\n',
     "password", "server_unreachable", "08001"),
    ('connection to server at "10.255.255.1", port 5432 failed: timeout expired\n',
     "password", "server_unreachable", "08001"),
    (PREFIX + 'server does not support SSL, but SSL was required\n',
     "password", "tls_required", "08P01"),
    (PREFIX + 'SSL error: certificate verify failed\n', "password", "tls_required", "08006"),
    ('something nobody has seen before', "password", "unknown", None),
]


@pytest.mark.parametrize(("message", "auth", "category", "sqlstate"), CASES)
def test_classify_login_error(message, auth, category, sqlstate):
    assert classify_login_error(message, auth) == (category, sqlstate)


def test_first_fatal_strips_client_prefix_and_keeps_first_line():
    message = CASES[4][0]
    assert first_fatal(message) == 'PAM authentication failed for user "iamu"'


PARAMS = {"login_host": "db", "login_port": 5432, "login_user": "admin",
          "login_password": "pw", "login_db": None, "login_unix_socket": None,
          "ssl_mode": "verify-full", "ssl_rootcert": "/ca.pem", "connect_timeout": 3}


def test_connect_kwargs_is_the_admin_login():
    kwargs = connect_kwargs(PARAMS)
    assert kwargs["user"] == "admin" and kwargs["password"] == "pw"
    assert kwargs["dbname"] == "postgres" and kwargs["host"] == "db"
    assert "login_db" not in kwargs and kwargs["connect_timeout"] == 3
    socket = connect_kwargs({**PARAMS, "login_unix_socket": "/run/pg"})
    assert socket["host"] == "/run/pg" and socket["user"] == "admin"


@pytest.mark.parametrize("password", [None, ""])
def test_login_kwargs_never_fall_back_to_the_admin_secret(password):
    kwargs = login_kwargs(PARAMS, "app", password)
    assert kwargs["user"] == "app"
    # an empty password, not a missing one (libpq would take PGPASSWORD), and no .pgpass
    assert kwargs["password"] == "" and kwargs["passfile"] == NO_PASSFILE
    assert "pw" not in kwargs.values()


@pytest.mark.parametrize("sslmode, rootcert, expected", [
    (None, None, "prefer"), (None, "/ca.pem", "verify-full"), ("require", "/ca.pem", "require"),
    ("disable", None, "disable"), ("verify-full", None, "verify-full")])
def test_effective_sslmode(sslmode, rootcert, expected):
    assert effective_sslmode(sslmode, rootcert) == expected


# (sslmode, host, auth, opt out) -> require_auth set, warning given
GUARD_TABLE = [
    ("verify-full", "db", "password", False, None, False),
    ("verify-full", "db", "iam", False, None, False),
    ("verify-full", "/run/pg", "password", False, "!password,!md5", False),
    ("verify-full", "@abstract", "password", False, "!password,!md5", False),
    ("verify-full", "db,/tmp", "password", False, "!password,!md5", False),
    ("verify-full", None, "password", False, "!password,!md5", False),
    ("require", "db", "password", False, "!password,!md5", False),
    ("prefer", "db", "password", False, "!password,!md5", False),
    ("disable", "db", "password", True, "!password,!md5", False),
    ("verify-ca", "db", "iam", False, "!password,!md5", False),
    ("require", "db", "iam", False, "!password,!md5", False),
    ("require", "db", "iam", True, None, True),
    ("prefer", "db", "iam", True, None, True),
]


@pytest.mark.parametrize("sslmode, host, auth, opt_out, require_auth, warned", GUARD_TABLE)
def test_transport_guard(sslmode, host, auth, opt_out, require_auth, warned):
    kwargs, warning = transport_guard({"sslmode": sslmode, "host": host}, auth, opt_out)
    assert kwargs.get("require_auth") == require_auth
    assert bool(warning) == warned


def test_the_cleartext_refusal_is_explained_and_classified():
    message = ('connection to server at "db" (10.0.0.1), port 5432 failed: authentication '
               'method requirement "!password,!md5" failed: server requested a cleartext '
               'password')
    assert classify_login_error(message, "iam") == ("iam_tls_missing", None)
    assert classify_login_error(message, "password") == ("login_failed", None)
    assert "was not sent" in explain_cleartext_refusal(message, "password")
    assert explain_cleartext_refusal("password authentication failed", "password") is None
