# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password rotation as a state machine keyed on what the stores and the database hold:
observe() reads them once (rotation_state.py), decide() says what to do from that alone
(rotation_plan.py, pure), and Rotation runs the steps through the executor
(rotation_exec.py), rolling back a failure before promote.

single_user: new password as pending in the primary store, pending in the other stores that
have a pending stage, ALTER ROLE with a SCRAM verifier, a test login, then promote
everywhere.  alternating_users: the same, but the new password goes to the user that is not
in the current secret (ROLE or ROLE_clone), so the active user's password never changes.
Runs for one role are serialized by a PostgreSQL advisory lock held for the whole run.
"""
from __future__ import annotations

from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.conflicts import other_rotators
from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
    generate_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg import psycopg2
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import check_role_name
from ansible_collections.credops.pgauth.plugins.module_utils.plaintext_move import move_plaintext
from ansible_collections.credops.pgauth.plugins.module_utils.promotion import same_secret
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_consumers import (
    RotationConsumers,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
    STEP_ERRORS,
    Executor,
    FailpointHook,
    Outcome,
    RotationError,
    RotationFailed,
    result_of,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_iam import IamConversion
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import (
    NOTHING,
    RESTORE_SET,
    UNKNOWN,
    Apply,
    Converge,
    Decision,
    DiscardLeftover,
    DiscardPromotedPending,
    Drain,
    EnsureClone,
    NotDue,
    RefreshConsumers,
    Resume,
    RollbackFacts,
    RotationPlan,
    RotationState,
    StageNew,
    conflict_refusal,
    decide,
    decide_rollback,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_rds import (
    MANAGED_STORE_NAME,
    rotate_in_rds_if_due,
    with_managed_secret,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_setters import (
    password_setter,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_state import (
    TargetDb,
    observe,
    preflight,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_stores import (
    RotationStores,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_strategies import (
    PASSWORD_STRATEGIES,
    clone_name,
    drain_guard,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

# re-exported: callers and tests name them from here
__all__ = ["Rotation", "RotationError", "RotationFailed", "clone_name", "run_rotation",
           "same_secret", "take_lock"]

LOCK_NAMESPACE = "credops.pgauth.rotate:"
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


class Rotation:
    """One password rotation.  params: the module's parameters; hide(secret) registers
    no_log values; failpoint: the test harness's hook, called at every step boundary."""

    def __init__(self, params: dict, cur, hide, check_mode: bool,
                 failpoint: FailpointHook | None = None):
        self.params, self.cur, self.hide, self.check_mode = params, cur, hide, check_mode
        self.role = params["role"]
        check_role_name(self.role)
        specs = params.get("stores") or []
        if not specs:
            raise RotationError("give at least one store (the first one is the primary)")
        stores = [Store(spec, params) for spec in specs]
        self.store_list = stores
        by_name = {store.name: store for store in stores}
        if len(by_name) != len(stores):
            raise RotationError("store names must be unique (they label reports)")
        self.strategy = PASSWORD_STRATEGIES[params["strategy"]](params)
        via = params.get("rotate_via") or "sql"
        if via != "sql" and not self.strategy.allows_rds_api:
            raise RotationError(f"rotate_via {via} changes the master user's password: use it "
                                "with strategy single_user")
        source = params.get("source_store")
        if source and source not in by_name:
            raise RotationError(f"source_store {source!r} is not one of the stores: "
                                f"{', '.join(by_name)}")
        if source and (by_name[source].write_only or by_name[source].holds_verifier):
            raise RotationError(f"source_store {source!r} is write-only or holds a verifier: "
                                "it has no password to read")
        read_only = [store.name for store in stores if not store.writable]
        if read_only:
            # found out at promote, the database would already have the new password
            raise RotationError(f"these stores cannot be written (no write command): "
                                f"{', '.join(read_only)}; nothing was changed")
        if not stores[0].supports_pending:
            raise RotationError(f"the primary store {stores[0].name!r} has no pending stage "
                                "(a file): put a Secrets Manager or Vault store first")
        self.strategy.validate(stores)
        self.out = Outcome(params["strategy"], self.role)
        self.execute = Executor(self.out, check_mode, failpoint)
        self.stores = RotationStores(stores, by_name.get(source) if source else None,
                                     self.execute, hide, cur)
        self.db = TargetDb(params, cur)
        self.setter = password_setter(params, cur, self.db.login_params)
        self.consumers = RotationConsumers(params, cur, self.execute, self.out, hide)
        self.new: Credential | None = None  # the credential being rotated in
        self.promoted: Credential | None = None  # what the stores hold after promote

    def run(self) -> Outcome:
        out = self.out
        out.versions_before = preflight(self.db, self.stores, self.setter)
        managed = self.params.get("rotate_via") == "rds_managed"
        rotated_by_rds = managed and self._rotate_in_rds()
        state = observe(self.db, self.stores, self.strategy, self.check_mode, self.consumers)
        decision = decide(state, RotationPlan(self.params.get("min_age"),
                                              bool(self.params.get("force")), self.check_mode,
                                              converge_only=managed))
        out.login_user = decision.trusted_user
        for step in decision.steps:
            self.RUNNERS[type(step)](self, step, state)
            if step.settles:
                out.outcome = decision.outcome
        if managed:
            wrote = any(isinstance(step, Converge) and step.stores for step in decision.steps)
            out.outcome = "rotated" if rotated_by_rds else ("converged" if wrote else "not_due")
        self.finish(decision)
        return out

    def _rotate_in_rds(self) -> bool:
        """rotate_via rds_managed: RDS makes the new password, when one is due."""
        # the managed secret (with_managed_secret put it first and made it the source)
        return rotate_in_rds_if_due(self.execute, self.stores.by_name([MANAGED_STORE_NAME])[0],
                                    self.params, self.role, self.db.login_params, self.hide)

    def finish(self, decision: Decision) -> None:
        if decision.outcome != "not_due":
            self.out.versions_after = self.stores.versions() if not self.check_mode else {}

    # -- one runner per step type of rotation_plan -------------------------------------------
    def _discard_promoted(self, _step: DiscardPromotedPending, _state: RotationState) -> None:
        primary = self.stores.primary
        self.execute.run("discard_promoted_pending", [primary], primary.discard_pending)

    def _discard_leftover(self, step: DiscardLeftover, _state: RotationState) -> None:
        store = self.stores.by_name([step.store])[0]
        self.execute.run("discard_pending:" + store.name, [store], store.discard_stored,
                         step.handle)

    def _converge(self, step: Converge, state: RotationState) -> None:
        """No rotation in progress and a credential that logs in: bring the stores that
        differ in line with it (a run killed during promote, a store missed by hand)."""
        for store in self.stores.by_name(step.stores):
            self.execute.run("converge:" + store.name, [store], self.stores.promote_store,
                             store, state.trusted)
        # after RDS rotated a managed password the consumers must restart even when every
        # store already reads that secret
        rotated = any(step.name == "rotate_in_rds" and step.status == "done"
                      for step in self.out.steps)
        self.out.promoted = (rotated or bool(step.stores)) and not self.check_mode
        self.promoted = state.trusted

    def _not_due(self, step: NotDue, _state: RotationState) -> None:
        self.execute.skip("check_age", [self.stores.primary],
                          f"the current secret is younger than {step.min_age}")

    def _resume(self, _step: Resume, _state: RotationState) -> None:
        return None

    def _ensure_clone(self, step: EnsureClone, _state: RotationState) -> None:
        """alternating_users: the clone exists, logs in, and acts as the role."""
        if step.ready:
            self.execute.skip("ensure_clone", [], f"{step.user} is ready")
            return
        self.execute.run("ensure_clone", [], self.strategy.ensure_clone, self.cur, step.user)

    def _drain(self, step: Drain, _state: RotationState) -> None:
        drain_guard(self.strategy, self.execute, self.cur, step.user, self.params)

    def _stage_new(self, step: StageNew, state: RotationState) -> None:
        self.new = new_credential(self.params, state.current, step.user, self.hide)
        primary = self.stores.primary
        self.execute.run("stage:" + primary.name, [primary], self.stores.write, primary,
                         self.new, "pending")

    def _apply(self, step: Apply, state: RotationState) -> None:
        new = self.new if step.fresh else state.pending.merged({"username": step.user})
        self.out.login_user = new.username
        ahead: dict = {}
        try:
            others = self.stores.pending_capable()
            if others:
                self.execute.run("stage_others", others, self.stores.stage_others, others, new)
            if not self.check_mode:
                ahead = self.stores.read_ahead(new)
            if step.set_database:
                self.execute.run("set_database", [], self.setter.set, new.username,
                                 new.password)
            else:
                self.execute.skip("set_database", [], "the database already has it")
            self.execute.run("test_login", [], self.db.test_login, new)
        except STEP_ERRORS as err:
            if self.check_mode:
                raise
            self.roll_back(new, state.current, err)
        self.consumers.prepare(new)  # a pooler takes the database's verifier ahead of promote
        self.stores.promote_everywhere(new, ahead)
        self.out.promoted = not self.check_mode
        self.promoted = new

    def _refresh_consumers(self, step: RefreshConsumers, state: RotationState) -> None:
        """After promote: no rollback from here; a consumer not confirmed fails the run."""
        cred = self.promoted or state.trusted
        user = self.db.user_of(cred) if cred is not None else self.role
        self.consumers.refresh_and_confirm(step.consumers, cred.merged({"username": user})
                                           if cred is not None else None)

    RUNNERS: ClassVar[dict] = {DiscardPromotedPending: _discard_promoted,
                               DiscardLeftover: _discard_leftover,
                               Converge: _converge, NotDue: _not_due, Resume: _resume,
                               EnsureClone: _ensure_clone, Drain: _drain,
                               StageNew: _stage_new,
                               Apply: _apply, RefreshConsumers: _refresh_consumers}

    def roll_back(self, new: Credential, current: Credential | None, err: Exception):
        """Before promote: the database gets the old password back, then the pending values
        go.  When the database cannot be restored, or its state is unknown, the pending values
        stay, so the new password is not lost and the next run can finish the rotation."""
        stores, db, undo = self.stores, self.db, self.setter.undo
        old = stores.read_or_none(stores.source, "current") if stores.source else current
        old_user = db.user_of(old) if old is not None else None
        notes = []
        try:
            # alternating_users: the new password is the standby's; the stores do not use it
            stores_use_it = old is None or old_user == new.username
            unknown = None if undo.database_set or not stores_use_it \
                else db.database_state(new)
            action = decide_rollback(RollbackFacts(undo.database_set, stores_use_it, unknown))
            if action == UNKNOWN:
                raise RotationError("cannot tell whether the database holds the new password")
            if action != NOTHING:
                # a resumed run: an interrupted run set the new password, no verifier kept
                stored = undo.stored if action == RESTORE_SET else None
                notes.append("database: " + self.setter.restore(
                    new.username, stored, old.password if old else None, old_user))
        except (*STEP_ERRORS, psycopg2.Error) as restore_err:
            raise RotationError(f"{err}; the old password was not put back ({restore_err}); "
                                "the pending values are kept: run again to finish the "
                                "rotation") from None
        leftover = stores.discard_pendings()
        notes.append("pending values discarded" if not leftover
                     else "could not discard: " + "; ".join(leftover))
        self.out.outcome = "rolled_back"
        raise RotationError(f"{err}; rolled back ({', '.join(notes)})") from None


