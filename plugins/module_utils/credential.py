# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credential model and its formats: RDS-style JSON, a bare password, a postgresql:// URL.

A credential is {username, password, host, port, dbname, auth, sslmode} plus, so that
a write never drops what an application put there, the other keys of a JSON secret
(``extra``) and the query parameters of a URL (``params``).  Nothing here does I/O.
"""
from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

FIELDS = ("username", "password", "host", "port", "dbname", "auth", "sslmode")
# keys other tools write for the same things; read them, write back under the key found
ALIASES = {"user": "username", "database": "dbname", "db": "dbname", "dbName": "dbname"}
FORMATS = ("json", "password", "dsn")
DSN_SCHEMES = ("postgresql", "postgres")
# what AWS's rotation functions exclude by default: breaks URLs, shells and quoting
DEFAULT_EXCLUDE = ":/@\"'\\ "
PLACEHOLDERS = frozenset({"db", "changeme", "change_me", "password", "passw0rd", "secret",
                          "postgres", "placeholder", "todo", "xxx", "default", "example",
                          "none", "null", "test", "admin", "123456", "<password>",
                          "${password}", "{{ password }}"})


class CredentialError(PgauthError, ValueError):
    """A value cannot be read as, or made into, the store's format.  Never holds a secret.
    code says which kind, for code that decides on it (diagnosis): never match the text."""

    def __init__(self, message: str, code: str = "invalid_value"):
        super().__init__(message, code)


# the code of a DSN whose user, password or database name needs percent-encoding (a rotation
# that rewrites the value fixes it: store_dsn_invalid)
DSN_NOT_ENCODED = "dsn_not_encoded"


@dataclass
class Credential:
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    auth: str | None = None
    sslmode: str | None = None
    extra: dict = field(default_factory=dict)   # unknown JSON keys, kept on write
    params: list = field(default_factory=list)  # URL query parameters besides sslmode

    def public(self) -> dict:
        """Everything but the password."""
        out = {name: getattr(self, name) for name in FIELDS if name != "password"}
        out["password_set"] = bool(self.password)
        return out

    def merged(self, update: dict) -> Credential:
        """A copy with the given fields replaced (None values ignored)."""
        new = Credential(**{name: getattr(self, name) for name in FIELDS},
                         extra=dict(self.extra), params=list(self.params))
        for key, value in update.items():
            key = ALIASES.get(key, key)
            if value is None:
                continue
            if key not in FIELDS:
                raise CredentialError(f"unknown credential field {key!r}")
            setattr(new, key, int(value) if key == "port" else value)
        return new


def is_placeholder(password: str | None) -> bool:
    """Empty, a known placeholder word, or too short to be a real database password."""
    if not password:
        return True
    text = password.strip().lower()
    return text in PLACEHOLDERS or len(text) < 8 or bool(re.fullmatch(r"(.)\1+", text))


def _port(value, where: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise CredentialError(f"{where}: port is not a number") from None
    if not 0 < port < 65536:
        raise CredentialError(f"{where}: port {port} out of range")
    return port


# -- JSON (RDS style) --------------------------------------------------------------------

def from_mapping(data: dict) -> Credential:
    cred = Credential()
    for key, value in data.items():
        name = ALIASES.get(key, key)
        if name in FIELDS and getattr(cred, name) is None:
            if name == "port":
                value = _port(value, "json")
            elif value is not None and not isinstance(value, str):
                value = str(value)
            setattr(cred, name, value)
        else:
            cred.extra[key] = value
    return cred


def to_mapping(cred: Credential, existing: dict | None = None) -> dict:
    """The credential as a dict; keys and their order follow the existing secret."""
    out = dict(existing or {})
    written_as = {ALIASES.get(key, key): key for key in out}
    for name in FIELDS:
        value = getattr(cred, name)
        if value is None:
            continue
        out[written_as.get(name, name)] = value
    for key, value in cred.extra.items():
        out.setdefault(key, value)
    return out


def parse_json_text(text: str) -> dict:
    try:
        data = json.loads(text)
    except RecursionError:
        # a hostile or broken value must not escape as a crash of the module
        raise CredentialError("not valid JSON (nested too deeply)") from None
    except ValueError as err:
        # the position, never the text: it may hold a password
        raise CredentialError(f"not valid JSON (line {err.lineno}, column {err.colno})") \
            if hasattr(err, "lineno") else CredentialError("not valid JSON") from None
    if not isinstance(data, dict):
        raise CredentialError(f"JSON is a {type(data).__name__}, not an object")
    return data


# -- postgresql:// URLs ----------------------------------------------------------------

_USERINFO_RESERVED = re.compile(r"[@/?#\[\]\s]|%(?![0-9A-Fa-f]{2})")
# what may precede a '?' or '#' whose query or fragment holds an '@': a host and a numeric
# port, nothing that could be a user and the start of an unencoded password
_PLAIN_HOSTPORT = re.compile(r"(?:\[[^\]]*\]|[^:\[\]]*)(?::\d+)?")
_NOT_ENCODED = "the user or password part has characters that must be percent-encoded"


def build_dsn(cred: Credential) -> str:
    """A postgresql:// URL with every component percent-encoded (round-trips via parse_dsn)."""
    if not cred.host:
        raise CredentialError("a DSN needs a host")
    userinfo = ""
    # a password without a user is still a password ("postgresql://:pw@host")
    if cred.username or cred.password:
        userinfo = quote(cred.username or "", safe="")
        if cred.password:
            userinfo += ":" + quote(cred.password, safe="")
        userinfo += "@"
    host = f"[{cred.host}]" if ":" in cred.host else quote(cred.host, safe=".-_")
    port = f":{cred.port}" if cred.port else ""
    path = "/" + quote(cred.dbname, safe="") if cred.dbname else ""
    params = list(cred.params)
    if cred.sslmode:
        params = [("sslmode", cred.sslmode), *[(k, v) for k, v in params if k != "sslmode"]]
    query = "?" + urlencode(params, quote_via=quote) if params else ""
    return f"postgresql://{userinfo}{host}{port}{path}{query}"


