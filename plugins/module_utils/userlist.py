# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer's auth_file (userlist.txt): one `"user" "secret"` line per user, a double quote
inside a field doubled, `;` comments; what follows the fields on a line is ignored by
PgBouncer and kept here.  Only the user's own line is replaced (or appended), so comments
and other users stay byte for byte as they were.  Bounded: a file over MAX_BYTES is
refused, not parsed."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

MAX_BYTES = 4 << 20


class UserlistError(PgauthError):
    """The auth_file cannot be read as a userlist; the message never holds a secret."""


def quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fields(line: str) -> list[str]:
    """The quoted fields of a line, in order (linear in the line's length)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] != '"':
            i += 1
            continue
        value, i = [], i + 1
        closed = False
        while i < n:
            if line[i] == '"':
                if i + 1 < n and line[i + 1] == '"':
                    value.append('"')
                    i += 2
                    continue
                closed = True
                i += 1
                break
            value.append(line[i])
            i += 1
        if not closed:
            raise UserlistError("a line has an unterminated quoted field")
        out.append("".join(value))
    return out


def _check(text: str) -> None:
    if len(text) > MAX_BYTES:
        raise UserlistError(f"the file is larger than {MAX_BYTES} bytes")


def check_user(user: str) -> None:
    """A user name that can be written on a line of its own (a quote is doubled; a line
    break or NUL would end the line or the field early: refused)."""
    if not isinstance(user, str) or not user:
        raise UserlistError("the user name is empty")
    if any(char in user for char in "\n\r\x00"):
        raise UserlistError("a user name with a line break or NUL cannot be written")


def lines_of(text: str) -> list[str]:
    """The physical lines with their endings, split where PgBouncer splits (a newline only):
    joined again they are text, byte for byte."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def is_comment(line: str) -> bool:
    """PgBouncer skips a line whose first non-blank character is ';' (src/loader.c)."""
    return line.lstrip(" \t\n\v\f\r").startswith(";")


def _entry_fields(line: str) -> list[str]:
    return [] if is_comment(line) else fields(line.rstrip("\r\n"))


def _is_users(line: str, user: str) -> bool:
    parts = _entry_fields(line)
    return len(parts) >= 2 and parts[0] == user


def entry_of(text: str, user: str) -> str | None:
    """The secret on user's line (the last one, as PgBouncer keeps the last), else None."""
    _check(text)
    found = None
    for line in lines_of(text):
        parts = _entry_fields(line)
        if len(parts) >= 2 and parts[0] == user:
            found = parts[1]
    return found


def with_entry(text: str, user: str, secret: str) -> str:
    """text with user's line holding secret: every line of user replaced by one, in place
    of the first (its line ending kept); appended when the user has none.  Every other line
    stays byte for byte as it was."""
    _check(text)
    check_user(user)
    if any(char in secret for char in "\n\r\x00"):
        raise UserlistError("a secret with a line break or NUL cannot be written")
    line = f"{quote(user)} {quote(secret)}"
    out, placed = [], False
    for existing in lines_of(text):
        if _is_users(existing, user):
            if not placed:
                body = existing.rstrip("\r\n")
                out.append(line + (existing[len(body):] or ""))
                placed = True
            continue
        out.append(existing)
    if not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(line + "\n")
    return "".join(out)
