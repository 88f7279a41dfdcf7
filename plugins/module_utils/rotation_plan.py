# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""decide(): what a run does, from what observe() found.  Pure: no client, no clock (the
plan carries "now"), no randomness (the new password is made when StageNew runs), so every
row of the state machine in docs/rotate.md is a unit test over a plain dataclass.

- a pending value in the primary equal to its current (a promote cut after the current
  was written): DiscardPromotedPending, then as if there were no pending value;
- a pending value in the primary: resumed, never a second new password (Drain first when
  this run sets it in the database, as before a fresh stage);
- no pending value there, leftovers elsewhere: DiscardLeftover each, then on;
- the trusted credential logs in, stores differ: converged (rotated when forced);
- it logs in, the stores agree, a consumer is left behind (a run that failed or died
  after promote): consumers_refreshed, and never a new password;
- it logs in, the stores agree, younger than min_age: not_due;
- otherwise: rotated.
rotated, resumed and converged runs end with RefreshConsumers for every consumer.

decide_rollback() is the same for a failure before promote: put the old password back, or
keep the pending values when that is impossible or the database's state is unknown.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.logscan import parse_since
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError


@dataclass(frozen=True)
class RotationState:
    """What observe() read, before anything changed.  Store names only, no clients."""

    role: str
    primary: str
    pending: Credential | None = None       # the primary's pending value
    current: Credential | None = None       # the primary's current value
    pending_is_current: bool = False        # a promote cut after the current was written
    # (store name, the backend's handle) of pending values left with no rotation in progress
    leftovers: tuple = ()
    trusted: Credential | None = None       # the source store's current, else the primary's
    trusted_logs_in: bool = False
    differ: tuple = ()                       # stores whose current differs from trusted
    changed_at: str | None = None            # when the primary's current was written
    target_user: str | None = None           # who gets the new password
    user_error: str | None = None            # why there is no target user
    clone_ready: bool | None = None          # None: no clone needed for target_user
    database_has_pending: bool | None = None  # resumed: the database holds it already?
    consumers: tuple = ()                    # every configured consumer's name
    consumers_left: tuple = ()               # those that do not work with trusted now


@dataclass(frozen=True)
class RotationPlan:
    """What the user asked for."""

    min_age: str | None = None
    force: bool = False
    check_mode: bool = False
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    # rotate_via rds_managed: RDS made the new password; this run only brings the other
    # stores in line with the source (the managed secret), whose pending stage is RDS's
    converge_only: bool = False


# -- the steps decide() returns; the engine runs each (rotation.py) ------------------------
@dataclass(frozen=True)
class Resume:
    """The primary's pending value is finished (outcome resumed from the start)."""
    settles = True


@dataclass(frozen=True)
class DiscardPromotedPending:
    settles = False


@dataclass(frozen=True)
class DiscardLeftover:
    store: str
    handle: object = None
    settles = False


@dataclass(frozen=True)
class Converge:
    stores: tuple
    settles = True


@dataclass(frozen=True)
class NotDue:
    min_age: str | None
    settles = True


@dataclass(frozen=True)
class EnsureClone:
    user: str
    ready: bool
    settles = False


@dataclass(frozen=True)
class Drain:
    """alternating_users' guard before user's password changes: wait for its sessions to end,
    else refuse with nothing changed (a no-op for single_user and in check mode).  Before a
    fresh rotation's stage, and before a resumed run's set_database: both give user a new
    password in the database."""
    user: str
    settles = False


@dataclass(frozen=True)
class StageNew:
    """A new password for user, made now, as the primary's pending value."""
    user: str
    settles = True


@dataclass(frozen=True)
class Apply:
    """stage_others, set_database (unless the database has it), test_login, rollback on a
    failure, then promote everywhere."""
    user: str
    fresh: bool
    set_database: bool
    settles = False


@dataclass(frozen=True)
class RefreshConsumers:
    """After promote (or with nothing to promote): refresh, then confirm, these consumers."""
    consumers: tuple
    settles = True


@dataclass(frozen=True)
class Decision:
    outcome: str             # rotated | resumed | converged | not_due
    steps: tuple
    login_user: str | None   # who the stores hold once the steps ran
    trusted_user: str | None = None  # who they hold before (reported if a step fails early)


def is_due(min_age: str | None, force: bool, changed_at: str | None,
           now: dt.datetime) -> bool:
    if force or not min_age or not changed_at:
        return True
    try:
        threshold = parse_since(min_age, now)
        changed = dt.datetime.fromisoformat(changed_at.replace("Z", "+00:00"))
    except ValueError as err:
        raise RotationError(f"min_age: {err}") from None
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=dt.timezone.utc)
    return changed <= threshold


def _target(state: RotationState) -> str:
    if state.user_error or not state.target_user:
        raise RotationError(state.user_error or "no user to rotate")
    return state.target_user


