# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer's auth_file (userlist.txt) as a file store: format ``pgbouncer_userlist``.

``key`` is the user name of the line (``"app_user" "SCRAM-SHA-256$..."``).  The line is read
and written by userlist.py, the parser the pgbouncer consumer uses: only that user's line is
replaced, every other line stays byte for byte.  The value is the user's entry, in the
verifier value format (credential_verifier.py): the store holds the password's verifier,
never the password.  PgBouncer reads the file only on RELOAD or SIGHUP: pair the store with
the pgbouncer consumer (docs/stores.md).
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
    VERIFIER_FORMAT,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
)
from ansible_collections.credops.pgauth.plugins.module_utils.userlist import (
    UserlistError,
    check_user,
    entry_of,
    lines_of,
    with_entry,
)


def broken_line(text: str) -> int | None:
    """The first line PgBouncer cannot read (it logs "broken auth file" and ignores the rest
    of the file): one that is not blank, not a ``;`` comment and does not start with a
    quoted field."""
    for number, line in enumerate(lines_of(text), 1):
        body = line.strip()
        if body and not body.startswith((";", '"')):
            return number
    return None


class UserlistSyntax(Syntax):
    name = "pgbouncer_userlist"
    value_format = VERIFIER_FORMAT

    @staticmethod
    def check_key(key) -> str | None:
        """Why key cannot name a line of the file, or None."""
        if not isinstance(key, str) or not key:
            return ("key is required for the pgbouncer_userlist format: the user name of "
                    "the auth_file line")
        try:
            check_user(key)
        except UserlistError as err:
            return f"key: {err}"
        return None

    def get(self, text: str, keys: list[str]) -> dict:
        number = broken_line(text)
        if number is not None:
            raise FormatError("PgBouncer reads no user after this line (\"broken auth "
                              "file\"): a line is a quoted user and secret, or a ';' comment",
                              number)
        out = {}
        for key in keys:
            try:
                secret = entry_of(text, key)
            except UserlistError as err:
                raise FormatError(str(err)) from None
            if secret is None:
                raise MissingKey(f"the file has no line for user {key!r}")
            out[key] = {"username": key, "secret": secret}
        return out

    def set(self, text: str, values: dict) -> str:
        for key, value in values.items():
            if not isinstance(value, dict) or value.get("username") != key \
                    or not isinstance(value.get("secret"), str):
                raise FormatError("a pgbouncer_userlist entry is the key's user and a verifier")
            try:
                text = with_entry(text, key, value["secret"])
            except UserlistError as err:
                raise FormatError(str(err)) from None
        return text