def new_credential(params: dict, current: Credential | None, user: str, hide) -> Credential:
    """The credential a fresh rotation stages: the current one with a generated password."""
    try:
        password = generate_password(**params["generate"])
    except CredentialError as err:
        raise RotationError(f"generate: {err}") from None
    hide(password)
    base = current or Credential(host=params.get("login_host"), port=params.get("login_port"),
                                 dbname=params.get("dbname"))
    # auth is written only where the store already says it (a store that was on IAM)
    return base.merged({"username": user, "password": password,
                        "auth": "password" if base.auth else None})


def refuse_other_rotators(params: dict) -> None:
    """Two rotators on one password break it in turn: refuse unless forced.  With rotate_via
    rds_managed, RDS is the rotator this run asks: its own secret is no conflict."""
    if params.get("force"):
        return
    stores = params.get("stores") or []
    if params.get("rotate_via") == "rds_managed":
        stores = [store for store in stores if store.get("name") != MANAGED_STORE_NAME]
    rotators, _errors = other_rotators(stores, params, params["role"])
    refusal = conflict_refusal(rotators, False)
    if refusal:
        raise RotationError(refusal)


def plan_and_move(params: dict, check_mode: bool) -> tuple[dict, dict]:
    """move_plaintext_to: what the rotation needs of the stores after the move is checked on
    the planned list before anything is moved, so a move is never left behind by a rotation
    that was bound to refuse."""
    if params.get("rotate_via") == "rds_managed":
        raise RotationError("move_plaintext_to with rotate_via rds_managed: the managed secret "
                            "is the source; move the variable into it by hand, or rotate "
                            "without rds_managed")
    if (params["move_plaintext_to"] or {}).get("type") != "aws_secretsmanager":
        raise RotationError("move_plaintext_to must be an aws_secretsmanager store: it becomes "
                            "the primary, which holds the pending value (Parameter Store has "
                            "no pending stage)")
    args = (params["stores"], params["move_plaintext_to"], params)
    grant = bool(params.get("grant_secret_read"))
    defaults = {"username": params["role"], "host": params.get("login_host"),
                "port": params.get("login_port"), "dbname": params.get("dbname")}
    planned = move_plaintext(*args, True, grant, defaults)
    names = [store.get("name") or store.get("type") for store in planned["stores"]]
    if len(set(names)) != len(names):
        raise RotationError("store names must be unique (they label reports), also with the "
                            "move_plaintext_to store")
    refuse_other_rotators({**params, "stores": planned["stores"]})
    moved = planned if check_mode else move_plaintext(*args, False, grant, defaults)
    return moved, {**params, "stores": moved.pop("stores")}


