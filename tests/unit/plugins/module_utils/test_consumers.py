"""Consumers (issue 18), the pure parts: the decision rows that make a run after promote
refresh and confirm what was left and never rotate again; the auth_file (userlist) editor;
the consumer specs' validation; the pooler_auth_stale finding and verify's consumer check."""
from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    ConsumerContext,
    ConsumerError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumers import (
    CONSUMER_TYPES,
    make_consumers,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import (
    RefreshConsumers,
    RotationPlan,
    RotationState,
    decide,
)
from ansible_collections.credops.pgauth.plugins.module_utils.userlist import (
    MAX_BYTES,
    UserlistError,
    entry_of,
    fields,
    with_entry,
)
from ansible_collections.credops.pgauth.plugins.module_utils.verification import verify_checks

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
YOUNG = (NOW - dt.timedelta(minutes=5)).isoformat()
CUR = Credential("app_user", "pw")
PEND = Credential("app_user", "new")
LOGS_IN = {"trusted": CUR, "trusted_logs_in": True}


def state(**facts) -> RotationState:
    return RotationState(**{"role": "app_user", "primary": "aws", "current": CUR,
                            "target_user": "app_user", "consumers": ("bouncer", "app"),
                            **facts})


def kinds(decision) -> list[str]:
    return [type(step).__name__ for step in decision.steps]


# (id, state, plan, outcome, step kinds, consumers of the RefreshConsumers step)
ROWS = [
    ("rotated-refreshes-every-consumer", state(**LOGS_IN), RotationPlan(now=NOW), "rotated",
     ["Drain", "StageNew", "Apply", "RefreshConsumers"], ("bouncer", "app")),
    ("resumed-refreshes-every-consumer", state(pending=PEND), RotationPlan(now=NOW),
     "resumed", ["Resume", "Drain", "Apply", "RefreshConsumers"], ("bouncer", "app")),
    ("converged-refreshes-every-consumer", state(**LOGS_IN, differ=("vault",)),
     RotationPlan(now=NOW), "converged", ["Converge", "RefreshConsumers"], ("bouncer", "app")),
    ("left-behind-after-promote-no-new-password", state(**LOGS_IN, consumers_left=("bouncer",)),
     RotationPlan(now=NOW), "consumers_refreshed", ["RefreshConsumers"], ("bouncer",)),
    ("left-behind-wins-over-force", state(**LOGS_IN, consumers_left=("app",)),
     RotationPlan(force=True, now=NOW), "consumers_refreshed", ["RefreshConsumers"], ("app",)),
    ("left-behind-wins-over-min-age",
     state(**LOGS_IN, changed_at=YOUNG, consumers_left=("app",)),
     RotationPlan(min_age="30d", now=NOW), "consumers_refreshed", ["RefreshConsumers"],
     ("app",)),
    ("not-due-leaves-confirmed-consumers-alone", state(**LOGS_IN, changed_at=YOUNG),
     RotationPlan(min_age="30d", now=NOW), "not_due", ["NotDue"], None),
    ("no-consumers-no-step", state(**LOGS_IN, consumers=()), RotationPlan(now=NOW), "rotated",
     ["Drain", "StageNew", "Apply"], None),
]


@pytest.mark.parametrize(("row", "facts", "plan", "outcome", "steps", "refreshed"), ROWS,
                         ids=[row[0] for row in ROWS])
def test_decision_rows(row, facts, plan, outcome, steps, refreshed):
    decision = decide(facts, plan)
    assert decision.outcome == outcome
    assert kinds(decision) == steps
    found = [step for step in decision.steps if isinstance(step, RefreshConsumers)]
    assert (found[0].consumers if found else None) == refreshed


def test_a_left_behind_consumer_never_gets_a_new_password():
    """Whatever the plan, a state with a consumer left behind stages nothing."""
    for plan in (RotationPlan(now=NOW), RotationPlan(force=True, now=NOW)):
        decision = decide(state(**LOGS_IN, consumers_left=("bouncer",)), plan)
        assert "StageNew" not in kinds(decision) and "Apply" not in kinds(decision)


# -- the auth_file ---------------------------------------------------------------------------
V1, V2 = "SCRAM-SHA-256$4096:c2FsdA==$a:b", "SCRAM-SHA-256$4096:c2FsdB==$c:d"


def test_userlist_replaces_only_the_users_line():
    text = f';; pooler users\n"other" "{V1}"\n"app_user" "{V1}"\n'
    new = with_entry(text, "app_user", V2)
    assert new == f';; pooler users\n"other" "{V1}"\n"app_user" "{V2}"\n'
    assert entry_of(new, "app_user") == V2 and entry_of(new, "other") == V1
    assert with_entry(new, "app_user", V2) == new  # idempotent


def test_userlist_appends_and_quotes():
    new = with_entry("", 'we"ird', V1)
    assert new == f'"we""ird" "{V1}"\n'
    assert fields(new.strip()) == ['we"ird', V1]
    assert entry_of(new, 'we"ird') == V1


def test_userlist_duplicate_lines_collapse_to_one():
    text = f'"app_user" "{V1}"\n"x" "{V1}"\n"app_user" "{V1}"\n'
    assert with_entry(text, "app_user", V2) == f'"app_user" "{V2}"\n"x" "{V1}"\n'


@pytest.mark.parametrize("text", ['"app_user "x"\n"broken', "x" * (MAX_BYTES + 1)])
def test_userlist_refuses_what_it_cannot_read(text):
    with pytest.raises(UserlistError) as err:
        entry_of(text, "app_user")
    assert "SCRAM" not in str(err.value)


def test_userlist_never_writes_a_newline_into_a_field():
    with pytest.raises(UserlistError):
        with_entry("", "app_user", V1 + "\n\"admin\" \"x\"")


# -- specs -------------------------------------------------------------------------------
PG = {"name": "pool", "type": "pgbouncer", "admin": {"user": "a", "password": "secret"}}


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "nope"}, "unknown type 'nope'"),
    ({"name": "web", "type": "http"}, "consumer 'web' (http): missing url"),
    ({"type": "http", "url": "http://x", "colour": 1}, "unknown keys colour"),
    ({"type": "http", "url": "http://x", "timeout": 0}, "must be above 0"),
    ({"type": "http", "url": "http://x", "sessions": {"user": "x"}}, "sessions is a dict"),
    ({"name": "pool", "type": "pgbouncer", "admin": {"user": "a"}}, "admin is {user"),
    ({**PG, "auth_file": "relative/userlist.txt"}, "absolute path"),
])
def test_bad_specs_are_refused_with_the_consumers_name(spec, message):
    with pytest.raises(ConsumerError) as err:
        make_consumers([spec])
    assert message in str(err.value)
    assert "secret" not in str(err.value)


