"""Login-error classification over message texts real servers and libpq print."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    classify_login_error,
    connect_kwargs,
    first_fatal,
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
     "password", "connection_limit_reached", "53300"),
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


def test_connect_kwargs_override_and_drop_empty():
    params = {"login_host": "db", "login_port": 5432, "login_user": "admin",
              "login_password": "pw", "login_db": None, "login_unix_socket": None,
              "ssl_mode": "verify-full", "ssl_rootcert": "/ca.pem", "connect_timeout": 3}
    kwargs = connect_kwargs(params, password="candidate", user="app")
    assert kwargs["user"] == "app" and kwargs["password"] == "candidate"
    assert kwargs["dbname"] == "postgres" and kwargs["host"] == "db"
    assert "login_db" not in kwargs and kwargs["connect_timeout"] == 3
    socket = connect_kwargs({**params, "login_unix_socket": "/run/pg"})
    assert socket["host"] == "/run/pg" and socket["user"] == "admin"
