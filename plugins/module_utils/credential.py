# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credential model and its formats: RDS-style JSON, a bare password, a connection string.

A credential is {username, password, host, port, dbname, auth, sslmode} plus, so that
a write never drops what an application put there, the other keys of a JSON secret
(``extra``) and the other parameters of a connection string (``params``), whose dialect
(module_utils/dsn.py) it remembers.  Nothing here does I/O.
"""
from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils import dsn, dsn_clients
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.kvdsn import DsnError

FIELDS = ("username", "password", "host", "port", "dbname", "auth", "sslmode")
# keys other tools write for the same things; read them, write back under the key found
ALIASES = {"user": "username", "database": "dbname", "db": "dbname", "dbName": "dbname"}
FORMATS = ("json", "password", "dsn")
DSN_SCHEMES = dsn.URL_SCHEMES
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
DSN_NOT_ENCODED = dsn.NOT_ENCODED


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
    params: list = field(default_factory=list)  # DSN parameters besides the fields
    dialect: str | None = None  # the DSN dialect read (dsn.dialect_name), kept on rewrite
    # what the DSN's client refuses in it (dsn_clients.rejected): facts about the text read
    rejected: list = field(default_factory=list, compare=False, repr=False)
    # a store that holds a verifier (SCRAM-SHA-256 or md5) instead of the password, such as
    # PgBouncer's auth_file: a secret too (an offline guessing target), never shown
    verifier: str | None = field(default=None, repr=False)

    def public(self) -> dict:
        """Everything but the password (and a verifier)."""
        out = {name: getattr(self, name) for name in FIELDS if name != "password"}
        out["password_set"] = bool(self.password)
        if self.verifier:
            out["holds_verifier"] = True
        if self.dialect:
            out["dialect"] = self.dialect
        return out

    def merged(self, update: dict) -> Credential:
        """A copy with the given fields replaced (None values ignored)."""
        new = Credential(**{name: getattr(self, name) for name in FIELDS},
                         extra=dict(self.extra), params=list(self.params),
                         dialect=self.dialect)
        for key, value in update.items():
            key = ALIASES.get(key, key)
            if value is None:
                continue
            if key == "verifier":  # the database's verifier, for a store that holds one
                new.verifier = str(value)
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


# -- connection strings (every dialect: module_utils/dsn.py) -----------------------------

def _fields(cred: Credential) -> dsn.Fields:
    return dsn.Fields(cred.username, cred.password, cred.host, cred.port, cred.dbname,
                      cred.sslmode, list(cred.params))


def _dsn_call(function, *args):
    try:
        return function(*args)
    except DsnError as err:
        raise CredentialError(str(err), err.code or "invalid_value") from None


def build_dsn(cred: Credential, dialect: str | None = None) -> str:
    """A new connection string of dialect (default: the one the credential was read from,
    else a postgresql:// URL), every part encoded so that it parses back losslessly."""
    base, driver = _dsn_call(dsn.split_dialect, dialect or cred.dialect)
    fields = _fields(cred)
    if cred.dialect and dsn.dialect_name(base, driver) != cred.dialect:
        # into another dialect: the TLS the old client used, in the new one's parameter
        fields.sslmode = client_sslmode(cred)
        fields.params = [(key, value) for key, value in fields.params
                         if key not in dsn_clients.tls_only_params(cred.dialect)]
    return _dsn_call(dsn.render, fields, None, base, driver)


def parse_dsn(text: str) -> Credential:
    """A credential from a connection string of any dialect.  Refuses ambiguous URLs: an
    unencoded '@', '/', '?', '#' or space in the user or password is read differently by
    libpq and by other parsers, which is exactly the broken-DATABASE_URL incident."""
    fields, dialect, driver = _dsn_call(dsn.parse, text or "")
    return Credential(username=fields.username, password=fields.password, host=fields.host,
                      port=fields.port, dbname=fields.dbname, sslmode=fields.sslmode,
                      params=fields.params, dialect=dsn.dialect_name(dialect, driver),
                      rejected=dsn_clients.rejected(fields, dialect, driver))


def looks_like_dsn(value) -> bool:
    return dsn.detect(value) is not None


def dsn_rejected(cred: Credential) -> list[dict]:
    """The parameters of the connection string the credential was read from that its client
    refuses (worked out as it was parsed: only the parse knows what was quoted)."""
    return list(cred.rejected) if cred.dialect else []


def client_sslmode(cred: Credential) -> str | None:
    """The sslmode that logs in the way the credential's client would (None: its default)."""
    if not cred.dialect:
        return cred.sslmode
    return dsn_clients.probe_sslmode(_fields(cred), *dsn.split_dialect(cred.dialect))


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
    credential first; existing decides key order for JSON, and a DSN is existing rewritten in
    its own dialect (only the fields that changed).  as_text: the store holds
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
        text = existing if isinstance(existing, str) else None
        base, driver = _dsn_call(dsn.split_dialect, cred.dialect)
        return _dsn_call(dsn.render, _fields(cred), text, base, driver)
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
