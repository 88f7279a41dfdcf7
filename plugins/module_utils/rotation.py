# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password rotation as a state machine keyed on what the stores and the database hold.

single_user: new password as pending in the primary store, pending in the other stores that
have a pending stage, ALTER ROLE with a SCRAM verifier, a test login, then promote
everywhere.  alternating_users: the same, but the new password goes to the user that is not
in the current secret (ROLE or ROLE_clone), so the active user's password never changes.

Whatever was interrupted, the next run reads the state and finishes or rolls back:
- a pending value in the primary store is resumed, never replaced by a second new password;
- stores that disagree with a primary whose credential logs in are brought in line;
- a failure before promote restores the old password in the database and discards the
  pending values, leaving the stores as they were.
Runs for one role are serialized by a PostgreSQL advisory lock held for the whole run.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError
from ansible_collections.credops.pgauth.plugins.module_utils.conflicts import other_rotators
from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
    generate_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.logscan import parse_since
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    login_kwargs,
    psycopg2,
    try_login,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    Plan,
    apply,
    check_can_alter,
    check_password_current,
    check_role_name,
    fetch_role,
    is_member,
    normalize_valid_until,
    plan_present,
)
from ansible_collections.credops.pgauth.plugins.module_utils.promotion import (
    Promotion,
    read_ahead,
    same_secret,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    StoreValueError,
    WritePlan,
)

if psycopg2 is not None:
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password

LOCK_NAMESPACE = "credops.pgauth.rotate:"
CLONE_SUFFIX = "_clone"
# steps that only look: they do not make a run "changed"
CHECK_STEPS = frozenset({"test_login", "token_login"})
# Test hook for the fault-injection harness: PGAUTH_FAILPOINT=<step> kills the process with
# SIGKILL right after that step, as an operator's Ctrl-C or an OOM kill would; with
# PGAUTH_FAILPOINT_ACTION=stop it stops itself (SIGSTOP) there instead, so the harness can
# break a server at that exact moment and then let the run go on (SIGCONT).
FAILPOINT_ENV = "PGAUTH_FAILPOINT"
FAILPOINT_ACTION_ENV = "PGAUTH_FAILPOINT_ACTION"


class RotationError(Exception):
    """A rotation could not go on; the message names the step, store or role at fault."""


# what a step can fail with: all of them name the store, role or API at fault
STEP_ERRORS = (PgError, RotationError, StoreError, AwsError)


def clone_name(role: str) -> str:
    """The second login of alternating_users; it must fit PostgreSQL's 63 bytes."""
    name = role + CLONE_SUFFIX
    if len(name.encode("utf-8")) > 63:
        raise RotationError(f"alternating_users needs a second role {name!r}, longer than the "
                            "63 bytes PostgreSQL allows; shorten the role name")
    return name


@dataclass
class Step:
    name: str
    stores: list = field(default_factory=list)
    status: str = "done"      # done | planned | skipped | failed
    seconds: float = 0.0
    detail: str | None = None

    def as_dict(self) -> dict:
        return {"step": self.name, "stores": self.stores, "status": self.status,
                "seconds": round(self.seconds, 3), "detail": self.detail}


@dataclass
class Outcome:
    """What a run did; every field is safe to print (no secret)."""

    strategy: str
    role: str
    outcome: str = "unknown"  # rotated | resumed | converged | not_due | planned | rolled_back
    login_user: str | None = None  # the user the stores hold after the run
    steps: list = field(default_factory=list)
    versions_before: dict = field(default_factory=dict)
    versions_after: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    promoted: bool = False

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "role": self.role, "outcome": self.outcome,
                "login_user": self.login_user, "promoted": self.promoted,
                "steps": [step.as_dict() for step in self.steps],
                "versions_before": self.versions_before, "versions_after": self.versions_after,
                "notes": self.notes}


def store_versions(stores: list[Store], missing: list | None = None) -> dict:
    """Each store's current version id, for the report; the names of stores that hold no
    secret at all go to missing."""
    found = {}
    for store in stores:
        try:
            _cred, stored = store.read("current")
            found[store.name] = stored.version if stored else None
            if stored is None and missing is not None and not store.backend.exists():
                missing.append(store)
        except StoreError as err:
            found[store.name] = f"unreadable: {err}"
    return found


# the advisory lock's key: a 64-bit hash of LOCK_NAMESPACE + role
LOCK_KEY_SQL = "hashtextextended(%s, 0)"


