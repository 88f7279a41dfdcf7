# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection-string dialects: libpq URLs, SQLAlchemy URLs, JDBC URLs, libpq keyword/value.

Each is parsed into its pieces as written (``Parsed``), so that a rewrite changes only the
fields whose value changed and leaves every other byte, parameter and its order as it was:
a rotation must not turn a JDBC URL into a libpq one or drop its ``ssl=true``.  Each is read
the way its client reads it (which decoder, which TLS parameter); dsn_clients.py says which
parameters that client would refuse.  Nothing here does I/O; nothing here puts a value in
an error message.  The TLS and parameter facts are the clients' own, checked on this
machine (docs/stores.md, "DSN dialects")."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

from ansible_collections.credops.pgauth.plugins.module_utils.kvdsn import DsnError, KeywordDsn

URL = "url"            # postgresql:// and postgres://: libpq (psql, psycopg, most drivers)
SQLALCHEMY = "sqlalchemy"  # postgresql+<driver>://
JDBC = "jdbc"          # jdbc:postgresql://
KEYWORD = "keyword"    # host=... password='...'
DIALECTS = (URL, SQLALCHEMY, JDBC, KEYWORD)
URL_SCHEMES = ("postgresql", "postgres")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_USERINFO_RESERVED = re.compile(r"[@/?#\[\]\s]|%(?![0-9A-Fa-f]{2})")
# what may precede a '?' or '#' whose query or fragment holds an '@': a host and a numeric
# port, nothing that could be a user and the start of an unencoded password
_PLAIN_HOSTPORT = re.compile(r"(?:\[[^\]]*\]|[^:\[\]]*)(?::\d+)?")
_NOT_ENCODED = "the user or password part has characters that must be percent-encoded"
# CredentialError's code for a value that needs percent-encoding (credential.DSN_NOT_ENCODED)
NOT_ENCODED = "dsn_not_encoded"


@dataclass
class Fields:
    """The credential as a dialect holds it.  sslmode is the value of the dialect's own TLS
    parameter (asyncpg's ssl=, everyone else's sslmode=); params are the other parameters."""
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    sslmode: str | None = None
    params: list = field(default_factory=list)
    # parameter names that may be pieces of an unquoted password (keyword/value): never named
    suspect: set = field(default_factory=set, compare=False)


@dataclass
class Parsed:
    """A URL's pieces as written (raw) and their decoded values."""
    dialect: str
    driver: str | None
    prefix: str                # everything up to and including '://'
    user_raw: str | None       # None: no userinfo
    password_raw: str | None   # None: no ':' in the userinfo
    hostport_raw: str
    path_raw: str              # with its leading '/', or ''
    query: list                # [(raw segment, key, value)]
    fragment_raw: str          # with its '#', or ''
    fields: Fields = field(default_factory=Fields)


def dialect_name(dialect: str, driver: str | None) -> str:
    """The name reports and the pg_dsn filter use: url, jdbc, keyword, sqlalchemy+asyncpg."""
    return f"{SQLALCHEMY}+{driver}" if dialect == SQLALCHEMY else dialect


def split_dialect(name: str | None) -> tuple[str, str | None]:
    """(dialect, driver) from a name as dialect_name writes it; sqlalchemy alone is psycopg2,
    SQLAlchemy's own default driver for postgresql://."""
    text = (name or URL).strip().lower()
    base, _plus, driver = text.partition("+")
    if base not in DIALECTS or ((driver or _plus) and base != SQLALCHEMY) or \
            (_plus and not driver):
        raise DsnError(f"unknown DSN dialect {name!r} (use url, keyword, jdbc, "
                       "sqlalchemy or sqlalchemy+<driver>)")
    if base == SQLALCHEMY and not re.fullmatch(r"[a-z0-9_]*", driver):
        raise DsnError(f"unknown SQLAlchemy driver {driver!r}")
    return base, (driver or "psycopg2") if base == SQLALCHEMY else None


def detect(text) -> tuple[str, str | None] | None:
    """(dialect, driver) of a connection string, None when it is none of them."""
    if not isinstance(text, str):
        return None
    head = text.strip()
    lower = head.lower()
    if lower.startswith("jdbc:postgresql:"):
        return JDBC, None
    match = re.match(r"(postgresql|postgres)(\+[a-z0-9_]+)?://", lower)
    if match:
        return (SQLALCHEMY, match.group(2)[1:]) if match.group(2) else (URL, None)
    return (KEYWORD, None) if KeywordDsn.looks_like(head) else None


def _decoder(dialect: str):
    # libpq percent-decodes only; SQLAlchemy reads the query with parse_qsl and pgjdbc with
    # URLDecoder, both of which also read '+' as a space
    return unquote if dialect == URL else unquote_plus


def _split_query(query: str, dialect: str) -> list:
    decode = _decoder(dialect)
    out = []
    for raw in query.split("&") if query else []:
        key, _eq, value = raw.partition("=")
        out.append((raw, decode(key), decode(value)))
    return out


