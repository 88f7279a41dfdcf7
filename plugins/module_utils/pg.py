# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection options, connections and login-error classification."""
from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AWS_ARGSPEC,
    AwsError,
    rds_auth_token,
)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    POSTGRES_OPTIONS,
    argument_spec,
)

try:
    import psycopg2
    import psycopg2.extensions
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

APPLICATION_NAME = "credops.pgauth"

# One option model for every module that logs in to PostgreSQL (the community.postgresql
# names and PG* fallbacks), from the option registry, as the postgres doc fragment shows it.
POSTGRES_ARGSPEC = argument_spec(POSTGRES_OPTIONS)

# libpq reads a password file when a connection has no password; for a login with a store's
# credential that would hand the operator's own .pgpass entries to a host the store names.
# A path that does not exist and that no unprivileged user can create turns the lookup off
# without libpq's "not a plain file" warning.
NO_PASSFILE = "/proc/self/credops-pgauth-no-passfile"


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


def effective_sslmode(sslmode: str | None, sslrootcert: str | None) -> str:
    """The sslmode a connection uses: the one given, else verify-full when a CA bundle is
    known (nothing weaker is needed then), else libpq's own default, prefer."""
    return sslmode or ("verify-full" if sslrootcert else "prefer")


def _endpoint_kwargs(params: dict) -> dict:
    sslmode = effective_sslmode(params.get("ssl_mode"), params.get("ssl_rootcert"))
    return {
        "host": params.get("login_unix_socket") or params.get("login_host"),
        "port": params.get("login_port"),
        "dbname": params.get("login_db") or "postgres",
        "sslmode": sslmode,
        "sslrootcert": params.get("ssl_rootcert"),
        "connect_timeout": params.get("connect_timeout"),
        "application_name": APPLICATION_NAME,
        # timestamps (valid_until, backend_start) come back in UTC whatever the server's zone
        "options": "-c TimeZone=UTC",
    }


def _without_empty(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if value not in (None, "")}


def connect_kwargs(params: dict) -> dict:
    """psycopg2.connect() keyword arguments for the module's own (admin) connection: the
    login_* options, with libpq's PGPASSWORD and .pgpass fallbacks as psql has them."""
    return _without_empty({**_endpoint_kwargs(params), "user": params.get("login_user"),
                           "password": params.get("login_password")})


def login_kwargs(params: dict, user: str | None, password: str | None) -> dict:
    """psycopg2.connect() keyword arguments for a login with exactly this credential (a
    store's, a candidate's, a new one), at the endpoint and TLS settings of params.

    It never falls back to the admin's login_password, PGPASSWORD or a .pgpass file: no
    password means no password is sent (an IAM token is added by with_iam_token)."""
    kwargs = _without_empty({**_endpoint_kwargs(params), "user": user})
    # an empty string, not a missing key: a missing one lets libpq take PGPASSWORD
    kwargs["password"] = password or ""
    kwargs["passfile"] = NO_PASSFILE
    # nor may PGHOSTADDR send it elsewhere than the host above
    kwargs["hostaddr"] = ""
    return kwargs


def single_tcp_host(host) -> bool:
    """One TCP host: not libpq's default socket (no host), not a socket directory ('/...') or
    a Linux abstract socket ('@...'), where sslmode does not apply, and not a list of hosts,
    where libpq falls back from one to the next."""
    text = str(host or "")
    return bool(text) and not text.startswith(("/", "@")) and "," not in text


