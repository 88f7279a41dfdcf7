# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""libpq keyword/value connection strings (``host=db port=5432 password='a b\\'c'``), read
with libpq's own rules and rewritten in place: only the values that changed are re-quoted,
every other key, its spacing and its order stay as written.  Nothing here does I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# libpq 17's connection keywords (PQconndefaults); a unit test checks each against libpq
LIBPQ_KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
    "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
    "target_session_attrs", "load_balance_hosts"})
# keyword -> credential field; every other keyword is a param
FIELD_OF = {"host": "host", "port": "port", "dbname": "dbname", "user": "username",
            "password": "password", "sslmode": "sslmode"}
# libpq's isspace() is C's: ASCII white space only
_WS = " \t\n\r\f\v"
_KEY = re.compile(rf"[{_WS}]*([^{_WS}=]+)[{_WS}]*=[{_WS}]*")
# a value libpq reads as written: no space, quote or backslash, not empty
_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE = re.compile(rf"[^{_WS}'\\]+")


class DsnError(PgauthError, ValueError):
    """Not a connection string of a dialect.  Never holds a value: a password could be in
    it.  code as in credential.CredentialError (the caller re-raises it as one)."""

    def __init__(self, message: str, code: str = "invalid_value"):
        super().__init__(message, code)


def quote_value(value: str) -> str:
    """A value as libpq reads it back: bare when it can be, else single-quoted with
    backslash escapes for the quote and the backslash."""
    if _BARE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Item:
    lead: str        # the text before the key (spaces), as written
    key: str
    sep: str         # '=' with its spaces, as written
    raw: str         # the value as written (quotes and escapes included)
    value: str       # the value libpq reads


@dataclass
class KeywordDsn:
    items: list = field(default_factory=list)
    tail: str = ""   # trailing spaces

    @classmethod
    def parse(cls, text: str) -> KeywordDsn:
        """libpq's conninfo_parse rules: key, optional spaces, '=', optional spaces, then a
        bare value (up to a space; a backslash takes the next character) or a single-quoted
        one (a backslash escapes the next character, the quote ends it)."""
        out, pos = cls(), 0
        while True:
            match = _KEY.match(text, pos)
            if not match:
                if text[pos:].strip(_WS):
                    raise DsnError(f"keyword/value string: expected key=value at "
                                   f"character {pos + 1}")
                out.tail = text[pos:]
                return out
            start = pos
            key = match.group(1)
            lead_end = start + len(match.group(0)) - len(match.group(0).lstrip())
            sep = text[lead_end + len(key):match.end()]
            pos = match.end()
            value, pos = _read_value(text, pos, key)
            out.items.append(Item(text[start:lead_end], key, sep, text[match.end():pos], value))

    @staticmethod
    def looks_like(text: str) -> bool:
        """A keyword/value string: it parses, every key is a keyword's name, and it names a
        host, a database or a service (so a password like 'a=b' is not mistaken for one)."""
        try:
            kv = KeywordDsn.parse(text)
        except DsnError:
            return False
        keys = [item.key for item in kv.items]
        # an unknown keyword is the client's to refuse (dsn_clients.rejected), not a reason to read
        # the whole string as a bare password
        return bool(keys) and all(_KEYWORD.fullmatch(key) for key in keys) and \
            bool({"host", "hostaddr", "dbname", "service"} & set(keys))

    def fields(self, factory):
        """factory(...) -> the dialect-neutral fields (dsn.Fields); the last of a repeated
        keyword wins, as in libpq."""
        out = factory()
        after_bare_password = after_password = False
        for item in self.items:
            name = FIELD_OF.get(item.key)
            if item.key in LIBPQ_KEYWORDS:
                after_bare_password = item.key == "password" and not item.raw.startswith("'")
                after_password = item.key == "password"
            elif after_bare_password or (after_password and not item.lead):
                # "password=two words=x", "password=''tail'=x": the unknown keyword may be
                # part of the password (unquoted, or glued to its closing quote)
                out.suspect.add(item.key)
            if name is None:
                out.params.append((item.key, item.value))
            elif name == "port":
                out.port = _port(item.value)
            elif name == "host" and "," in item.value:
                raise DsnError("multi-host connection strings are not supported")
            else:
                setattr(out, name, item.value)
        return out

    def render(self, new) -> str:
        """This string with new's fields; unchanged values stay as written, new keywords go
        last, in libpq's order."""
        old = self.fields(type(new))
        items = [Item(i.lead, i.key, i.sep, i.raw, i.value) for i in self.items]
        wanted = {key: getattr(new, name) for key, name in FIELD_OF.items()}
        before = {key: getattr(old, name) for key, name in FIELD_OF.items()}
        params_same = list(new.params) == list(old.params)
        extra = iter([] if params_same else list(new.params))
        out = []
        for item in items:
            if item.key in FIELD_OF:
                value = wanted[item.key]
                if value != before[item.key]:
                    if value is None:
                        continue
                    item.raw = quote_value(str(value))
            elif not params_same:
                pair = next(extra, None)
                if pair is None:
                    continue
                item.key, item.raw = pair[0], quote_value(pair[1])
            out.append(item)
        added = [(key, str(wanted[key])) for key in FIELD_OF if wanted[key] is not None
                 and before[key] is None and wanted[key] != before[key]] + list(extra)
        for key, value in added:
            out.append(Item(" " if out else "", key, "=", quote_value(value), value))
        if not self.items and not new.host:
            raise DsnError("a DSN needs a host")
        return "".join(f"{i.lead}{i.key}{i.sep}{i.raw}" for i in out) + self.tail


def _read_value(text: str, pos: int, key: str) -> tuple[str, int]:
    chars = []
    if pos < len(text) and text[pos] == "'":
        pos += 1
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text):
                chars.append(text[pos + 1])
                pos += 2
            elif char == "'":
                return "".join(chars), pos + 1
            else:
                chars.append(char)
                pos += 1
        # the key, never the value: it may be the password
        raise DsnError(f"keyword/value string: unterminated quoted value for {key!r}")
    while pos < len(text) and text[pos] not in _WS:
        if text[pos] == "\\" and pos + 1 < len(text):
            pos += 1
        chars.append(text[pos])
        pos += 1
    return "".join(chars), pos


def _port(value: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise DsnError("keyword/value string: port is not a number")
    return int(value)
