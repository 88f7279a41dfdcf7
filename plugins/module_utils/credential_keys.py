# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A credential spread over several keys of one file (``keys: {password: …, username: …,
dsn: …}``): Spring's ``spring.datasource.url``/``username``/``password``, a service
file's ``host``/``port``/``user``/``password``.

The value of such a store is ``{field: text}``.  The explicit keys win over what the DSN
says; a write changes a DSN only where it holds a part that changed (a URL without a
password stays without one), and leaves its text as it was otherwise.  DSNs are read and
built by credential's functions (their dialects are theirs).
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    FIELDS,
    Credential,
    CredentialError,
    decode,
    encode,
    from_mapping,
    same_value,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
    VERIFIER_FORMAT,
    decode_verifier,
    encode_verifier,
    same_entry,
)

KEYS_FORMAT = "keys"
KEY_FIELDS = (*FIELDS, "dsn")


def check_keys(keys) -> str | None:
    """Why keys is not a valid mapping, or None."""
    if not isinstance(keys, dict) or not keys:
        return "keys must be a mapping of credential fields to keys of the file"
    unknown = sorted(set(keys) - set(KEY_FIELDS))
    if unknown:
        return (f"keys has unknown fields {', '.join(unknown)} (use "
                f"{', '.join(KEY_FIELDS)})")
    if not all(isinstance(key, str) and key for key in keys.values()):
        return "each entry of keys names a key of the file"
    if "password" not in keys and "dsn" not in keys:
        return "keys needs a password or dsn entry: the credential's secret lives there"
    return None


def decode_keys(values: dict) -> Credential:
    if not isinstance(values, dict):
        raise CredentialError(f"expected the values of several keys, found a "
                              f"{type(values).__name__}")
    base = decode(values["dsn"], "dsn") if values.get("dsn") not in (None, "") \
        else Credential()
    explicit = from_mapping({field: value for field, value in values.items()
                             if field != "dsn" and value not in (None, "")})
    if "password" in values and values["password"] == "":
        explicit.password = ""
    return base.merged({field: getattr(explicit, field) for field in FIELDS})


def _text(value, like) -> object:
    if value is None:
        return like
    return value if isinstance(like, int) and not isinstance(like, bool) and \
        isinstance(value, int) else str(value)


def encode_keys(cred: Credential, existing: dict | None) -> dict:
    existing = existing if isinstance(existing, dict) else {}
    held = decode_keys(existing) if existing else Credential()
    for field in ("username", "host", "port", "dbname"):
        # a part that changes must have a key (or a DSN part) to go to: dropping it would
        # leave the file naming the old user (alternating_users) with the new password
        new, old = getattr(cred, field), getattr(held, field)
        if new is not None and new != old and field not in existing and not (
                existing.get("dsn") and old is not None):
            raise CredentialError(f"the {field} changes and this store has no key for it "
                                  f"(add {field} to keys)")
    out = {}
    for field, old in existing.items():
        if field == "dsn":
            out[field] = _dsn(cred, old)
        else:
            out[field] = _text(getattr(cred, field), old)
    return out


def _dsn(cred: Credential, old) -> str:
    if old in (None, ""):
        return old
    current = decode(old, "dsn")
    update = {field: getattr(cred, field) for field in FIELDS
              if getattr(current, field) is not None}
    new = current.merged(update)
    return old if new == current else encode(new, "dsn", old)


def same_keys(left, right) -> bool:
    if not isinstance(left, dict) or not isinstance(right, dict) or set(left) != set(right):
        return left == right
    return all(same_value(str(left[field]), str(right[field]), "dsn") if field == "dsn"
               else str(left[field]) == str(right[field]) for field in left)


# -- one entry point for every value format, the keys mapping included ---------------------

def decode_value(value, fmt: str) -> Credential:
    if fmt == VERIFIER_FORMAT:
        return decode_verifier(value)
    return decode_keys(value) if fmt == KEYS_FORMAT else decode(value, fmt)


def encode_value(cred: Credential, fmt: str, existing=None, as_text: bool = True):
    if fmt == KEYS_FORMAT:
        return encode_keys(cred, existing)
    if fmt == VERIFIER_FORMAT:
        return encode_verifier(cred, existing)
    return encode(cred, fmt, existing, as_text=as_text)


def same_stored(left, right, fmt: str) -> bool:
    if fmt == VERIFIER_FORMAT:
        return same_entry(left, right)
    if fmt == KEYS_FORMAT:
        return left is right if left is None or right is None else same_keys(left, right)
    return same_value(left, right, fmt)
