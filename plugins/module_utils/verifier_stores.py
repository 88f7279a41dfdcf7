# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stores that hold a verifier of the password (PgBouncer's auth_file), compared with the
others.  Pure: credentials in, fingerprints out.

Such a store has no password, so nothing logs in with it; once every store of a run is
read, it gets the keyed fingerprint of the password that verifies against it (one of the
other stores', or a password the caller knows: the working or new one), or a fingerprint
that matches nothing when none does.  Diagnosis, verify's agreement and the metrics then
compare it like any other store: a stale verifier is a store that disagrees.
"""
from __future__ import annotations

import secrets

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
    verifier_holds,
)
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import fingerprint


def candidate_passwords(creds: dict, known: tuple = ()) -> list[str]:
    """The distinct passwords the stores (and known) hold, in order."""
    found: list[str] = []
    for password in [*known, *(cred.password for cred in creds.values()
                               if cred is not None and not cred.verifier)]:
        if password and password not in found:
            found.append(password)
    return found


def matching_password(cred: Credential, candidates: list[str]) -> str | None:
    """The candidate that verifies against cred's verifier, or None."""
    return next((password for password in candidates if verifier_holds(cred, password)), None)


def assign_verifier_fingerprints(infos: list[dict], creds: dict, key: str,
                                 known: tuple = ()) -> None:
    """Sets password_fingerprint, and verified (whether some password verified), on each
    verifier store's info (secret_value_info results); creds maps store name to the
    credential read (describe's keep).  With no match the fingerprint is random, of the
    same shape: it matches nothing."""
    candidates = candidate_passwords(creds, known)
    for info in infos:
        cred = creds.get(info.get("store"))
        if cred is None or not cred.verifier:
            continue
        match = matching_password(cred, candidates)
        info["password_fingerprint"] = fingerprint(
            match if match is not None else secrets.token_hex(32),
            key if match is not None else secrets.token_hex(32))
        info["verified"] = match is not None
