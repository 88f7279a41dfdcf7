"""The rotation's decision table (docs/rotate.md, "Resume and rollback") over plain states:
decide(), decide_rollback(), restore_source(), conflict_refusal() and is_due() are pure, so
each row of the state machine is one case here, with no client and no lab."""
from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
    Executor,
    Outcome,
    RotationError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import (
    NOTHING,
    RESTORE_RESUMED,
    RESTORE_SET,
    UNKNOWN,
    Apply,
    Converge,
    DiscardLeftover,
    DiscardPromotedPending,
    Drain,
    EnsureClone,
    NotDue,
    Resume,
    RollbackFacts,
    RotationPlan,
    RotationState,
    StageNew,
    conflict_refusal,
    decide,
    decide_rollback,
    is_due,
    restore_source,
)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
YOUNG = (NOW - dt.timedelta(minutes=5)).isoformat()
OLD = (NOW - dt.timedelta(days=40)).isoformat()
ROLE, CLONE = "app_user", "app_user_clone"
CUR = Credential(ROLE, "old-pw")
CUR_CLONE = Credential(CLONE, "old-pw")
PEND = Credential(ROLE, "new-pw")


def state(**facts) -> RotationState:
    return RotationState(**{"role": ROLE, "primary": "aws", "current": CUR,
                            "target_user": ROLE, **facts})


def kinds(decision) -> list:
    return [type(step).__name__ for step in decision.steps]