ENGINES = {"single_user": Rotation, "alternating_users": Rotation, "iam": IamConversion}


def run_rotation(params: dict, cur, hide, check_mode: bool, lock_cur=None,
                 failpoint: FailpointHook | None = None) -> dict:
    """The module's work: lock (on lock_cur, default cur), run the strategy, describe what
    happened.  A run that fails raises RotationFailed carrying the steps so far."""
    if params.get("rotate_via") == "rds_managed":
        params = with_managed_secret(params)
    if not check_mode:
        take_lock(lock_cur or cur, params["role"])
        if failpoint is not None:
            failpoint("lock")
    if params.get("consumers") and params["strategy"] == "iam":
        raise RotationError("consumers are refreshed by the password strategies (single_user, "
                            "alternating_users); strategy iam takes none; nothing was changed")
    moved = None
    if params.get("move_plaintext_to"):
        moved, params = plan_and_move(params, check_mode)
    refuse_other_rotators(params)
    engine = ENGINES[params["strategy"]](params, cur, hide, check_mode, failpoint)
    try:
        outcome = engine.run()
    except STEP_ERRORS as err:
        raise RotationFailed(str(err), {**engine.out.as_dict(),
                                        "store_warnings": store_warnings(engine)}) from None
    result = {**result_of(outcome, check_mode), "store_warnings": store_warnings(engine)}
    if moved is not None:
        result["moved_plaintext"] = moved
        result["changed"] = result.get("changed") or moved["changed"]
    return result


def store_warnings(engine) -> list[str]:
    """What the stores' writes did that the user should know (a file's comments lost)."""
    return [warning for store in engine.store_list for warning in store.warnings]