def take_lock(cur, role: str) -> None:
    """Fail fast when another run holds the role's advisory lock (session-level: it lasts
    until this process's connection closes, even if the process is killed)."""
    key = LOCK_NAMESPACE + role
    cur.execute(f"SELECT pg_try_advisory_lock({LOCK_KEY_SQL})", (key,))
    if cur.fetchone()[0]:
        return
    cur.execute(
        "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start::text "
        "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        f"WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) "
        f"| l.objid::bigint) = {LOCK_KEY_SQL}", (key,))
    holder = cur.fetchone()
    who = (f" (held by backend pid {holder[0]}, {holder[1] or 'no application name'}, "
           f"from {holder[2] or 'local'}, since {holder[3]})" if holder else "")
    raise RotationError(f"another rotation of role {role!r} is in progress{who}; "
                        "this run changed nothing")


def failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        stop = os.environ.get(FAILPOINT_ACTION_ENV) == "stop"
        os.kill(os.getpid(), signal.SIGSTOP if stop else signal.SIGKILL)


class Rotation:
    """One run.  params: the module's parameters; hide(secret) registers no_log values."""

    def __init__(self, params: dict, cur, hide, check_mode: bool):
        self.params, self.cur, self.hide, self.check_mode = params, cur, hide, check_mode
        self.role = params["role"]
        check_role_name(self.role)
        specs = params.get("stores") or []
        if not specs:
            raise RotationError("give at least one store (the first one is the primary)")
        self.stores = [Store(spec, params) for spec in specs]
        self.primary = self.stores[0]
        self.by_name = {store.name: store for store in self.stores}
        if len(self.by_name) != len(self.stores):
            raise RotationError("store names must be unique (they label reports)")
        if params.get("rotate_via") == "rds_api" and params["strategy"] != "single_user":
            raise RotationError("rotate_via rds_api changes the master user's password: use it "
                                "with strategy single_user")
        source = params.get("source_store")
        if source and source not in self.by_name:
            raise RotationError(f"source_store {source!r} is not one of the stores: "
                                f"{', '.join(self.by_name)}")
        self.source = self.by_name.get(source) if source else None
        if not self.primary.backend.supports_pending:
            raise RotationError(f"the primary store {self.primary.name!r} has no pending stage "
                                "(a file): put a Secrets Manager or Vault store first")
        if params["strategy"] == "alternating_users":
            clone_name(self.role)  # fails early when ROLE_clone would not fit 63 bytes
            bare = [store.name for store in self.stores if store.value_format == "password"]
            if bare:
                raise RotationError("alternating_users switches the user too, and these stores "
                                    f"hold a bare password with no user: {', '.join(bare)}")
        self.restore: dict = {}  # how to undo set_database, once it ran
        self.fresh = False       # the new password was generated by this run
        self.out = Outcome(params["strategy"], self.role)

    # -- bookkeeping ---------------------------------------------------------------------
    def run_step(self, name: str, stores: list, work, *args):
        """Run one step, or only plan it in check mode; record it; honour a failpoint."""
        step = Step(name, [store.name for store in stores])
        self.out.steps.append(step)
        if self.check_mode:
            step.status = "planned"
            return None
        started = time.monotonic()
        try:
            return work(*args)
        except Exception:
            step.status = "failed"
            raise
        finally:
            step.seconds = time.monotonic() - started
            if step.status != "failed":
                failpoint(name)

    def versions(self) -> dict:
        return store_versions(self.stores)

    def read(self, store: Store, stage: str) -> Credential | None:
        cred, _stored = store.read(stage)
        if cred is not None and cred.password:
            self.hide(cred.password)
        return cred

    def read_or_none(self, store: Store, stage: str) -> Credential | None:
        """A store whose value cannot be read as a credential (a broken URL) counts as
        holding nothing: the rotation replaces its value."""
        try:
            return self.read(store, stage)
        except StoreValueError as err:
            note = f"{store.name}: {stage} value unreadable, replaced ({err})"
            if note not in self.out.notes:
                self.out.notes.append(note)
            return None

    # -- the database --------------------------------------------------------------------
    def login_params(self, cred: Credential) -> dict:
        """How the test login connects: the target's endpoint (never a store's), as the
        credential's user; login_kwargs takes the credential's password and nothing else."""
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

    def set_password(self, user: str, password: str) -> str | None:
        """ALTER ROLE with a client-made verifier; returns what restores the old password."""
        if self.params.get("rotate_via") == "rds_api":
            from ansible_collections.credops.pgauth.plugins.module_utils.rotation_rds import (
                set_master_password,
            )
            # RDS applies it even if the wait below fails: undo is needed from here on
            set_master_password(self.params, user, password, self.login_params,
                                on_modified=lambda: self.restore.update(done=True, stored=None))
            return None
        state = fetch_role(self.cur, user)
        if not state.exists:
            raise RotationError(f"role {user!r} does not exist; create it first "
                                "(credops.pgauth.pg_role)")
        restore = state.stored_password if state.authid_readable else None
        plan = plan_present(self.cur, state, {
            "password": password, "valid_until": self.params.get("valid_until"),
            **self.login_params(Credential(username=user, password=password))})
        if plan.statements:
            apply(self.cur, plan, f"role {user!r}")
            self.restore.update(done=True, stored=restore)
        return restore

    def restore_password(self, user: str, stored: str | None, old: Credential | None) -> str:
        """Put the old password back: its stored hash when pg_authid was readable, else the
        old plaintext from a store (as a fresh verifier).  Returns how, for the report."""
        if self.params.get("rotate_via") == "rds_api":
            if old is None or not old.password or self.user_of(old) != user:
                raise RotationError("the previous master password is unknown, so it cannot be "
                                    "put back")
            from ansible_collections.credops.pgauth.plugins.module_utils.rotation_rds import (
                set_master_password,
            )
            set_master_password(self.params, user, old.password, self.login_params)
            return "the previous password, through the RDS API"
        if stored is not None:
            secret = sql.Literal(stored)
            how = "the previous stored verifier"
        elif old is not None and old.password and self.user_of(old) == user:
            secret = sql.Literal(encrypt_password(old.password, user, self.cur.connection,
                                                  "scram-sha-256"))
            how = "the previous password from the store"
        else:
            raise RotationError("the previous password is unknown (pg_authid is not readable "
                                "and no store holds it), so it cannot be put back")
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), secret)
        restore = Plan(statements=[(statement, f"ALTER ROLE {user} PASSWORD '********'")])
        try:
            apply(self.cur, restore, f"role {user!r}")
        except PgError as err:
            raise PgError(f"restoring the old password failed: {err}") from None
        return how

    # -- the stores ------------------------------------------------------------------------
    def pending_capable(self) -> list[Store]:
        return [store for store in self.stores[1:] if store.backend.supports_pending]

    def plan(self, store: Store, cred: Credential, stage: str = "current") -> WritePlan:
        try:
            return store.plan_write(self.fields(cred), stage)
        except StoreError:
            # an unreadable value is replaced by the whole credential (host, port, dbname too)
            return store.plan_write(self.fields(cred, whole=True), stage,
                                    replace_unreadable=True)

    def write(self, store: Store, cred: Credential, stage: str) -> None:
        plan = self.plan(store, cred, stage)
        if plan.changed:
            store.write(plan, stage)

    @staticmethod
    def fields(cred: Credential, whole: bool = False) -> dict:
        fields = {"username": cred.username, "password": cred.password, "auth": cred.auth}
        if whole:
            fields.update(host=cred.host, port=cred.port, dbname=cred.dbname,
                          sslmode=cred.sslmode)
        return fields

    def promote_store(self, store: Store, cred: Credential) -> None:
        """pending -> current where the store has a pending stage holding cred, else write
        cred as current (files, or a pending that is missing or stale)."""
        if store.backend.supports_pending:
            pending = self.read_or_none(store, "pending")
            if same_secret(pending, cred):
                store.promote()
                return
            if store.pending() is not None:
                store.discard_pending()
        if not same_secret(self.read_or_none(store, "current"), cred):
            self.write(store, cred, "current")

    def promote_everywhere(self, cred: Credential, ahead: dict | None = None) -> None:
        """Primary first (it is what a resumed run trusts), then the others in parallel:
        the window in which stores disagree is as short as the slowest store.  With ahead
        (promotes read before the database changed) each store only writes; the pending
        values are dropped after every store has switched."""
        ahead = ahead or {}
        name, primary = "promote:" + self.primary.name, ahead.get(self.primary.name)
        if primary is not None:
            self.run_step(name, [self.primary], primary.switch)
        else:
            self.run_step(name, [self.primary], self.promote_store, self.primary, cred)
        others = self.stores[1:]
        if self.check_mode:
            for store in others:
                self.run_step("promote:" + store.name, [store], self.promote_store, store, cred)
            return
        errors = []
        # stores that share a file switch one after the other, the rest in parallel
        groups: dict = {}
        for store in others:
            groups.setdefault(store.backend.shared_resource() or store.name, []).append(store)
        with ThreadPoolExecutor(max_workers=max(len(groups), 1)) as pool:
            done: dict = {}
            for future in [pool.submit(self._promote_group, group, cred, ahead)
                           for group in groups.values()]:
                done.update(future.result())
            for store in others:
                step = Step("promote:" + store.name, [store.name])
                seconds, err = done[store.name]
                if err is None:
                    step.seconds = seconds
                else:
                    step.status, step.detail = "failed", str(err)
                    errors.append(str(err) if not isinstance(err, LookupError) else
                                  f"store {store.name!r}: the secret disappeared")
                self.out.steps.append(step)
            failpoint("switched")
            # every store holds the new credential now: a pending value left behind is
            # tidied by the next run, so failing to drop one is a note, not a failure
            tidies = [pool.submit(promotion.tidy) for promotion in ahead.values()]
            for future in tidies:
                try:
                    future.result()
                except (*STEP_ERRORS, LookupError) as err:
                    self.out.notes.append(f"the pending value was not dropped ({err}); the "
                                          "next run drops it")
        if errors:
            raise RotationError("promote failed on some stores; the database and the primary "
                                "store hold the new credential, run again to finish: "
                                + "; ".join(errors))
        for store in others:
            failpoint("promote:" + store.name)

    def read_ahead(self, cred: Credential) -> dict[str, Promotion]:
        """Each store's promote as writes only, where the store allows it (see
        promotion.py); read before the database changes."""
        found = {}
        for store in self.stores:
            promotion = read_ahead(store, cred, self.plan)
            if promotion is not None:
                found[store.name] = promotion
        return found

    def _promote_group(self, group: list[Store], cred: Credential, ahead: dict) -> dict:
        """store name -> (seconds, error or None), the stores one after the other."""
        done = {}
        for store in group:
            try:
                done[store.name] = (self._timed_promote(store, cred, ahead.get(store.name)),
                                    None)
            except (*STEP_ERRORS, LookupError) as err:
                done[store.name] = (0.0, err)
        return done

    def _timed_promote(self, store: Store, cred: Credential,
                       promotion: Promotion | None) -> float:
        started = time.monotonic()
        if promotion is not None:
            promotion.switch()
        else:
            self.promote_store(store, cred)
        return time.monotonic() - started

    def discard_pendings(self) -> list[str]:
        errors = []
        for store in [self.primary, *self.pending_capable()]:
            try:
                if store.pending() is not None:
                    store.discard_pending()
            except StoreError as err:
                errors.append(str(err))
        return errors

    # -- the state machine -------------------------------------------------------------------
    def due(self, current_version_time: str | None) -> bool:
        if self.params.get("force") or not self.params.get("min_age"):
            return True
        if not current_version_time:
            return True
        now = dt.datetime.now(dt.timezone.utc)
        try:
            threshold = parse_since(self.params["min_age"], now)
            changed = dt.datetime.fromisoformat(current_version_time.replace("Z", "+00:00"))
        except ValueError as err:
            raise RotationError(f"min_age: {err}") from None
        if changed.tzinfo is None:
            changed = changed.replace(tzinfo=dt.timezone.utc)
        return changed <= threshold

    def users(self, current: Credential | None) -> tuple[str, str]:
        """(user the new password is for, user the stores hold now)."""
        active = (current.username if current and current.username else self.role)
        if self.params["strategy"] != "alternating_users":
            return self.role, active
        clone = clone_name(self.role)
        if active not in (self.role, clone):
            raise RotationError(f"the primary store's username is {active!r}, neither "
                                f"{self.role!r} nor {clone!r}")
        return (clone if active == self.role else self.role), active

    def new_credential(self, current: Credential | None, user: str) -> Credential:
        try:
            password = generate_password(**self.params["generate"])
        except CredentialError as err:
            raise RotationError(f"generate: {err}") from None
        self.hide(password)
        params = self.params
        base = current or Credential(host=params.get("login_host"), port=params.get("login_port"),
                                     dbname=params.get("dbname"))
        # auth is written only where the store already says it (a store that was on IAM)
        return base.merged({"username": user, "password": password,
                            "auth": "password" if base.auth else None})

    def stores_differing_from(self, cred: Credential) -> list[Store]:
        """The stores whose current credential differs from cred (user or password)."""
        return [store for store in self.stores
                if not same_secret(self.read_or_none(store, "current"), cred)]

    def run(self) -> Outcome:
        out = self.out
        if not fetch_role(self.cur, self.role).exists:
            raise RotationError(f"role {self.role!r} does not exist; create it first "
                                "(credops.pgauth.pg_role); nothing was changed")
        if is_member(self.cur, self.role, "rds_iam"):
            raise RotationError(f"role {self.role!r} is in rds_iam, so RDS refuses its password "
                                "logins: use strategy iam, or revoke rds_iam first "
                                "(credops.pgauth.rds_iam_grant state=absent)")
        # what would fail at set_database fails here, before a secret is staged (rds_api
        # is for an admin that may not ALTER the master role: RDS changes it)
        if self.params.get("rotate_via") != "rds_api":
            check_can_alter(self.cur, self.role)
        normalize_valid_until(self.cur, self.params.get("valid_until"))
        missing: list[Store] = []
        out.versions_before = store_versions(self.stores, missing)
        if missing:
            # a rotation changes the copies that exist: a store with no secret is most
            # likely a wrong path, and writing there would leave the real copy stale
            raise RotationError(
                "; ".join(str(store.backend.error("no secret there")) for store in missing)
                + " - fix the store's secret_id or path, or create the secret first "
                "(credops.pgauth.secret_value); nothing was changed")
        pending = self.read(self.primary, "pending")
        current = self.read_or_none(self.primary, "current")
        if pending is not None and same_secret(pending, current):
            # a promote interrupted after the current value was written: finish it
            self.run_step("discard_promoted_pending", [self.primary],
                          self.primary.discard_pending)
            pending = None
        if pending is None:
            # no rotation in progress: a pending value (or an AWSPENDING label on the
            # current version) is a leftover of a tidy that failed or a run killed before it
            for store in [self.primary, *self.pending_capable()]:
                leftover = store.backend.leftover_pending()
                if leftover is not None:
                    self.run_step("discard_pending:" + store.name, [store],
                                  store.backend.discard_pending, leftover)
            # what the stores should hold: the source store's credential, else the primary's
            trusted = self.read_or_none(self.source, "current") if self.source else current
            if self.logs_in(trusted):
                out.login_user = trusted.username or self.role
                differ = self.stores_differing_from(trusted)
                if differ:
                    self.converge(trusted, differ)
                    out.outcome = "converged"
                    out.versions_after = self.versions() if not self.check_mode else {}
                    return out
                _cred, stored = self.primary.read("current")
                if not self.due(stored.changed_at if stored else None):
                    out.outcome = "not_due"
                    out.steps.append(Step("check_age", [self.primary.name], "skipped",
                                          detail="the current secret is younger than "
                                                 f"{self.params['min_age']}"))
                    return out
            target_user, _active = self.users(current)
            self.prepare_user(target_user)  # before anything is staged: it can fail
            new = self.new_credential(current, target_user)
            self.run_step("stage:" + self.primary.name, [self.primary],
                          self.write, self.primary, new, "pending")
            out.outcome = "rotated"
            self.fresh = True
        else:
            target_user, _active = self.users(current)
            if pending.username and pending.username != target_user:
                raise RotationError(
                    f"the pending value in {self.primary.name!r} is for {pending.username!r}, "
                    f"not {target_user!r}; discard it (secret_value state=absent "
                    "stage=pending) or rotate with the strategy that made it")
            new = pending.merged({"username": target_user})
            out.outcome = "resumed"
            self.prepare_user(target_user)
        out.login_user = new.username
        self.apply_and_promote(new, current)
        out.versions_after = self.versions() if not self.check_mode else {}
        return out

    def prepare_user(self, user: str) -> None:
        """alternating_users: the clone exists, logs in, and acts as the role."""
        if self.params["strategy"] != "alternating_users" or user == self.role:
            return
        from ansible_collections.credops.pgauth.plugins.module_utils.clone import (
            clone_ready,
            ensure_clone,
        )
        set_role = self.params.get("clone_set_role", True)
        if clone_ready(self.cur, self.role, user, set_role):
            self.out.steps.append(Step("ensure_clone", [], "skipped", detail=f"{user} is ready"))
            return
        self.run_step("ensure_clone", [], ensure_clone, self.cur, self.role, user, set_role)

    def apply_and_promote(self, new: Credential, current: Credential | None) -> None:
        ahead: dict = {}
        try:
            stores = self.pending_capable()
            if stores:
                self.run_step("stage_others", stores, self._stage_others, stores, new)
            if not self.check_mode:
                ahead = self.read_ahead(new)
            # a password generated by this run cannot be in the database yet: no check (on RDS
            # the check is a login, and a failed one in the server log)
            if self.check_mode or self.fresh or not self.database_state(new):
                self.run_step("set_database", [], self.set_password, new.username,
                              new.password)
            else:
                self.out.steps.append(Step("set_database", [], "skipped",
                                           detail="the database already has it"))
            self.run_step("test_login", [], self._test_login, new)
        except STEP_ERRORS as err:
            if self.check_mode:
                raise
            self.roll_back(new, current, err)
        self.promote_everywhere(new, ahead)
        self.out.promoted = not self.check_mode

    def _stage_others(self, stores: list[Store], new: Credential) -> None:
        for store in stores:
            # a secret with no value (a deleted Vault version) is written at promote
            if self.read_or_none(store, "current") is not None:
                self.write(store, new, "pending")

    def _test_login(self, new: Credential) -> None:
        result = try_login(login_kwargs(self.login_params(new), new.username, new.password))
        if not result.authenticated:
            raise RotationError(f"test login as {new.username!r} with the new password failed "
                                f"({result.category}): {result.message}")

    def roll_back(self, new: Credential, current: Credential | None, err: Exception):
        """Before promote: the database gets the old password back, then the pending values
        go.  When the database cannot be restored, or its state is unknown, the pending values
        stay, so the new password is not lost and the next run can finish the rotation."""
        old = self.read_or_none(self.source, "current") if self.source else current
        # alternating_users: the new password is the standby's; the stores do not use it
        stores_use_it = old is None or self.user_of(old) == new.username
        notes = []
        try:
            if self.restore.get("done"):
                if stores_use_it:
                    notes.append("database: " + self.restore_password(
                        new.username, self.restore.get("stored"), old))
            elif stores_use_it:
                state = self.database_state(new)
                if state is None:
                    raise RotationError("cannot tell whether the database holds the new "
                                        "password")
                if state:  # a resumed run: an interrupted run already set the new password
                    notes.append("database: " + self.restore_password(new.username, None, old))
        except (*STEP_ERRORS, psycopg2.Error) as restore_err:
            raise RotationError(f"{err}; the old password was not put back ({restore_err}); "
                                "the pending values are kept: run again to finish the "
                                "rotation") from None
        leftover = self.discard_pendings()
        notes.append("pending values discarded" if not leftover
                     else "could not discard: " + "; ".join(leftover))
        self.out.outcome = "rolled_back"
        raise RotationError(f"{err}; rolled back ({', '.join(notes)})") from None

    def converge(self, trusted: Credential, differ: list[Store]) -> None:
        """No rotation in progress and a credential that logs in: bring the stores that
        differ in line with it (a run killed during promote, a store missed by hand)."""
        for store in differ:
            self.run_step("converge:" + store.name, [store], self.promote_store, store, trusted)
        self.out.promoted = not self.check_mode