def test_inline_admin_passwords_are_hidden_and_names_unique():
    hidden = []
    make_consumers([PG], hidden.append)
    assert hidden == ["secret"]
    with pytest.raises(ConsumerError, match="unique"):
        make_consumers([PG, PG])


def test_every_type_is_one_row_of_the_table():
    assert set(CONSUMER_TYPES) == {"pgbouncer", "http", "aws_ecs_service", "command"}
    for kind, cls in CONSUMER_TYPES.items():
        assert kind == cls.TYPE and cls.MANUAL


class _Cursor:
    def __init__(self, count: int):
        self.count, self.sql, self.args = count, None, None

    def execute(self, sql, args):
        self.sql, self.args = sql, args

    def fetchone(self):
        return (self.count,)


@pytest.mark.parametrize(("count", "ok"), [(0, False), (2, True)])
def test_sessions_check_counts_the_roles_new_sessions(count, ok):
    consumer = make_consumers([{"name": "app", "type": "http", "url": "http://x",
                                "sessions": {"application_name": "web", "min": 2}}])[0]
    cur = _Cursor(count)
    ctx = ConsumerContext(cur, {}, "app_user", Credential("app_user_clone", "pw"), NOW)
    if ok:
        assert "2 new session(s)" in consumer.check_sessions(ctx)
    else:
        with pytest.raises(ConsumerError, match="no new sessions"):
            consumer.check_sessions(ctx)
    assert cur.args[0] == ["app_user", "app_user_clone"] and cur.args[1] == NOW
    assert "backend_start >= %s" in cur.sql and "application_name = %s" in cur.sql