def transport_guard(kwargs: dict, auth: str, allow_unverified_token: bool = False
                    ) -> tuple[dict, str | None]:
    """kwargs that keep a secret off connections whose server is not proven.

    Over anything weaker than verify-full an active attacker can answer "no TLS" or present
    its own certificate and ask for the password in cleartext; libpq 17's require_auth
    refuses that request (SCRAM still works: it never reveals the password).  An RDS IAM
    token can only travel in cleartext (PAM), so it goes over verify-full only, unless the
    user opted out: then the returned warning says so.  Returns (kwargs, warning)."""
    if kwargs.get("sslmode") == "verify-full" and single_tcp_host(kwargs.get("host")):
        return kwargs, None
    if auth == "iam" and allow_unverified_token:
        return kwargs, (f"the IAM token was sent over sslmode={kwargs.get('sslmode')}, which "
                        "does not verify the server (iam_allow_unverified_tls): anyone on the "
                        "path can capture and replay it for 15 minutes")
    if psycopg2 is not None and psycopg2.extensions.libpq_version() < 160000:
        raise PgError(f"libpq {psycopg2.extensions.libpq_version()} cannot refuse a cleartext "
                      "password request (require_auth needs libpq 16 or later; psycopg2-binary "
                      "2.9.10 bundles 17): use sslmode=verify-full with ssl_rootcert")
    # md5 too: its answer to a salt the attacker chose can be cracked offline
    return {**kwargs, "require_auth": REFUSED_METHODS}, None


# what a login below verify-full refuses to answer, and what libpq says when it does
REFUSED_METHODS = "!password,!md5"
CLEARTEXT_REFUSED = re.compile(r'authentication method requirement "!password,!md5" failed')


def explain_cleartext_refusal(message: str, auth: str) -> str | None:
    if not CLEARTEXT_REFUSED.search(message):
        return None
    secret = "IAM token" if auth == "iam" else "password"
    return (f"the server asked for the {secret} in cleartext (or as md5) over a connection "
            f"that is not "
            f"sslmode=verify-full, so it was not sent (an attacker in the path could have "
            f"asked the same); connect with sslmode=verify-full and the server's CA"
            + (", or opt out with iam_allow_unverified_tls" if auth == "iam" else ""))