LOGS_IN = {"trusted": CUR, "trusted_logs_in": True}
# (id, state, plan, outcome, step kinds, login_user)
ROWS = [
    ("fresh-nothing-logs-in", state(), RotationPlan(now=NOW), "rotated",
     ["Drain", "StageNew", "Apply"], ROLE),
    ("fresh-logs-in-no-min-age", state(**LOGS_IN, changed_at=YOUNG), RotationPlan(now=NOW),
     "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("not-due", state(**LOGS_IN, changed_at=YOUNG), RotationPlan("1h", now=NOW), "not_due",
     ["NotDue"], ROLE),
    ("due-by-age", state(**LOGS_IN, changed_at=OLD), RotationPlan("30d", now=NOW), "rotated",
     ["Drain", "StageNew", "Apply"], ROLE),
    ("forced-although-young", state(**LOGS_IN, changed_at=YOUNG),
     RotationPlan("1h", force=True, now=NOW), "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("no-date-is-due", state(**LOGS_IN, changed_at=None), RotationPlan("30d", now=NOW),
     "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("young-but-broken-rotates", state(changed_at=YOUNG), RotationPlan("30d", now=NOW),
     "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("converged", state(**LOGS_IN, differ=("vault", "env")), RotationPlan(now=NOW),
     "converged", ["Converge"], ROLE),
    ("forced-rotates-although-stores-differ", state(**LOGS_IN, differ=("vault", "env")),
     RotationPlan(force=True, now=NOW), "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("forced-differ-and-young", state(**LOGS_IN, differ=("env",), changed_at=YOUNG),
     RotationPlan("1h", force=True, now=NOW), "rotated", ["Drain", "StageNew", "Apply"],
     ROLE),
    ("forced-leftovers-differ", state(leftovers=(("vault", None),), **LOGS_IN,
                                      differ=("vault",)), RotationPlan(force=True, now=NOW),
     "rotated", ["DiscardLeftover", "Drain", "StageNew", "Apply"], ROLE),
    ("converge-beats-not-due", state(**LOGS_IN, differ=("env",), changed_at=YOUNG),
     RotationPlan("1h", now=NOW), "converged", ["Converge"], ROLE),
    ("source-store-trusted-clone", state(trusted=CUR_CLONE, trusted_logs_in=True,
                                         differ=("aws",)), RotationPlan(now=NOW),
     "converged", ["Converge"], CLONE),
    ("bare-password-trusted-is-role", state(trusted=Credential(None, "pw"),
                                            trusted_logs_in=True, changed_at=YOUNG),
     RotationPlan("1h", now=NOW), "not_due", ["NotDue"], ROLE),
    ("source-store-empty", state(trusted=None, trusted_logs_in=False),
     RotationPlan("1h", now=NOW), "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    # the drain guard before a resumed run's set_database, not when the database has it
    ("pending-resumed", state(pending=PEND, database_has_pending=False),
     RotationPlan(now=NOW), "resumed", ["Resume", "Drain", "Apply"], ROLE),
    ("pending-resumed-db-has-it", state(pending=PEND, database_has_pending=True),
     RotationPlan(now=NOW), "resumed", ["Resume", "Apply"], ROLE),
    ("pending-resumed-db-unknown", state(pending=PEND, database_has_pending=None),
     RotationPlan(now=NOW), "resumed", ["Resume", "Drain", "Apply"], ROLE),
    ("pending-resumed-although-young", state(pending=PEND, changed_at=YOUNG, **LOGS_IN),
     RotationPlan("1h", now=NOW), "resumed", ["Resume", "Drain", "Apply"], ROLE),
    ("pending-resumed-check-mode", state(pending=PEND, database_has_pending=True),
     RotationPlan(check_mode=True, now=NOW), "resumed", ["Resume", "Drain", "Apply"], ROLE),
    ("pending-bare-password", state(pending=Credential(None, "new-pw")),
     RotationPlan(now=NOW), "resumed", ["Resume", "Drain", "Apply"], ROLE),
    ("interrupted-promote-then-not-due",
     state(pending=CUR, pending_is_current=True, **LOGS_IN, changed_at=YOUNG),
     RotationPlan("1h", now=NOW), "not_due", ["DiscardPromotedPending", "NotDue"], ROLE),
    ("interrupted-promote-then-converge",
     state(pending=CUR, pending_is_current=True, **LOGS_IN, differ=("env",)),
     RotationPlan("1h", now=NOW), "converged", ["DiscardPromotedPending", "Converge"], ROLE),
    ("leftovers-then-not-due", state(leftovers=(("vault", None), ("aws", None)), **LOGS_IN,
                                     changed_at=YOUNG), RotationPlan("1h", now=NOW),
     "not_due", ["DiscardLeftover", "DiscardLeftover", "NotDue"], ROLE),
    ("leftovers-then-rotate", state(leftovers=(("vault", None),)), RotationPlan(now=NOW),
     "rotated", ["DiscardLeftover", "Drain", "StageNew", "Apply"], ROLE),
    ("leftovers-then-converge", state(leftovers=(("vault", None),), **LOGS_IN,
                                      differ=("vault",)), RotationPlan(now=NOW),
     "converged", ["DiscardLeftover", "Converge"], ROLE),
    ("odd-user-but-converges", state(user_error="neither", target_user=None, **LOGS_IN,
                                     differ=("env",)), RotationPlan(now=NOW), "converged",
     ["Converge"], ROLE),
    ("odd-user-but-not-due", state(user_error="neither", target_user=None, **LOGS_IN,
                                   changed_at=YOUNG), RotationPlan("1h", now=NOW),
     "not_due", ["NotDue"], ROLE),
    ("clone-missing", state(current=CUR, target_user=CLONE, clone_ready=False),
     RotationPlan(now=NOW), "rotated", ["EnsureClone", "Drain", "StageNew", "Apply"], CLONE),
    ("clone-ready", state(current=CUR, target_user=CLONE, clone_ready=True),
     RotationPlan(now=NOW), "rotated", ["EnsureClone", "Drain", "StageNew", "Apply"], CLONE),
    ("alternating-back-to-role", state(current=CUR_CLONE, target_user=ROLE),
     RotationPlan(now=NOW), "rotated", ["Drain", "StageNew", "Apply"], ROLE),
    ("clone-missing-resumed", state(pending=Credential(CLONE, "new"), target_user=CLONE,
                                    clone_ready=False), RotationPlan(now=NOW), "resumed",
     ["Resume", "EnsureClone", "Drain", "Apply"], CLONE),
    ("clone-resumed-db-has-it", state(pending=Credential(CLONE, "new"), target_user=CLONE,
                                      clone_ready=True, database_has_pending=True),
     RotationPlan(now=NOW), "resumed", ["Resume", "EnsureClone", "Apply"], CLONE),
    ("check-mode-fresh", state(), RotationPlan(check_mode=True, now=NOW), "rotated",
     ["Drain", "StageNew", "Apply"], ROLE),
    # rotate_via rds_managed: RDS made the password; only the other stores are brought in
    # line, RDS's own pending stage is left alone, and nothing is ever staged
    ("rds-managed-differ", state(**LOGS_IN, differ=("env",)),
     RotationPlan(converge_only=True, now=NOW), "converged", ["Converge"], ROLE),
    ("rds-managed-agree", state(**LOGS_IN), RotationPlan(converge_only=True, now=NOW),
     "converged", ["Converge"], ROLE),
    ("rds-managed-pending-is-rds-business", state(**LOGS_IN, pending=PEND, differ=("env",)),
     RotationPlan(converge_only=True, now=NOW), "converged", ["Converge"], ROLE),
]


@pytest.mark.parametrize(("row", "found", "plan", "outcome", "steps", "login_user"), ROWS,
                         ids=[row[0] for row in ROWS])
def test_decide(row, found, plan, outcome, steps, login_user):
    decision = decide(found, plan)
    found_row = (decision.outcome, kinds(decision), decision.login_user)
    assert found_row == (outcome, steps, login_user)
    # exactly one step settles the outcome (it is reported from then on)
    assert sum(1 for step in decision.steps if step.settles) == 1


@pytest.mark.parametrize(("found", "plan", "set_database"), [
    (state(pending=PEND, database_has_pending=False), RotationPlan(now=NOW), True),
    (state(pending=PEND, database_has_pending=True), RotationPlan(now=NOW), False),
    (state(pending=PEND, database_has_pending=None), RotationPlan(now=NOW), True),
    (state(pending=PEND, database_has_pending=True), RotationPlan(check_mode=True, now=NOW),
     True),
    (state(), RotationPlan(now=NOW), True),
], ids=["resumed-db-old", "resumed-db-new", "resumed-db-unknown", "check-mode", "fresh"])
def test_set_database_only_when_needed(found, plan, set_database):
    apply = decide(found, plan).steps[-1]
    assert isinstance(apply, Apply)
    assert apply.set_database is set_database
    assert apply.fresh is (found.pending is None)


def test_steps_carry_what_the_engine_needs():
    decision = decide(state(leftovers=(("vault", "handle"),), **LOGS_IN, differ=("vault", "env")),
                      RotationPlan(now=NOW))
    assert decision.steps == (DiscardLeftover("vault", "handle"), Converge(("vault", "env")))
    assert decide(state(**LOGS_IN, changed_at=YOUNG), RotationPlan("1h", now=NOW)).steps == (
        NotDue("1h"),)
    assert decide(state(target_user=CLONE, clone_ready=False), RotationPlan(now=NOW)).steps == (
        EnsureClone(CLONE, False), Drain(CLONE), StageNew(CLONE), Apply(CLONE, True, True))
    # a resumed run drains the user whose password it is about to set, before any write
    assert decide(state(pending=Credential(CLONE, "new"), target_user=CLONE, clone_ready=True,
                        database_has_pending=False), RotationPlan(now=NOW)).steps == (
        Resume(), EnsureClone(CLONE, True), Drain(CLONE), Apply(CLONE, False, True))
    assert decide(state(pending=PEND), RotationPlan(now=NOW)).steps[0] == Resume()
    assert decide(state(pending=CUR, pending_is_current=True), RotationPlan(now=NOW)).steps[
        0] == DiscardPromotedPending()


@pytest.mark.parametrize(("found", "plan", "match"), [
    (state(pending=Credential(CLONE, "new")), RotationPlan(now=NOW), "is for 'app_user_clone'"),
    (state(user_error="the primary store's username is 'bob'", target_user=None),
     RotationPlan(now=NOW), "username is 'bob'"),
    (state(user_error="the primary store's username is 'bob'", target_user=None,
           pending=PEND), RotationPlan(now=NOW), "username is 'bob'"),
    (state(**LOGS_IN, changed_at=YOUNG), RotationPlan("soon", now=NOW), "min_age"),
    (state(), RotationPlan(converge_only=True, now=NOW), "does not log in"),
], ids=["pending-for-other-user", "unknown-user", "unknown-user-pending", "bad-min-age",
        "rds-managed-source-broken"])
def test_decide_refuses(found, plan, match):
    with pytest.raises(RotationError, match=match):
        decide(found, plan)


@pytest.mark.parametrize(("facts", "action"), [
    (RollbackFacts(True, True, None), RESTORE_SET),         # this run set it: put it back
    (RollbackFacts(False, True, True), RESTORE_RESUMED),    # an earlier run set it
    (RollbackFacts(False, True, False), NOTHING),           # the database still has the old
    (RollbackFacts(False, True, None), UNKNOWN),            # cannot tell: keep the pending
    (RollbackFacts(False, False, None), NOTHING),           # the standby's (alternating)
    (RollbackFacts(True, False, None), NOTHING),
], ids=["set-this-run", "set-earlier", "not-set", "unknown-keep-pending",
        "standby-not-set", "standby-set"])
def test_decide_rollback(facts, action):
    assert decide_rollback(facts) == action


@pytest.mark.parametrize(("stored", "password", "user", "source"), [
    ("SCRAM-SHA-256$...", None, None, "verifier"),           # pg_authid readable
    (None, "old-pw", ROLE, "store"),                         # from a store, same user
    (None, "old-pw", CLONE, "unknown"),                      # another user's: impossible
    (None, None, None, "unknown"),                           # no store holds it: impossible
    (None, "", ROLE, "unknown"),
], ids=["verifier", "store-plaintext", "other-user", "nothing", "empty-password"])
def test_restore_source(stored, password, user, source):
    assert restore_source(ROLE, stored, password, user) == source


@pytest.mark.parametrize(("rotators", "force", "refused"), [
    ([{"store": "aws", "rotator": "Secrets Manager rotation (lambda x)"}], False, True),
    ([{"store": "aws", "rotator": "Secrets Manager rotation (lambda x)"}], True, False),
    ([], False, False),
], ids=["conflict-refused", "conflict-forced", "no-conflict"])
def test_conflict_refused_unless_forced(rotators, force, refused):
    refusal = conflict_refusal(rotators, force)
    assert (refusal is not None) is refused
    if refused:
        assert "another rotator already manages this credential (aws: " in refusal


@pytest.mark.parametrize(("min_age", "changed", "force", "due"), [
    (None, NOW, False, True),
    ("30d", NOW - dt.timedelta(days=29), False, False),
    ("30d", NOW - dt.timedelta(days=31), False, True),
    ("30d", NOW, True, True),
    ("30d", None, False, True),                                       # no date: due
    ("12h", (NOW - dt.timedelta(hours=1)).replace(tzinfo=None), False, False),  # naive = UTC
])
def test_is_due(min_age, changed, force, due):
    assert is_due(min_age, force, changed.isoformat() if changed else None, NOW) is due


def test_is_due_refuses_garbage():
    with pytest.raises(RotationError, match="min_age"):
        is_due("soon", False, NOW.isoformat(), NOW)


class Boom(RotationError):
    pass


def fail() -> None:
    raise Boom("no")


def test_executor_failpoint_hook_times_and_plans():
    seen: list[str] = []
    out = Outcome("single_user", ROLE)
    execute = Executor(out, False, seen.append)
    assert execute.run("stage:aws", [], lambda: 7) == 7
    execute.run("skipped", [], lambda: 1 / 0, needed=False, detail="why")
    with pytest.raises(Boom):
        execute.run("set_database", [], fail)
    execute.boundary("switched")
    assert seen == ["stage:aws", "switched"]  # not after a skip or a failure
    assert [(s.name, s.status, s.detail) for s in out.steps] == [
        ("stage:aws", "done", None), ("skipped", "skipped", "why"),
        ("set_database", "failed", None)]
    planned = Outcome("single_user", ROLE)
    Executor(planned, True, seen.append).run("stage:aws", [], lambda: 1 / 0)
    assert planned.steps[0].status == "planned" and seen == ["stage:aws", "switched"]