def _check_authority(authority: str, after: str, userinfo: str, at: str) -> None:
    """Refuse what clients read differently: an unencoded '@', '/', '?', '#' or space in the
    user or password (libpq and urllib then read part of it as host, database or query)."""
    before_fragment, _hash, fragment = after.partition("#")
    path, _mark, query = before_fragment.partition("?")
    if authority.count("@") > 1 or (at and ("@" in path or "@" in fragment)):
        raise DsnError("the URL has more than one '@': the password is not URL-encoded",
                       NOT_ENCODED)
    if "@" in path or "@" in fragment:
        raise DsnError("the user, password or database name has characters that must be "
                       "percent-encoded (an '@' after the host)", NOT_ENCODED)
    if "@" in query:
        # "user:?pw@host" and "user:#pw@host" put the host in the query; so does an '@' in
        # a query parameter's name ("u:a@b?c@h/d"): names never hold one
        bare = any("@" in part.partition("=")[0] for part in query.split("&"))
        if bare or (not at and not _PLAIN_HOSTPORT.fullmatch(authority)):
            raise DsnError(_NOT_ENCODED, NOT_ENCODED)
    if at and _USERINFO_RESERVED.search(userinfo):
        raise DsnError(_NOT_ENCODED, NOT_ENCODED)


def _host_port(hostport: str) -> tuple[str | None, int | None]:
    if "," in hostport:
        raise DsnError("multi-host URLs are not supported")
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise DsnError("the URL's host is not valid")
        port_text = rest[1:] if rest else ""
    else:
        host, _colon, port_text = hostport.partition(":")
        host = unquote(host).lower()
    if port_text == "":
        return host or None, None
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise DsnError("the URL's port is not a number")
    return host or None, int(port_text)


def parse_url(text: str) -> Parsed:
    found = detect(text)
    if found is None or found[0] == KEYWORD:
        raise DsnError("not a postgresql://, postgresql+<driver>:// or jdbc:postgresql:// URL")
    dialect, driver = found
    body = text.strip()
    if dialect == JDBC and not body[len("jdbc:postgresql:"):].startswith("//"):
        raise DsnError("only the jdbc:postgresql://host/database form is supported")
    scheme_end = body.index("://") + 3
    prefix, rest = body[:scheme_end], body[scheme_end:]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    after = rest[len(authority):]
    userinfo, at, hostport = authority.rpartition("@")
    if dialect == JDBC and at:
        raise DsnError("a JDBC URL has no user:password@ part: put user= and password= in "
                       "the query")
    _check_authority(authority, after, userinfo, at)
    host, port = _host_port(hostport)
    before_fragment, hash_mark, fragment = after.partition("#")
    path, _mark, query = before_fragment.partition("?")
    user_raw, colon, password_raw = userinfo.partition(":")
    parsed = Parsed(dialect, driver, prefix, user_raw if at else None,
                    password_raw if at and colon else None, hostport, path,
                    _split_query(query, dialect), hash_mark + fragment)
    parsed.fields = _url_fields(parsed, host, port)
    if dialect == SQLALCHEMY and sum(key == "host" for _r, key, _v in parsed.query) > 1:
        raise DsnError("multi-host URLs are not supported")
    return parsed


def tls_key(dialect: str, driver: str | None) -> str:
    """The query parameter that says how the client uses TLS."""
    return "ssl" if dialect == SQLALCHEMY and driver == "asyncpg" else "sslmode"


def _managed_keys(parsed: Parsed) -> tuple[str, ...]:
    """Query keys that are credential fields rather than params."""
    keys = (tls_key(parsed.dialect, parsed.driver),)
    return (*keys, "user", "password") if parsed.dialect == JDBC else keys


def _url_fields(parsed: Parsed, host: str | None, port: int | None) -> Fields:
    decode = _decoder(parsed.dialect)
    fields = Fields(host=host, port=port)
    fields.username = unquote(parsed.user_raw) if parsed.user_raw else None
    fields.password = unquote(parsed.password_raw) if parsed.password_raw is not None else None
    dbname = parsed.path_raw[1:]
    fields.dbname = decode(dbname) if parsed.dialect == JDBC and dbname else (
        unquote(dbname) if dbname else None)
    managed = _managed_keys(parsed)
    if parsed.user_raw is None and any("@" in raw for raw, _k, _v in parsed.query):
        # no user:password@ but an '@' in the query: "u:1?pw@host" reads the password's
        # tail as parameters, so none of their names may be shown
        fields.suspect = {key for _raw, key, _value in parsed.query}
    for _raw, key, value in parsed.query:
        if key not in managed:
            fields.params.append((key, value))
        elif key == "user":
            fields.username = value
        elif key == "password":
            fields.password = value
        elif fields.sslmode is None:
            fields.sslmode = value
    return fields