def test_sessions_check_without_a_switch_counts_the_sessions_of_now():
    """observe and verify have no refresh time: no time condition (a NULL would match
    nothing, and every run would see the consumer left behind)."""
    consumer = make_consumers([{"name": "app", "type": "http", "url": "http://x",
                                "sessions": {"client_addr": "10.0.0.7"}}])[0]
    cur = _Cursor(1)
    consumer.check_sessions(ConsumerContext(cur, {}, "app_user", None))
    assert "backend_start" not in cur.sql and None not in cur.args
    assert cur.args == [["app_user"], "10.0.0.7"]


# -- diagnose and verify --------------------------------------------------------------------
def pooled_facts(direct_ok: bool, auth_file_current) -> dict:
    cred = {"username": "app_user", "host": "127.0.0.1", "port": 6432, "dbname": "appdb"}
    return {
        "target": {"host": "127.0.0.1", "port": 5432, "role": "app_user", "dbname": "appdb"},
        "role": {"exists": True, "can_login": True, "password_set": True,
                 "password_hash": "scram"},
        "server": {"password_encryption": "scram-sha-256"},
        "stores": [{"store": "aws", "readable": True, "exists": True, "credential": cred,
                    "password_fingerprint": "f1"}],
        "probes": [{"store": "aws", "ok": False, "category": "store_password_mismatch",
                    "sqlstate": "28P01", "message": "SASL authentication failed"}],
        "poolers": [{"consumer": "pool", "pooler": "127.0.0.1:6432", "stores": ["aws"],
                     "direct": {"aws": {"ok": direct_ok, "category": "ok"}},
                     "auth_file_current": auth_file_current}],
    }


def test_pooler_auth_stale_comes_first_and_explains_the_failed_login():
    findings = diagnose(pooled_facts(True, False))
    assert findings[0]["id"] == "pooler_auth_stale"
    assert findings[0]["evidence"]["stores"] == ["aws"]
    ids = [finding["id"] for finding in findings]
    assert "store_target_mismatch" not in ids and "login_failed" not in ids
    assert "store_password_mismatch" in [f["id"] for f in findings[0]["folded"]]


def test_a_password_the_database_refuses_too_is_no_pooler_finding():
    findings = diagnose(pooled_facts(False, None))
    assert "pooler_auth_stale" not in [finding["id"] for finding in findings]
    assert findings[0]["id"] == "store_password_mismatch"


def test_a_stale_auth_file_is_found_before_any_login_fails():
    facts = pooled_facts(True, False)
    facts["probes"][0] = {"store": "aws", "ok": True, "category": "ok"}
    assert diagnose(facts)[0]["id"] == "pooler_auth_stale"


def test_verify_has_a_check_per_consumer():
    checks = verify_checks({"stores": [], "consumers": [
        {"consumer": "pool", "ok": True, "checks": ["logs in"]},
        {"consumer": "app", "ok": False, "error": "answered 500"}]})
    by_name = {check["check"]: check for check in checks}
    assert by_name["consumer:pool"]["ok"] and by_name["consumer:pool"]["detail"] == "logs in"
    assert not by_name["consumer:app"]["ok"]
    assert by_name["consumer:app"]["detail"] == "answered 500"


