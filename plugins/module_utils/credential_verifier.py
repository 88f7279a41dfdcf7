# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The value format of a store that holds a verifier of the password, not the password:
PgBouncer's auth_file (the file store format pgbouncer_userlist).

The value is ``{"username": <the line's user>, "secret": <what the line holds>}``.  Read:
``SCRAM-SHA-256$...`` and ``md5`` + 32 hex digits are verifiers (Credential.verifier, no
password); anything else is a plaintext password (PgBouncer accepts those) and reads as
one.  Written: never the plaintext.  The credential's own verifier when it carries one of
its password (rotate gives the database's: PgBouncer's SCRAM pass-through needs that very
one); else the entry as it is when its SCRAM verifier already verifies the password
(idempotent); else a fresh SCRAM-SHA-256 verifier (a random salt, 4096 iterations or the
entry's own count when higher, at most MAX_ITERATIONS).
"""
from __future__ import annotations

import os

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    MAX_ITERATIONS,
    hash_type,
    holds_password,
    is_scram_of,
    make_verifier,
    parse_verifier,
)

VERIFIER_FORMAT = "verifier"
DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN


def _parts(value) -> tuple[str, str]:
    if not isinstance(value, dict) or not isinstance(value.get("username"), str) \
            or not isinstance(value.get("secret"), str):
        raise CredentialError("expected a user's entry (user name and secret)")
    return value["username"], value["secret"]


def decode_verifier(value) -> Credential:
    user, secret = _parts(value)
    if hash_type(secret) in ("scram", "md5"):
        return Credential(username=user, verifier=secret)
    return Credential(username=user, password=secret)


def encode_verifier(cred: Credential, existing) -> dict:
    """The entry for cred: existing's user (the store's key), the password's verifier."""
    user, old = _parts(existing) if existing is not None else (cred.username, None)
    if not user:
        raise CredentialError("a verifier store's entry needs its user name (the store's key)")
    if cred.username and cred.username != user:
        raise CredentialError(f"this store holds the entry of user {user!r} (its key), not "
                              f"of {cred.username!r}")
    if cred.password is None:
        if cred.verifier:
            return {"username": user, "secret": cred.verifier}
        if old is not None:
            return {"username": user, "secret": old}
        raise CredentialError("a verifier store is written from a password")
    for secret in (cred.verifier, old):
        if is_scram_of(secret, cred.password):
            return {"username": user, "secret": secret}
    held = parse_verifier(old) if old else None
    iterations = min(max(DEFAULT_ITERATIONS, held.iterations if held else 0), MAX_ITERATIONS)
    return {"username": user,
            "secret": make_verifier(cred.password, os.urandom(SALT_BYTES), iterations)}


def same_entry(left, right) -> bool:
    return left == right


def verifier_holds(cred: Credential, password: str | None) -> bool:
    """Whether cred (a verifier store's credential) was made from password."""
    return holds_password(cred.verifier, password, cred.username)
