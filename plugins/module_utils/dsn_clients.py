# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the client of each DSN dialect makes of its parameters: which it refuses, and which
libpq sslmode logs in the way it does.  Facts of the clients themselves, tried on the lab
(docs/stores.md, "DSN dialects"): SQLAlchemy 2.1 with asyncpg 0.32 and psycopg2 2.9
(libpq 17), pgjdbc 42.5.  Pure: fields in, facts out."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.dsn import (
    JDBC,
    KEYWORD,
    SQLALCHEMY,
    SSLMODES,
    Fields,
    dialect_name,
    tls_key,
)
from ansible_collections.credops.pgauth.plugins.module_utils.kvdsn import LIBPQ_KEYWORDS

# SQLAlchemy's asyncpg dialect hands every query parameter to asyncpg.connect() as a keyword
# argument, except the two it takes for itself; asyncpg.connect() has no **kwargs
ASYNCPG_ACCEPTS = frozenset({
    "passfile", "service", "servicefile", "timeout", "statement_cache_size",
    "max_cached_statement_lifetime", "max_cacheable_statement_size", "command_timeout", "ssl",
    "direct_tls", "server_settings", "target_session_attrs", "krbsrvname", "gsslib",
    "prepared_statement_cache_size", "prepared_statement_name_func"})
# the drivers that hand the query to libpq as connection keywords
LIBPQ_DRIVERS = ("psycopg2", "psycopg", "psycopg2cffi")


def rejected(fields: Fields, dialect: str, driver: str | None) -> list[dict]:
    """Parameters the dialect's client refuses: [{parameter, dialect, reason}].  Only the
    parameter's name is given: its value could be anything."""
    name = dialect_name(dialect, driver)
    out = []

    def refuse(parameter: str, reason: str) -> None:
        out.append({"parameter": parameter, "dialect": name, "reason": reason})

    key = tls_key(dialect, driver)
    if fields.sslmode is not None and fields.sslmode not in SSLMODES:
        refuse(key, f"{key} must be one of {', '.join(SSLMODES)}")
    names = [param for param, _value in fields.params]
    if dialect == SQLALCHEMY and driver == "asyncpg":
        unknown = [param for param in names if param not in ASYNCPG_ACCEPTS]
        why = "SQLAlchemy passes it to asyncpg.connect(), which has no {} argument (TypeError)"
    elif (dialect == SQLALCHEMY and driver in LIBPQ_DRIVERS) or dialect == KEYWORD:
        unknown = [param for param in names if param not in LIBPQ_KEYWORDS]
        why = "libpq has no connection option {}"
    else:
        unknown, why = [], ""
    for param in unknown:
        if param not in fields.suspect:
            hint = " (asyncpg reads ssl=, e.g. ssl=require)" if driver == "asyncpg" and \
                param.startswith("ssl") else ""
            refuse(param, why.format(repr(param)) + hint)
    if fields.suspect & set(unknown):
        # the parameter is not named: it may be a piece of the password
        refuse("password", "an unknown parameter may be part of a password that was not "
                           "quoted (keyword/value: single quotes) or percent-encoded (URL)")
    if dialect == JDBC:
        ssl = dict(fields.params).get("ssl")
        if ssl is not None and ssl.lower() not in ("", "true", "false"):
            refuse("ssl", "pgjdbc reads ssl as true or false")
    return out


def tls_only_params(name: str) -> tuple[str, ...]:
    """Parameters that only say how the dialect's client uses TLS (and are in params): what
    probe_sslmode turns into an sslmode when the credential moves to another dialect."""
    return ("ssl",) if name == JDBC else ()


def probe_sslmode(fields: Fields, dialect: str, driver: str | None) -> str | None:
    """The libpq sslmode that logs in the way the dialect's client does; None: the client's
    default, which is prefer for libpq, asyncpg and pgjdbc 42 alike."""
    if fields.sslmode in SSLMODES:
        return fields.sslmode
    if dialect == JDBC and fields.sslmode is None:
        ssl = dict(fields.params).get("ssl")
        # pgjdbc: ssl=true (or a bare ssl) without sslmode verifies the certificate and
        # the host name, unlike libpq's require
        if ssl is not None and ssl.lower() in ("", "true"):
            return "verify-full"
    return None