def _clone(state: RotationState, user: str) -> tuple:
    return () if state.clone_ready is None else (EnsureClone(user, state.clone_ready),)


def _refresh(state: RotationState) -> tuple:
    return (RefreshConsumers(tuple(state.consumers)),) if state.consumers else ()


def decide(state: RotationState, plan: RotationPlan) -> Decision:
    """The steps of this run, from the state alone."""
    if plan.converge_only:
        return _converge_only(state)
    steps: list = []
    pending = state.pending
    if pending is not None and state.pending_is_current:
        steps.append(DiscardPromotedPending())
        pending = None
    if pending is not None:
        user = _target(state)
        if pending.username and pending.username != user:
            raise RotationError(
                f"the pending value in {state.primary!r} is for {pending.username!r}, not "
                f"{user!r}; discard it (secret_value state=absent stage=pending) or rotate "
                "with the strategy that made it")
        # a password an interrupted run set is not set twice (check mode cannot tell)
        set_database = plan.check_mode or not state.database_has_pending
        # the drain guard holds for a resumed run too, as long as it is the one that sets it
        drain = (Drain(user),) if set_database else ()
        return Decision("resumed", (Resume(), *_clone(state, user), *drain,
                                    Apply(user, False, set_database), *_refresh(state)), user)
    steps += [DiscardLeftover(name, handle) for name, handle in state.leftovers]
    trusted_user = None
    if state.trusted_logs_in and state.trusted is not None:
        trusted_user = state.trusted.username or state.role
        # forced (a leaked password, a stale copy just found): a new password everywhere,
        # the differing stores included, rather than only bringing them in line
        if state.differ and not plan.force:
            return Decision("converged", (*steps, Converge(tuple(state.differ)),
                                          *_refresh(state)), trusted_user, trusted_user)
        if state.consumers_left:
            # promoted by an earlier run whose consumers were not all confirmed: finish
            # those, whatever min_age or force say (a new password would strand them again)
            return Decision("consumers_refreshed",
                            (*steps, RefreshConsumers(tuple(state.consumers_left))),
                            trusted_user, trusted_user)
        if not is_due(plan.min_age, plan.force, state.changed_at, plan.now):
            return Decision("not_due", (*steps, NotDue(plan.min_age)), trusted_user,
                            trusted_user)
    user = _target(state)
    # a password generated by this run cannot be in the database yet: no check
    return Decision("rotated", (*steps, *_clone(state, user), Drain(user), StageNew(user),
                                Apply(user, True, True), *_refresh(state)), user, trusted_user)


def _converge_only(state: RotationState) -> Decision:
    if not (state.trusted_logs_in and state.trusted is not None):
        raise RotationError(f"the credential in {state.primary!r} does not log in, so the other "
                            "stores are not brought in line with it; nothing was changed")
    user = state.trusted.username or state.role
    # one settling step even when every store agrees: an empty Converge writes nothing.  RDS
    # may just have made a new password: every consumer is refreshed (the engine has no way
    # to tell which ones already read the managed secret)
    return Decision("converged", (Converge(tuple(state.differ)), *_refresh(state)), user, user)


def conflict_refusal(rotators: list[dict], force: bool) -> str | None:
    """Two rotators on one password break it in turn: the refusal, unless forced."""
    if force or not rotators:
        return None
    names = "; ".join(f"{other['store']}: {other['rotator']}" for other in rotators)
    return (f"another rotator already manages this credential ({names}); let one of them "
            "own it, or run with pgauth_force: true; nothing was changed")


# -- a failure before promote ------------------------------------------------------------
@dataclass(frozen=True)
class RollbackFacts:
    database_set: bool             # this run's set_database changed the database
    stores_use_it: bool            # the stores' user is the one whose password changed
    database_has_new: bool | None  # (only read when not database_set) None: cannot tell


# what decide_rollback says: restore from how set_database left it, restore an older run's
# change, nothing to restore, or keep the pending values (the state is unknown)
RESTORE_SET, RESTORE_RESUMED, NOTHING, UNKNOWN = "restore_set", "restore_resumed", \
    "nothing", "unknown"


def decide_rollback(facts: RollbackFacts) -> str:
    """alternating_users: the new password is the standby's, which no store uses: it stays."""
    if not facts.stores_use_it:
        return NOTHING
    if facts.database_set:
        return RESTORE_SET
    if facts.database_has_new is None:
        return UNKNOWN
    return RESTORE_RESUMED if facts.database_has_new else NOTHING


def restore_source(user: str, stored_verifier: str | None, old_password: str | None,
                   old_user: str | None) -> str:
    """Where the old password comes from: the stored verifier when pg_authid was readable,
    else the old plaintext from a store (the same user's), else nowhere."""
    if stored_verifier is not None:
        return "verifier"
    if old_password and old_user == user:
        return "store"
    return "unknown"
