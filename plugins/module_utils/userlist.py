# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer's auth_file (userlist.txt): one `"user" "secret"` line per user, a double quote
inside a field doubled; anything else on a line is ignored by PgBouncer and kept here.  Only
the user's own line is replaced (or appended), so comments and other users stay as they
were.  Bounded: a file over MAX_BYTES is refused, not parsed."""
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


def entry_of(text: str, user: str) -> str | None:
    """The secret on user's line (the last one, as PgBouncer keeps the last), else None."""
    _check(text)
    found = None
    for line in text.splitlines():
        parts = fields(line)
        if len(parts) >= 2 and parts[0] == user:
            found = parts[1]
    return found


def with_entry(text: str, user: str, secret: str) -> str:
    """text with user's line holding secret: every line of user replaced by one, in place
    of the first; appended when the user has none."""
    _check(text)
    if "\n" in secret or "\n" in user:
        raise UserlistError("a user name or secret with a newline cannot be written")
    line = f"{quote(user)} {quote(secret)}"
    out, placed = [], False
    for existing in text.splitlines():
        parts = fields(existing)
        if len(parts) >= 2 and parts[0] == user:
            if not placed:
                out.append(line)
                placed = True
            continue
        out.append(existing)
    if not placed:
        out.append(line)
    return "\n".join(out) + "\n"