def parse_dsn(url: str) -> Credential:
    """A credential from a postgresql:// URL.  Refuses ambiguous URLs: an unencoded '@',
    '/', '?', '#' or space in the user or password is read differently by libpq and by
    other parsers, which is exactly the broken-DATABASE_URL incident.  So is an unencoded
    '@' in the database name, which looks the same."""
    text = (url or "").strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in DSN_SCHEMES:
        raise CredentialError("not a postgresql:// URL")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    after = rest[len(authority):]
    userinfo, at, hostport = authority.rpartition("@")
    # An '@' past the authority means a user or password with an unencoded '@', '/', '?'
    # or '#' (libpq and urllib then read part of it as the host, database or query) or, at
    # best, an unencoded '@' in the database name: both are refused rather than guessed.
    # In a query value ("application_name=svc@web1") an '@' is ordinary.
    before_fragment, _hash, fragment = after.partition("#")
    path, _mark, query = before_fragment.partition("?")
    if authority.count("@") > 1 or (at and ("@" in path or "@" in fragment)):
        raise CredentialError("the URL has more than one '@': the password is not URL-encoded",
                              DSN_NOT_ENCODED)
    if "@" in path or "@" in fragment:
        raise CredentialError("the user, password or database name has characters "
                              "that must be percent-encoded (an '@' after the host)",
                              DSN_NOT_ENCODED)
    if "@" in query:
        # "user:?pw@host" and "user:#pw@host" put the host in the query; so does an '@' in
        # a query parameter's name ("u:a@b?c@h/d"): names never hold one
        bare = any("@" in part.partition("=")[0] for part in query.split("&"))
        if bare or (not at and not _PLAIN_HOSTPORT.fullmatch(authority)):
            raise CredentialError(_NOT_ENCODED, DSN_NOT_ENCODED)
    if at and _USERINFO_RESERVED.search(userinfo):
        raise CredentialError(_NOT_ENCODED, DSN_NOT_ENCODED)
    if "," in hostport:
        raise CredentialError("multi-host URLs are not supported")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise CredentialError("the URL's port is not a number") from None
    params = parse_qsl(parts.query, keep_blank_values=True)
    sslmode = next((v for k, v in params if k == "sslmode"), None)
    user, _colon, password = userinfo.partition(":")
    return Credential(
        username=unquote(user) if at and user else None,
        password=unquote(password) if at and _colon else None,
        host=parts.hostname and unquote(parts.hostname),
        port=port, dbname=unquote(parts.path[1:]) if parts.path[1:] else None,
        sslmode=sslmode, params=[(k, v) for k, v in params if k != "sslmode"])


