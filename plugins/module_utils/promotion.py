# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Promotes read ahead.  From the moment the database has the new password until a store
holds it, clients reading that store fail to log in: so every read a promote needs is made
before the database changes, and inside that window each store only writes - one call per
store.  The pending stage is tidied away after every store has switched."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
    verifier_holds,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreValueError,
    WritePlan,
)


def same_secret(left: Credential | None, right: Credential | None) -> bool:
    """Same password, and the same user where both say one (a bare-password store has
    none)."""
    if left is None or right is None:
        return False
    if left.verifier or right.verifier:
        # a verifier store (PgBouncer's auth_file) holds what the password verifies against
        holder, other = (left, right) if left.verifier else (right, left)
        if other.verifier:
            if left.verifier != right.verifier:
                return False
        elif not verifier_holds(holder, other.password):
            return False
    elif left.password != right.password:
        return False
    return not (left.username and right.username and left.username != right.username)


@dataclass
class Promotion:
    """One store's promote of a credential: switch() makes it current, tidy() drops the
    pending value afterwards.  Either may be a no-op."""
    switch: Callable[[], object]
    tidy: Callable[[], object]


def nothing() -> None:
    return None


def read_ahead(store: Store, cred: Credential,
               plan_current: Callable[[Store, Credential], WritePlan]) -> Promotion | None:
    """The promote of cred in store as writes only, or None when the store is not in the
    simple state a fresh stage leaves (then the caller promotes the slow, careful way).  A
    write-only store is written blind: after the database change, during promote."""
    if store.write_only:
        plan = plan_current(store, cred)
        return Promotion(lambda: store.write(plan), nothing)
    if store.supports_pending:
        try:
            pending_cred, pending = store.read("pending")
        except StoreValueError:
            return None
        if pending is None or not same_secret(pending_cred, cred):
            return None
        current = store.read_stored("current")
        return Promotion(lambda: store.make_current(pending, current),
                         lambda: store.discard_stored(pending))
    try:
        current_cred, _stored = store.read("current")
    except StoreValueError:
        current_cred = None
    if same_secret(current_cred, cred):
        return Promotion(nothing, nothing)
    plan = plan_current(store, cred)
    return Promotion((lambda: store.write(plan)) if plan.changed else nothing, nothing)
