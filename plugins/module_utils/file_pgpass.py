# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""libpq's password file (``~/.pgpass``, ``PGPASSFILE``).

A line is ``host:port:database:username:password``; ``\\:`` and ``\\\\`` escape a colon
and a backslash in any field, and a field that is exactly ``*`` matches anything.  ``key``
is ``host:port:database:username`` (escaped the same way) and names the connection, not
the line: the line read and written is the one libpq would use for it, the first that
matches.  Comments (``#`` at the start of a line), the other lines and the line's own
fields stay as they are.  libpq ignores a password file that the group or others may
access (any of the bits 077): file_problem says so.
"""
from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
    refuse_line_breaks,
)


def split_fields(line: str, count: int) -> tuple[list[str], str] | None:
    """The first count fields (escapes kept, as written) and the rest of the line after
    their colons; None when the line has fewer fields."""
    fields, start, index = [], 0, 0
    while len(fields) < count:
        if index >= len(line):
            return None
        if line[index] == "\\" and index + 1 < len(line):
            index += 2
            continue
        if line[index] == ":":
            fields.append(line[start:index])
            start = index + 1
        index += 1
    return fields, line[start:]


def unescape(field: str) -> str:
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and index + 1 < len(field):
            index += 1
        out.append(field[index])
        index += 1
    return "".join(out)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def password_part(rest: str) -> tuple[str, str]:
    """(the password as written, what follows it): libpq stops at an unescaped colon."""
    index = 0
    while index < len(rest):
        if rest[index] == "\\" and index + 1 < len(rest):
            index += 2
            continue
        if rest[index] == ":":
            return rest[:index], rest[index:]
        index += 1
    return rest, ""


@dataclass
class Match:
    index: int       # physical line index
    fields: list[str]
    password_raw: str
    after: str       # after the password: ignored by libpq, kept
    ending: str


def parse_key(key: str) -> list[str]:
    split = split_fields(key + ":", 4)
    if split is None or split[1]:
        raise MissingKey("a pgpass key is host:port:database:username (a colon or backslash "
                         "inside a field escaped with a backslash)")
    return [unescape(field) for field in split[0]]


def find(text: str, key: str) -> Match:
    wanted = parse_key(key)
    for index, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\r\n")
        if not body or body.startswith("#"):
            continue
        split = split_fields(body, 4)
        if split is None:
            continue
        fields, rest = split
        if all(field == "*" or unescape(field) == want
               for field, want in zip(fields, wanted, strict=True)):
            password_raw, after = password_part(rest)
            return Match(index, fields, password_raw, after, line[len(body):])
    raise MissingKey(f"no line of the file matches {key}")


class PgpassSyntax(Syntax):
    name = "pgpass"

    def get(self, text: str, keys: list[str]) -> dict:
        return {key: unescape(find(text, key).password_raw) for key in keys}

    def set(self, text: str, values: dict) -> str:
        for key, value in values.items():
            if not isinstance(value, str):
                raise FormatError("a pgpass password is text")
            refuse_line_breaks(value, self.name)
            match = find(text, key)
            lines = text.splitlines(keepends=True)
            lines[match.index] = (":".join(match.fields) + ":" + escape(value) + match.after
                                  + match.ending)
            text = "".join(lines)
        return text

    def file_problem(self, mode: int) -> str | None:
        if mode & 0o077:
            return (f"libpq ignores this password file: its mode {mode & 0o777:04o} lets the "
                    "group or others access it (libpq: \"password file has group or world "
                    "access\"); chmod 0600 it")
        return None