def _enc(value: str) -> str:
    # every reserved character encoded, '+' too: libpq, SQLAlchemy and pgjdbc read it alike
    return quote(value, safe="")


def render_url(new: Fields, parsed: Parsed) -> str:
    """parsed with the fields of new; what did not change stays as written."""
    old = parsed.fields
    if not new.host:
        raise DsnError("a DSN needs a host")
    jdbc = parsed.dialect == JDBC
    user_raw, password_raw = parsed.user_raw, parsed.password_raw
    if not jdbc:
        if new.username != old.username:
            user_raw = _enc(new.username) if new.username else ("" if new.password else None)
        if new.password != old.password:
            password_raw = _enc(new.password) if new.password else None
        if user_raw is None and password_raw is not None:
            user_raw = ""
    userinfo = ""
    if user_raw is not None:
        userinfo = user_raw + (f":{password_raw}" if password_raw is not None else "") + "@"
    hostport = parsed.hostport_raw
    if (new.host, new.port) != (old.host, old.port):
        host = f"[{new.host}]" if ":" in new.host else quote(new.host, safe=".-_")
        hostport = host + (f":{new.port}" if new.port else "")
    path = parsed.path_raw
    if new.dbname != old.dbname:
        path = "/" + _enc(new.dbname) if new.dbname else ""
    query = _render_query(new, parsed)
    return (f"{parsed.prefix}{userinfo}{hostport}{path}{'?' + query if query else ''}"
            f"{parsed.fragment_raw}")


def _render_query(new: Fields, parsed: Parsed) -> str:
    old = parsed.fields
    managed = _managed_keys(parsed)
    wanted = {tls_key(parsed.dialect, parsed.driver): new.sslmode}
    if parsed.dialect == JDBC:
        wanted.update(user=new.username, password=new.password)
    before = {tls_key(parsed.dialect, parsed.driver): old.sslmode}
    if parsed.dialect == JDBC:
        before.update(user=old.username, password=old.password)
    params_same = list(new.params) == list(old.params)
    extra = iter([] if params_same else list(new.params))
    out, seen = [], set()
    for raw, key, _value in parsed.query:
        if key in managed:
            if key in seen:
                out.append(raw)
                continue
            seen.add(key)
            if wanted[key] == before[key]:
                out.append(raw)
            elif wanted[key] is not None:
                out.append(f"{raw.partition('=')[0]}={_enc(wanted[key])}")
        elif params_same:
            out.append(raw)
        else:
            pair = next(extra, None)
            if pair is not None:
                out.append(f"{_enc(pair[0])}={_enc(pair[1])}")
    out += [f"{_enc(key)}={_enc(value)}" for key, value in extra]
    # a field the URL did not hold, now set: libpq puts sslmode first, the rest go last
    for key in managed:
        if key not in seen and wanted[key] is not None and wanted[key] != before[key]:
            segment = f"{key}={_enc(wanted[key])}"
            out = [segment, *out] if key == "sslmode" and parsed.dialect == URL else \
                [*out, segment]
    return "&".join(out)


def build_url(fields: Fields, dialect: str = URL, driver: str | None = None) -> str:
    """A new URL of the dialect, every part percent-encoded."""
    scheme = {URL: "postgresql://", JDBC: "jdbc:postgresql://",
              SQLALCHEMY: f"postgresql+{driver or 'psycopg2'}://"}[dialect]
    # pgjdbc wants the '/' even without a database name
    empty = Parsed(dialect, driver, scheme, None, None, "", "/" if dialect == JDBC else "", [],
                   "")
    return render_url(fields, empty)


# -- one entry point for credential.py ---------------------------------------------------

def parse(text: str) -> tuple[Fields, str, str | None]:
    """(fields, dialect, driver) of any dialect."""
    found = detect(text)
    if found is None:
        raise DsnError("not a postgresql:// URL (nor a postgresql+<driver>:// or "
                       "jdbc:postgresql:// one, nor libpq keyword/value)")
    if found[0] == KEYWORD:
        kv = KeywordDsn.parse(text)
        return kv.fields(Fields), KEYWORD, None
    parsed = parse_url(text)
    return parsed.fields, parsed.dialect, parsed.driver


def render(fields: Fields, existing: str | None, dialect: str | None = None,
           driver: str | None = None) -> str:
    """The connection string for fields: existing rewritten in its own dialect where it is
    one, else a new one of dialect (default a libpq URL)."""
    found = detect(existing) if isinstance(existing, str) and existing.strip() else None
    if found is not None:
        if found[0] == KEYWORD:
            return KeywordDsn.parse(existing).render(fields)
        try:
            return render_url(fields, parse_url(existing))
        except DsnError as err:
            if err.code != NOT_ENCODED:
                raise
            # a broken URL (the incident) is replaced whole, in its own dialect
            dialect, driver = found
    dialect = dialect or URL
    if dialect == KEYWORD:
        return KeywordDsn().render(fields)
    return build_url(fields, dialect, driver)
