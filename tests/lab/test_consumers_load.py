"""Issue 18's load run: 8 client workers, 3 through the lab's PgBouncer and 5 straight to
PostgreSQL, each re-reading its store before every login (what alternating_users asks of a
client), while rotate runs with the pgbouncer consumer, single_user then alternating_users
on the same load (one test: the load and the pooler's setup are shared).

- single_user: logins may fail during the switch (counted and printed), but every worker
  logs in again once the run ended;
- alternating_users: not one failed login, through the pooler or direct;
- each run's report says the pooler was refreshed and confirmed.
"""
from __future__ import annotations

import time

from lab.loadclient import ClientLoad
from labfixtures import lab_store_options, scenario
from test_consumers import line_of, no_leak, pooler_admin, primary, runbook, through_pooler

POOLED, DIRECT = 3, 5
# the rotation's own waits kept short: the load test runs in every make test
QUICK = {"pgauth_drain_timeout": 5}


def pooler_in_line(lab: dict, meta: dict) -> None:
    """The scenario's stale pooler brought in line by the test's own hand (a rotate run
    would cost the test twenty seconds): the database's verifier in its auth_file, RELOAD."""
    from lab.pgbouncer import PgBouncer
    from lab.postgres import Postgres
    from lab.scenarios_pooler import APP_ROLE, database_verifier
    from lab.settings import Lab
    settings = Lab.from_env()
    pg = Postgres(settings)
    PgBouncer(settings, pg).set_user(APP_ROLE, database_verifier(type("Seed", (), {"pg": pg}),
                                                                 APP_ROLE))
    pooler_admin(lab, meta["consumers"][0], "RELOAD")
    cred = primary(meta, lab)
    assert through_pooler(lab, meta, cred.username or APP_ROLE, cred.password)


def pooled_load(meta: dict, lab: dict) -> ClientLoad:
    host = lab["PGAUTH_LAB_PGHOST"]
    pooler = {"name": "pgbouncer", "host": host, "port": int(lab["PGAUTH_LAB_PGBOUNCER_PORT"])}
    # the scenario's stores name the pooler's port: the direct workers go round it
    direct = {"name": "direct", "host": host, "port": int(lab["PGAUTH_LAB_PGPORT"])}
    target = meta["target"]
    return ClientLoad(meta["stores"], lab_store_options(lab), {
        "host": target["host"], "port": target["port"], "dbname": target["dbname"],
        "sslmode": "verify-full", "sslrootcert": target["sslrootcert"]},
        workers=POOLED + DIRECT, pause=0.05, routes=[pooler] * POOLED + [direct] * DIRECT)


def rotated_with_the_pooler(done, report: dict) -> None:
    assert done.returncode == 0, done.stdout[-3000:]
    assert report["outcome"] == "rotated", report.get("msg")
    line = line_of(report)
    assert line["refreshed"] and line["confirmed"] and not line["error"], line
    steps = {step["step"]: step["status"] for step in report["steps"]}
    # the pooler took the database's verifier before promote, then was refreshed
    assert steps["prepare:lab-pgbouncer"] == "done", steps
    assert steps["refresh:lab-pgbouncer"] == steps["confirm:lab-pgbouncer"] == "done", steps


def test_both_strategies_under_load_through_the_pooler(lab, tmp_path):
    with scenario("pooler_auth_stale") as meta:
        pooler_in_line(lab, meta)
        phases = {"inline": time.monotonic()}
        with pooled_load(meta, lab) as load:
            phases["load"] = time.monotonic()
            assert load.wait_until_every_worker_logged_in(), load.report()
            load.mark()
            single, single_report = runbook(lab, tmp_path / "single", meta, "rotate",
                                            pgauth_strategy="single_user", **QUICK)
            phases["single"] = time.monotonic()
            during_single = load.by_route()
            load.mark()
            # every worker logs in again after single_user (its failures are allowed)
            back_after_single = load.wait_until_every_worker_logged_in()
            after_single = load.by_route()
            load.mark()
            alternating, alternating_report = runbook(
                lab, tmp_path / "alternating", meta, "rotate",
                pgauth_strategy="alternating_users", **QUICK)
            phases["alternating"] = time.monotonic()
            back_after_alternating = load.wait_until_every_worker_logged_in()
            during_alternating = load.by_route()
        stats = load.report()
        new = primary(meta, lab)
        pooled_login = through_pooler(lab, meta, new.username, new.password)
    phases = {name: round(at - phases["inline"], 1) for name, at in phases.items()}
    single_failed = {route: during_single[route]["failed_since_mark"]
                     + after_single[route]["failed_since_mark"] for route in during_single}
    print("single_user failed logins by route:", single_failed)
    print("alternating_users by route:", during_alternating)
    print("load:", stats)
    print("seconds:", phases)
    rotated_with_the_pooler(single, single_report)
    rotated_with_the_pooler(alternating, alternating_report)
    assert back_after_single, after_single
    assert back_after_alternating, during_alternating
    assert after_single["pgbouncer"]["workers_ok_since_mark"] == POOLED
    assert after_single["direct"]["workers_ok_since_mark"] == DIRECT
    # alternating_users: not one failed login, through the pooler or direct
    assert {route: row["failed_since_mark"] for route, row in during_alternating.items()} == {
        "pgbouncer": 0, "direct": 0}, during_alternating
    assert during_alternating["pgbouncer"]["ok_since_mark"] > POOLED, during_alternating
    assert stats["store_read_errors"] == 0, stats
    assert new.username == "app_user_clone" and pooled_login
    no_leak(lab, single.stdout + alternating.stdout, single_report)
    no_leak(lab, alternating.stdout, alternating_report)
