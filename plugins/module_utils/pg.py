# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection options, connections and login-error classification."""
from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass

from ansible.module_utils.basic import env_fallback

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AWS_ARGSPEC,
    AwsError,
    rds_auth_token,
)

try:
    import psycopg2
    import psycopg2.extensions
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

APPLICATION_NAME = "credops.pgauth"

# One option model for every module that logs in to PostgreSQL; the doc fragment
# credops.pgauth.postgres documents exactly these names and fallbacks.
POSTGRES_ARGSPEC = {
    "login_host": {"type": "str", "fallback": (env_fallback, ["PGHOST"])},
    "login_port": {"type": "int", "default": 5432, "fallback": (env_fallback, ["PGPORT"])},
    "login_user": {"type": "str", "fallback": (env_fallback, ["PGUSER"])},
    "login_password": {"type": "str", "no_log": True,
                       "fallback": (env_fallback, ["PGPASSWORD"])},
    "login_db": {"type": "str", "fallback": (env_fallback, ["PGDATABASE"])},
    "login_unix_socket": {"type": "str"},
    "ssl_mode": {"type": "str", "default": "prefer",
                 "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
                 "fallback": (env_fallback, ["PGSSLMODE"])},
    "ssl_rootcert": {"type": "path", "fallback": (env_fallback, ["PGSSLROOTCERT"])},
    "connect_timeout": {"type": "int", "default": 10},
    "login_iam": {"type": "bool", "default": False},
}


def postgres_argument_spec(with_stores: bool = False, **extra: dict) -> dict:
    """The PostgreSQL options plus the AWS ones (login_iam tokens, Secrets Manager reads)
    and, with_stores, the Vault ones (for modules that read a store reference)."""
    spec = {name: dict(option) for name, option in POSTGRES_ARGSPEC.items()}
    spec.update({name: dict(option) for name, option in AWS_ARGSPEC.items()})
    if with_stores:
        from ansible_collections.credops.pgauth.plugins.module_utils.vault import VAULT_ARGSPEC
        spec.update({name: dict(option) for name, option in VAULT_ARGSPEC.items()})
    spec.update(extra)
    return spec


def connect_kwargs(params: dict, password: str | None = None, user: str | None = None) -> dict:
    """psycopg2.connect() keyword arguments from module parameters.

    password/user override the login_* options, so a probe can try a candidate
    credential with the same host, port, TLS and timeout settings.
    """
    kwargs = {
        "host": params.get("login_unix_socket") or params.get("login_host"),
        "port": params.get("login_port"),
        "user": user if user is not None else params.get("login_user"),
        "password": password if password is not None else params.get("login_password"),
        "dbname": params.get("login_db") or "postgres",
        "sslmode": params.get("ssl_mode"),
        "sslrootcert": params.get("ssl_rootcert"),
        "connect_timeout": params.get("connect_timeout"),
        "application_name": APPLICATION_NAME,
        # timestamps (valid_until, backend_start) come back in UTC whatever the server's zone
        "options": "-c TimeZone=UTC",
    }
    return {key: value for key, value in kwargs.items() if value not in (None, "")}


class PgError(Exception):
    """A PostgreSQL operation failed; the message names the server, role and statement kind.

    category: the finding id of a failed login (see LOGIN_RULES), when that is what failed."""

    def __init__(self, message: str, category: str | None = None):
        super().__init__(message)
        self.category = category


def describe_target(kwargs: dict) -> str:
    host = kwargs.get("host") or "local socket"
    return f"{kwargs.get('user') or '?'}@{host}:{kwargs.get('port') or 5432}/{kwargs.get('dbname')}"


def with_iam_token(params: dict, kwargs: dict) -> dict:
    """kwargs with a fresh RDS IAM token as the password, when login_iam asks for one."""
    if not params.get("login_iam"):
        return kwargs
    if not kwargs.get("host") or kwargs["host"].startswith("/"):
        raise PgError("login_iam needs login_host: IAM tokens are signed for a TCP endpoint")
    try:
        token = rds_auth_token(params, kwargs["host"], kwargs["port"], kwargs.get("user") or "")
    except AwsError as err:
        raise PgError(f"login_iam: {err}") from None
    return {**kwargs, "password": token}


def admin_connect(params: dict):
    """The module's own connection (login_* options, or an IAM token with login_iam)."""
    if psycopg2 is None:
        raise PgError("psycopg2 is required (pip install psycopg2-binary)")
    kwargs = with_iam_token(params, connect_kwargs(params))
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as err:
        category, _state = classify_login_error(str(err), "iam" if params.get("login_iam")
                                                else "password")
        # the finding ids speak of the app's stores; the admin's own password was refused
        reason = "password refused" if category == "store_password_mismatch" else category
        raise PgError(f"cannot log in as {describe_target(kwargs)} ({reason}): "
                      f"{first_fatal(str(err))}", category) from None
    conn.autocommit = True
    return conn


@dataclass(frozen=True)
class LoginRule:
    """One row of the classification table: a libpq/server message pattern."""

    pattern: str
    category: str
    sqlstate: str | None
    # Only applies when the login used this kind of secret (None: any).
    auth: str | None = None


