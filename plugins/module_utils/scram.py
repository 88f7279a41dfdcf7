# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers as PostgreSQL stores them (pg_authid.rolpassword).

A verifier is ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``
(base64 parts).  Checking a candidate password against it needs no login, so
pg_role can tell "unchanged" without touching the server's auth path.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import stringprep
import unicodedata
from dataclasses import dataclass

PREFIX = "SCRAM-SHA-256$"
_B64 = r"([A-Za-z0-9+/=]+)"
_VERIFIER = re.compile(rf"^SCRAM-SHA-256\$([0-9]+):{_B64}\${_B64}:{_B64}$")
# The most PBKDF2 iterations a verifier someone else wrote (an auth_file, a role's own
# pg_authid entry) is checked with: whoever writes it sets the cost of every check.
MAX_ITERATIONS = 100_000


@dataclass(frozen=True)
class ScramVerifier:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes


def parse_verifier(text: str) -> ScramVerifier | None:
    """The parts of a SCRAM-SHA-256 verifier, or None when text is not one."""
    match = _VERIFIER.match(text or "")
    if not match:
        return None
    try:
        return ScramVerifier(int(match.group(1)), base64.b64decode(match.group(2), validate=True),
                             base64.b64decode(match.group(3), validate=True),
                             base64.b64decode(match.group(4), validate=True))
    except ValueError:
        return None


def hash_type(stored: str | None) -> str:
    """scram, md5, none (no password) or plain (a legacy unhashed value)."""
    if stored is None or stored == "":
        return "none"
    if stored.startswith(PREFIX):
        return "scram"
    if re.fullmatch(r"md5[0-9a-f]{32}", stored):
        return "md5"
    return "plain"


def _is_prohibited(char: str) -> bool:
    return (stringprep.in_table_c12(char) or stringprep.in_table_c21_c22(char)
            or stringprep.in_table_c3(char) or stringprep.in_table_c4(char)
            or stringprep.in_table_c5(char) or stringprep.in_table_c6(char)
            or stringprep.in_table_c7(char) or stringprep.in_table_c8(char)
            or stringprep.in_table_c9(char) or stringprep.in_table_a1(char))


def saslprep(password: str) -> bytes:
    """The bytes PostgreSQL hashes for password (RFC 4013 SASLprep, as the server applies it).

    Like the server: pure ASCII passes untouched, and a password that SASLprep
    rejects (prohibited or unassigned code points, bad bidi) is used as its raw
    UTF-8 bytes instead of failing.
    """
    raw = password.encode("utf-8")
    if password.isascii():
        return raw
    mapped = "".join(" " if stringprep.in_table_c12(c) else c
                     for c in password if not stringprep.in_table_b1(c))
    normalized = unicodedata.normalize("NFKC", mapped)
    if not normalized:
        return raw
    if any(_is_prohibited(c) for c in normalized):
        return raw
    if any(stringprep.in_table_d1(c) for c in normalized):
        if any(stringprep.in_table_d2(c) for c in normalized):
            return raw
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            return raw
    return normalized.encode("utf-8")


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def verify_password(password: str, stored: str) -> bool:
    """True when password is the one stored (SCRAM-SHA-256 or md5 verifiers).

    md5 verifiers are md5(password + role name); call verify_md5 for those.
    """
    verifier = parse_verifier(stored)
    if verifier is None:
        return False
    stored_key, server_key = _keys(password, verifier.salt, verifier.iterations)
    return (hmac.compare_digest(stored_key, verifier.stored_key)
            and hmac.compare_digest(server_key, verifier.server_key))


def verify_md5(password: str, role: str, stored: str) -> bool:
    digest = hashlib.md5((password + role).encode("utf-8")).hexdigest()
    return hmac.compare_digest("md5" + digest, stored or "")


def holds_password(stored: str | None, password: str | None, role: str | None) -> bool:
    """Whether a stored secret (a SCRAM-SHA-256 or md5 verifier) was made from password:
    the check a verifier store (PgBouncer's auth_file) is compared by."""
    if not stored or password is None:
        return False
    kind = hash_type(stored)
    if kind == "scram":
        parsed = parse_verifier(stored)
        if parsed is None or not 1 <= parsed.iterations <= MAX_ITERATIONS:
            return False  # not checked: it verifies nothing here
        return verify_password(password, stored)
    if kind == "md5":
        return bool(role) and verify_md5(password, role, stored)
    return False


def is_scram_of(stored: str | None, password: str | None) -> bool:
    """stored is a SCRAM-SHA-256 verifier made from password (an md5 one is no answer)."""
    return hash_type(stored) == "scram" and holds_password(stored, password, None)


def make_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """A verifier from a given salt; the modules use libpq's encrypt_password, tests use this."""
    stored_key, server_key = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return (f"{PREFIX}{iterations}:{b64(salt).decode()}$"
            f"{b64(stored_key).decode()}:{b64(server_key).decode()}")