class PgError(PgauthError):
    """A PostgreSQL operation failed; the message names the server, role and statement kind.

    category: the finding id of a failed login (see LOGIN_RULES), when that is what failed."""

    def __init__(self, message: str, category: str | None = None):
        super().__init__(message, category)
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
    auth = "iam" if params.get("login_iam") else "password"
    kwargs = with_iam_token(params, connect_kwargs(params))
    kwargs, _warning = transport_guard(kwargs, auth, bool(params.get("iam_allow_unverified_tls")))
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as err:
        category, _state = classify_login_error(str(err), auth)
        # the finding ids speak of the app's stores; the admin's own password was refused
        reason = "password refused" if category == "store_password_mismatch" else category
        detail = explain_cleartext_refusal(str(err), auth) or first_fatal(str(err))
        raise PgError(f"cannot log in as {describe_target(kwargs)} ({reason}): {detail}",
                      category) from None
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
    # our own refusal (transport_guard): for an IAM token, the fix is TLS with verification
    LoginRule(CLEARTEXT_REFUSED.pattern, "iam_tls_missing", None, "iam"),
    LoginRule(CLEARTEXT_REFUSED.pattern, "login_failed", None, "password"),
    LoginRule(r"fe_sendauth: no password supplied", "store_placeholder_password", None,
              "password"),
    LoginRule(r"PAM authentication failed", "iam_role_blocks_password", "28000", "password"),
    LoginRule(r"PAM authentication failed", "iam_token_stale", "28000", "iam"),
    LoginRule(r"password authentication failed", "iam_role_not_granted", "28P01", "iam"),
    LoginRule(r"password authentication failed", "store_password_mismatch", "28P01"),
    # PgBouncer's own wording when a client's SCRAM proof does not match its auth_file
    LoginRule(r"SASL authentication failed", "store_password_mismatch", "28P01"),
    # PgBouncer accepted the client but PostgreSQL refused PgBouncer: its auth_file's
    # verifier is not the database's (SCRAM pass-through needs the very same one)
    LoginRule(r"server login has been failing|server login failed", "pooler_auth_stale",
              "08P01"),
    LoginRule(r"is not permitted to log in", "role_cannot_login", "28000"),
    LoginRule(r"pg_hba\.conf rejects connection.*(no encryption|SSL off)", "iam_tls_missing",
              "28000", "iam"),
    LoginRule(r"no pg_hba\.conf entry.*(no encryption|SSL off)", "tls_required", "28000"),
    LoginRule(r"pg_hba\.conf rejects connection.*(no encryption|SSL off)", "tls_required",
              "28000"),
    LoginRule(r"no pg_hba\.conf entry|pg_hba\.conf rejects connection", "no_hba_entry", "28000"),
    LoginRule(r"database \".*\" does not exist", "database_missing", "3D000"),
    LoginRule(r"permission denied for database|does not have CONNECT privilege",
              "database_connect_denied", "42501"),
    LoginRule(r"is not currently accepting connections", "database_not_accepting", "55000"),
    LoginRule(r"too many connections for role", "connection_limit_reached", "53300"),
    LoginRule(r"too many clients already|remaining connection slots are reserved",
              "server_too_many_clients", "53300"),
    LoginRule(r"the database system is (starting up|shutting down|in recovery mode|"
              r"not yet accepting connections|not accepting connections)",
              "server_unreachable", "57P03"),
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
    r"permission denied for database|is not currently accepting connections", re.IGNORECASE)


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
    warning: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def try_login(kwargs: dict, auth: str = "password",
              allow_unverified_token: bool = False) -> LoginResult:
    """Open and close one connection (through transport_guard); never raises on a login
    failure."""
    kwargs, warning = transport_guard(kwargs, auth, allow_unverified_token)
    started = time.monotonic()
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as err:
        elapsed = (time.monotonic() - started) * 1000
        message = str(err)
        category, sqlstate = classify_login_error(message, auth)
        text = explain_cleartext_refusal(message, auth) or first_fatal(message)
        return LoginResult(False, category, sqlstate, text, round(elapsed, 1),
                           authenticated=password_was_accepted(message), warning=warning)
    elapsed = (time.monotonic() - started) * 1000
    try:
        in_use = bool(conn.info.ssl_in_use)
        version = conn.info.parameter_status("server_version")
    finally:
        conn.close()
    return LoginResult(True, "ok", None, "", round(elapsed, 1), in_use, version, True, warning)


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


# sslmodes under which libpq tries TLS first: a probe made as the application would, but
# with the server's certificate checked
VERIFIABLE_MODES = ("prefer", "require", "verify-ca")


def probe(params: dict, user: str, password: str | None) -> LoginResult:
    """One login as user with exactly this password (none: none is sent), or with an IAM
    token when login_iam is set."""
    auth = "iam" if params.get("login_iam") else "password"
    if auth == "iam" and params.get("iam_endpoint_refused"):
        return LoginResult(False, "store_target_mismatch", None,
                           params["iam_endpoint_refused"], 0.0)
    kwargs = with_iam_token(params, login_kwargs(params, user, password))
    opt_out = bool(params.get("iam_allow_unverified_tls"))
    if kwargs.get("sslmode") in VERIFIABLE_MODES and kwargs.get("sslrootcert") \
            and single_tcp_host(kwargs.get("host")):
        # The application would use TLS here too, so verify-full takes the same pg_hba path
        # (hostssl) and the secret may be answered even to a cleartext request (RDS IAM's
        # PAM).  Only where the server's certificate does not verify is the login repeated
        # the application's way, with transport_guard's protection.
        verified = try_login({**kwargs, "sslmode": "verify-full"}, auth, opt_out)
        if verified.ok or verified.category != "tls_required":
            return verified
        if kwargs["sslmode"] != "verify-ca":
            # the CA is the operator's: with it libpq would verify under require too, which
            # the application (without it) does not
            kwargs = {key: value for key, value in kwargs.items() if key != "sslrootcert"}
    return try_login(kwargs, auth, opt_out)
