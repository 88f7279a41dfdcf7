# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""observe(): one read of the stores and the database, before anything changes, into the
frozen RotationState that decide() works from.  Also the checks that would otherwise fail
half-way (preflight), and the target database as the test login sees it."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg import login_kwargs, try_login
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    check_password_current,
    fetch_role,
    is_member,
    normalize_valid_until,
)
from ansible_collections.credops.pgauth.plugins.module_utils.promotion import same_secret
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import RotationState
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_stores import (
    RotationStores,
    store_versions,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_strategies import SingleUser


class TargetDb:
    """The role's database, reached at the target's endpoint (never a store's)."""

    def __init__(self, params: dict, cur):
        self.params, self.cur, self.role = params, cur, params["role"]

    def login_params(self, cred: Credential) -> dict:
        """How the test login connects: as the credential's user; login_kwargs takes the
        credential's password and nothing else."""
        params = self.params
        return {**params, "login_db": params.get("dbname") or params.get("login_db"),
                "login_user": cred.username, "login_password": None, "login_iam": False}

    def user_of(self, cred: Credential) -> str:
        """A bare-password store names no user: it is the role's password."""
        return cred.username or self.role

    def logs_in(self, cred: Credential | None) -> bool:
        if cred is None or not cred.password:
            return False
        user = self.user_of(cred)
        params = self.login_params(cred.merged({"username": user}))
        return try_login(login_kwargs(params, user, cred.password)).authenticated

    def database_state(self, cred: Credential) -> bool | None:
        """Does the database hold cred's password?  None when it cannot tell (pg_authid hidden
        and the login failed for another reason than the password)."""
        state = fetch_role(self.cur, cred.username)
        if not state.exists:
            return False
        check = check_password_current(state, cred.password, self.login_params(cred))
        if check.how == "unverifiable":
            return None
        return not check.needs_change

    def test_login(self, new: Credential) -> None:
        result = try_login(login_kwargs(self.login_params(new), new.username, new.password))
        if not result.authenticated:
            raise RotationError(f"test login as {new.username!r} with the new password failed "
                                f"({result.category}): {result.message}")


def preflight(db: TargetDb, stores: RotationStores, setter) -> dict:
    """What would fail at set_database fails here, before a secret is staged.  Returns each
    store's version (the report's versions_before)."""
    role, cur = db.role, db.cur
    if not fetch_role(cur, role).exists:
        raise RotationError(f"role {role!r} does not exist; create it first "
                            "(credops.pgauth.pg_role); nothing was changed")
    if is_member(cur, role, "rds_iam"):
        raise RotationError(f"role {role!r} is in rds_iam, so RDS refuses its password "
                            "logins: use strategy iam, or revoke rds_iam first "
                            "(credops.pgauth.rds_iam_grant state=absent)")
    setter.preflight(role)
    normalize_valid_until(cur, db.params.get("valid_until"))
    missing: list = []
    versions = store_versions(stores.stores, missing)
    if missing:
        # a rotation changes the copies that exist: a store with no secret is most likely
        # a wrong path, and writing there would leave the real copy stale
        raise RotationError(
            "; ".join(str(store.error("no secret there")) for store in missing)
            + " - fix the store's secret_id or path, or create the secret first "
            "(credops.pgauth.secret_value); nothing was changed")
    return versions


def observe(db: TargetDb, stores: RotationStores, strategy: SingleUser,
            check_mode: bool, consumers=None) -> RotationState:
    """Reads only what the decision needs: with a pending value to resume, the stores'
    agreement and age do not matter."""
    primary = stores.primary
    pending = stores.read(primary, "pending")
    current = stores.read_or_none(primary, "current")
    facts: dict = {"role": db.role, "primary": primary.name, "pending": pending,
                   "current": current,
                   "pending_is_current": pending is not None and same_secret(pending, current),
                   "consumers": consumers.names if consumers is not None else ()}
    try:
        facts["target_user"] = user = strategy.target_user(current)
    except RotationError as err:
        facts["user_error"], user = str(err), None
    if pending is None or facts["pending_is_current"]:
        facts.update(_nothing_in_progress(db, stores, current, facts["pending_is_current"]))
        if consumers is not None and facts["trusted_logs_in"] and not facts.get("differ"):
            # promoted, stores in line: a consumer left behind is what this run finishes
            facts["consumers_left"] = consumers.left_behind(facts["trusted"])
    elif user and (not pending.username or pending.username == user) and not check_mode:
        facts["database_has_pending"] = db.database_state(pending.merged({"username": user}))
    if user and strategy.needs_clone(user):
        facts["clone_ready"] = strategy.clone_ready(db.cur, user)
    return RotationState(**facts)


def _nothing_in_progress(db: TargetDb, stores: RotationStores, current: Credential | None,
                         promote_cut: bool) -> dict:
    """No rotation in progress: a pending value (or an AWSPENDING label on the current
    version) is a leftover of a tidy that failed or a run killed before it; the stores
    should hold the source store's credential, else the primary's."""
    candidates = stores.pending_capable() if promote_cut else [stores.primary,
                                                               *stores.pending_capable()]
    leftovers = []
    for store in candidates:
        leftover = store.leftover_pending()
        if leftover is not None:
            leftovers.append((store.name, leftover))
    trusted = stores.read_or_none(stores.source, "current") if stores.source else current
    facts = {"leftovers": tuple(leftovers), "trusted": trusted,
             "trusted_logs_in": db.logs_in(trusted)}
    if facts["trusted_logs_in"]:
        facts["differ"] = tuple(store.name for store in stores.differing_from(trusted))
        if not facts["differ"]:
            _cred, stored = stores.primary.read("current")
            facts["changed_at"] = stored.changed_at if stored else None
    return facts