def test_a_command_consumer_runs_argv_without_a_shell_and_reports_failures():
    from ansible_collections.credops.pgauth.plugins.module_utils.consumers import (
        ConsumerContext,
        ConsumerError,
        make_consumers,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
    secret = "Restart-Pw-12345"
    ctx = ConsumerContext(cur=None, params={}, role="app_user",
                          credential=Credential("app_user", secret))
    ok, failing, hanging, echoing = make_consumers([
        {"name": "ok", "type": "command", "argv": ["true"]},
        {"name": "failing", "type": "command", "argv": ["sh", "-c", "exit 3"]},
        {"name": "hanging", "type": "command", "argv": ["sleep", "30"], "command_timeout": 1},
        {"name": "echoing", "type": "command",
         "argv": ["sh", "-c", f"echo 'login failed: {secret}' >&2; exit 1"]}])
    assert "exited 0" in ok.refresh(ctx)
    assert "exit code only" in ok.confirm(ctx)[0]
    with pytest.raises(ConsumerError, match=r"consumer 'failing' \(command\).*3"):
        failing.refresh(ctx)
    with pytest.raises(ConsumerError, match=r"consumer 'hanging'.*did not finish within 1 s"):
        hanging.refresh(ctx)
    with pytest.raises(ConsumerError) as err:
        echoing.refresh(ctx)
    assert secret not in str(err.value)
    with pytest.raises(ConsumerError, match="argv is a list"):
        make_consumers([{"name": "shell", "type": "command", "argv": "systemctl restart app"}])


# -- prepare: before promote -----------------------------------------------------------------
class _Preparing:
    TYPE, PREPARES = "fake", True

    def __init__(self, name, fail=None):
        self.name, self.fail, self.seen = name, fail, []

    def prepare(self, ctx):
        self.seen.append(ctx.user)
        if self.fail:
            raise ConsumerError(f"consumer {self.name!r} (fake): {self.fail}")
        return "written"


class _NotPreparing(_Preparing):
    PREPARES = False


def test_prepare_runs_for_the_types_that_prepare_and_a_failure_is_a_note():
    from ansible_collections.credops.pgauth.plugins.module_utils.rotation_consumers import (
        RotationConsumers,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
        Executor,
        Outcome,
    )
    out = Outcome("alternating_users", "app_user")
    rc = RotationConsumers({"role": "app_user", "consumers": []}, None,
                           Executor(out, False), out, lambda _secret: None)
    ok, broken, other = _Preparing("bouncer"), _Preparing("b2", "auth_file: denied"), \
        _NotPreparing("app")
    rc.consumers = [ok, broken, other]
    rc.prepare(Credential("app_user_clone", "new-pw"))
    assert ok.seen == ["app_user_clone"] and broken.seen == ["app_user_clone"]
    assert other.seen == []
    assert [(step.name, step.status) for step in out.steps] == [
        ("prepare:bouncer", "done"), ("prepare:b2", "failed")]
    assert any("auth_file: denied" in note and "refreshed after" in note for note in out.notes)
    # check mode plans it and touches nothing
    out = Outcome("single_user", "app_user")
    rc.execute, rc.out = Executor(out, True), out
    fresh = _Preparing("bouncer")
    rc.consumers = [fresh]
    rc.prepare(Credential("app_user", "new-pw"))
    assert fresh.seen == [] and [(s.name, s.status) for s in out.steps] == [
        ("prepare:bouncer", "planned")]


def test_refresh_reloads_only_what_prepare_did_not_load(tmp_path, monkeypatch):
    """prepare writes the verifier and RELOADs; the refresh of the same run writes nothing
    and only RECONNECTs (a second RELOAD would cancel the server logins under way again);
    a refresh with no prepare before it, or a verifier changed since, RELOADs."""
    from ansible_collections.credops.pgauth.plugins.module_utils.consumer_pgbouncer import (
        PgBouncerConsumer,
    )
    auth_file = tmp_path / "userlist.txt"
    auth_file.write_text(f'"app_user" "{V1}"\n')
    verifier = {"now": V2}
    sent: list = []
    consumer = PgBouncerConsumer({"name": "bouncer", "type": "pgbouncer", "dbname": "appdb",
                                  "auth_file": str(auth_file),
                                  "admin": {"user": "admin", "password": "x"}})
    monkeypatch.setattr(consumer, "database_verifier", lambda _ctx: verifier["now"])
    monkeypatch.setattr(consumer, "admin", lambda _ctx, *commands: sent.append(commands))
    ctx = ConsumerContext(None, {}, "app_user", Credential("app_user", "pw"))
    assert "written" in consumer.prepare(ctx) and sent == [("RELOAD",)]
    assert V2 in auth_file.read_text()
    detail = consumer.refresh(ctx)
    assert sent[-1] == ('RECONNECT "appdb"',) and "already the database's" in detail
    verifier["now"] = V1  # changed since prepare: written and reloaded again
    consumer.refresh(ctx)
    assert sent[-1] == ("RELOAD", 'RECONNECT "appdb"')
    fresh = PgBouncerConsumer(consumer.spec)  # a re-run: no prepare in this process
    monkeypatch.setattr(fresh, "database_verifier", lambda _ctx: V1)
    monkeypatch.setattr(fresh, "admin", lambda _ctx, *commands: sent.append(commands))
    fresh.refresh(ctx)
    assert sent[-1] == ("RELOAD", 'RECONNECT "appdb"')