# psycopg2 does not expose the SQLSTATE of a failed connection (pgcode is None):
# the server's FATAL text is all there is, so the table maps texts to the
# SQLSTATE the server sent and to a finding id.  First match wins; order
# matters where texts overlap (PAM before the hba line libpq may append).
LOGIN_RULES: tuple[LoginRule, ...] = (
    LoginRule(r"PAM authentication failed", "iam_role_blocks_password", "28000", "password"),
    LoginRule(r"PAM authentication failed", "iam_token_stale", "28000", "iam"),
    LoginRule(r"password authentication failed", "iam_role_not_granted", "28P01", "iam"),
    LoginRule(r"password authentication failed", "store_password_mismatch", "28P01"),
    LoginRule(r"is not permitted to log in", "role_cannot_login", "28000"),
    LoginRule(r"pg_hba\.conf rejects connection.*(no encryption|SSL off)", "iam_tls_missing",
              "28000", "iam"),
    LoginRule(r"no pg_hba\.conf entry.*(no encryption|SSL off)", "tls_required", "28000"),
    LoginRule(r"pg_hba\.conf rejects connection.*(no encryption|SSL off)", "tls_required",
              "28000"),
    LoginRule(r"no pg_hba\.conf entry|pg_hba\.conf rejects connection", "no_hba_entry", "28000"),
    LoginRule(r"database \".*\" does not exist", "database_missing", "3D000"),
    LoginRule(r"too many connections for role", "connection_limit_reached", "53300"),
    LoginRule(r"too many clients already|remaining connection slots are reserved",
              "connection_limit_reached", "53300"),
    LoginRule(r"server does not support SSL", "tls_required", "08P01"),
    LoginRule(r"certificate verify failed|SSL error|root certificate file|"
              r"server certificate for .* does not match", "tls_required", "08006"),
    LoginRule(r"Connection refused|could not translate host name|timeout expired|"
              r"No route to host|Network is unreachable|could not connect to server|"
              r"No such file or directory", "server_unreachable", "08001"),
)


def classify_login_error(message: str, auth: str = "password") -> tuple[str, str | None]:
    """Map a failed login's message to (finding id, SQLSTATE)."""
    for rule in LOGIN_RULES:
        if rule.auth not in (None, auth):
            continue
        if re.search(rule.pattern, message, re.IGNORECASE | re.DOTALL):
            return rule.category, rule.sqlstate
    return "unknown", None


# Failures PostgreSQL reports only after the password was accepted: they prove it right.
_AFTER_AUTHENTICATION = re.compile(
    r"is not permitted to log in|too many connections for role|database \".*\" does not exist|"
    r"permission denied for database", re.IGNORECASE)


def password_was_accepted(message: str) -> bool:
    return bool(_AFTER_AUTHENTICATION.search(message)) and "authentication failed" not in message


def first_fatal(message: str) -> str:
    """The server's first FATAL line without libpq's 'connection to server ...' prefix."""
    text = " ".join(line.strip() for line in message.strip().splitlines())
    match = re.search(r"FATAL:\s+(.*?)(?=\s+connection to server|$)", text)
    return match.group(1).strip() if match else text


@dataclass
class LoginResult:
    ok: bool
    category: str
    sqlstate: str | None
    message: str
    latency_ms: float
    tls: bool | None = None
    server_version: str | None = None
    # the server accepted the secret even though the session was refused afterwards
    authenticated: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def try_login(kwargs: dict, auth: str = "password") -> LoginResult:
    """Open and close one connection; never raises on a login failure."""
    started = time.monotonic()
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as err:
        elapsed = (time.monotonic() - started) * 1000
        message = str(err)
        category, sqlstate = classify_login_error(message, auth)
        return LoginResult(False, category, sqlstate, first_fatal(message), round(elapsed, 1),
                           authenticated=password_was_accepted(message))
    elapsed = (time.monotonic() - started) * 1000
    try:
        in_use = bool(conn.info.ssl_in_use)
        version = conn.info.parameter_status("server_version")
    finally:
        conn.close()
    return LoginResult(True, "ok", None, "", round(elapsed, 1), in_use, version, True)


def fail_if_missing_libs(module) -> None:
    """fail_json with the install hint when psycopg2 (or boto3 for login_iam) is absent."""
    from ansible.module_utils.basic import missing_required_lib

    from ansible_collections.credops.pgauth.plugins.module_utils.aws import BOTO3_IMPORT_ERROR
    if PSYCOPG2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("psycopg2-binary"),
                         exception=PSYCOPG2_IMPORT_ERROR)
    if module.params.get("login_iam") and BOTO3_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)


def run_pg_module(module, run, label: str) -> None:
    """Library checks, then the shared module tail (runner.run_module)."""
    from ansible_collections.credops.pgauth.plugins.module_utils.runner import run_module
    fail_if_missing_libs(module)
    run_module(module, run, label)


def probe(params: dict, user: str, password: str | None) -> LoginResult:
    """One login as user with password, or with an IAM token when login_iam is set."""
    kwargs = with_iam_token(params, connect_kwargs(params, password=password, user=user))
    return try_login(kwargs, "iam" if params.get("login_iam") else "password")