def refuse_other_rotators(params: dict) -> None:
    """Two rotators on one password break it in turn: refuse unless forced."""
    if params.get("force"):
        return
    rotators, _errors = other_rotators(params.get("stores") or [], params, params["role"])
    if rotators:
        names = "; ".join(f"{other['store']}: {other['rotator']}" for other in rotators)
        raise RotationError(f"another rotator already manages this credential ({names}); "
                            "let one of them own it, or run with pgauth_force: true; nothing "
                            "was changed")


def run_rotation(params: dict, cur, hide, check_mode: bool, lock_cur=None) -> dict:
    """The module's work: lock (on lock_cur, default cur), run the strategy, describe what
    happened.  Errors come out as RotationError with the steps so far attached as
    ``outcome``."""
    if not check_mode:
        take_lock(lock_cur or cur, params["role"])
        failpoint("lock")
    refuse_other_rotators(params)
    if params["strategy"] == "iam":
        from ansible_collections.credops.pgauth.plugins.module_utils.rotation_iam import (
            IamConversion,
        )
        engine = IamConversion(params, cur, hide, check_mode)
    else:
        engine = Rotation(params, cur, hide, check_mode)
    try:
        outcome = engine.run()
    except STEP_ERRORS as err:
        failure = RotationError(str(err))
        failure.outcome = engine.out.as_dict()  # type: ignore[attr-defined]
        raise failure from None
    result = outcome.as_dict()
    acted = [step for step in outcome.steps
             if step.status in ("done", "planned") and step.name not in CHECK_STEPS]
    result["changed"] = bool(acted)
    result["check_mode"] = check_mode
    return result