def looks_like_dsn(value) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(
        tuple(f"{scheme}://" for scheme in DSN_SCHEMES))


# -- one value in a store <-> a credential -----------------------------------------------

def decode(value, fmt: str) -> Credential:
    """Read a store's value (a string, or a dict for Vault/YAML/JSON containers)."""
    if fmt == "json":
        if isinstance(value, dict):
            return from_mapping(value)
        if isinstance(value, str):
            return from_mapping(parse_json_text(value))
        raise CredentialError(f"expected a JSON object, found a {type(value).__name__}")
    if not isinstance(value, str):
        raise CredentialError(f"expected a string for format {fmt}, found a "
                              f"{type(value).__name__}")
    if fmt == "password":
        return Credential(password=value)
    if fmt == "dsn":
        return parse_dsn(value)
    raise CredentialError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")


def encode(cred: Credential, fmt: str, existing=None, as_text: bool = True):
    """The store's value for cred.  The caller merges the update into the decoded existing
    credential first; existing only decides key order for JSON.  as_text: the store holds
    a string (Secrets Manager, dotenv) rather than a mapping (Vault, YAML/JSON nodes)."""
    if fmt == "json":
        if isinstance(existing, str) and existing.strip():
            existing = parse_json_text(existing)
        mapping = to_mapping(cred, existing if isinstance(existing, dict) else None)
        return json.dumps(mapping) if as_text else mapping
    if fmt == "password":
        if not cred.password:
            raise CredentialError("no password to write")
        return cred.password
    if fmt == "dsn":
        return build_dsn(cred)
    raise CredentialError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")


def same_value(left, right, fmt: str) -> bool:
    """Semantic equality: key order, spacing and URL encoding choices do not count."""
    if left is None or right is None:
        return left is right
    try:
        if fmt == "json":
            as_dict = [v if isinstance(v, dict) else parse_json_text(v) for v in (left, right)]
            return as_dict[0] == as_dict[1]
        if fmt == "dsn":
            a, b = parse_dsn(left), parse_dsn(right)
            return a == b
    except CredentialError:
        return left == right
    return left == right


def generate_password(length: int = 32, exclude_characters: str = DEFAULT_EXCLUDE,
                      require_each_type: bool = True) -> str:
    """A random password from the printable ASCII set minus exclude_characters."""
    if length < 8 or length > 4096:
        raise CredentialError("generated password length must be between 8 and 4096")
    pools = [string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation]
    pools = ["".join(c for c in pool if c not in exclude_characters) for pool in pools]
    alphabet = "".join(pools)
    if len(set(alphabet)) < 10:
        raise CredentialError("exclude_characters leaves fewer than 10 characters to use")
    required = [pool for pool in pools if pool] if require_each_type else []
    if len(required) > length:
        raise CredentialError("length is shorter than the number of required character types")
    chars = [secrets.choice(pool) for pool in required]
    chars += [secrets.choice(alphabet) for _index in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
