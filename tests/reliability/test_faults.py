"""Rotations broken at every step boundary, and by the servers under them, then run again.

Each fault: the lab's `healthy` scenario (4 stores), a monitor sampling the invariant all
along (some store holds a credential that logs in), the broken run, the re-run a schedule
would start (with min_age, so a finished rotation is not done twice), and the end state:
every store agrees, no pending value is left, the credential logs in.  The tally is printed
at the end of the session and written to .build/test-results/faults.json.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from harness import (
    PENDING_STORES,
    InvariantMonitor,
    send,
    start_rotation,
    wait_stopped,
)
from labfixtures import lab_client, scenario
from runbooks import logs_in, read_stores
from tally import record

# Each kill point leaves a different state (the rows of docs/rotate.md's state machine).
# The other stores switch in parallel (switched_first fires inside that promote, once the
# first of them has switched: the others are still being written), then "switched" (all
# switched, every pending value still there), then the pending values are dropped in
# parallel (tidied:<store> inside that), then the promote steps end (promote:app-env: all
# done).  promote:vault-app and promote:app-config were the same state as promote:app-env.
STATES = {
    "lock": "locked, nothing read",
    "ensure_clone": "clone made, nothing staged",
    "stage:aws-app": "pending in the primary only",
    "stage_others": "pending in every pending-capable store",
    "set_database": "database has the pending password, not yet tested",
    "test_login": "pending password tested, no store promoted",
    "promote:aws-app": "primary promoted, the others not",
    "switched_first": "inside the parallel promote: one other store switched",
    "switched": "every store switched, every pending value left",
    "tidied:vault-app": "inside the parallel tidy: some pending values dropped",
    "promote:app-env": "every store switched, pending values dropped",
}
SINGLE_USER_POINTS = ["lock", "stage:aws-app", "stage_others", "set_database", "test_login",
                      "promote:aws-app", "switched_first", "switched", "tidied:vault-app",
                      "promote:app-env"]
ALTERNATING_POINTS = ["lock", "ensure_clone", *SINGLE_USER_POINTS[1:]]
# killed before anything was staged: the re-run has nothing to finish and rotates afresh
NOTHING_STAGED = ("lock", "ensure_clone")
# what the re-run does after each kill point (resumed where not listed)
RERUN = {"promote:aws-app": {"converged"}, "switched_first": {"converged"},
         **dict.fromkeys(NOTHING_STAGED, frozenset({"not_due"})),
         **dict.fromkeys(SINGLE_USER_POINTS[7:], frozenset({"not_due"}))}


def lab_service(name: str):
    from lab.postgres import Postgres
    from lab.services import Moto, OpenBao
    from lab.settings import Lab
    return {"openbao": OpenBao, "moto": Moto, "postgresql": Postgres}[name](Lab.from_env())


def end_state(meta: dict, lab: dict) -> tuple[bool, object, str]:
    """(converged, the stores' credential, why not)"""
    stores = read_stores(meta, lab)
    creds = list(stores.values())
    if any(cred is None for cred in creds):
        empty = sorted(name for name, cred in stores.items() if cred is None)
        return False, None, f"a store holds nothing: {empty}"
    if len({(cred.username, cred.password) for cred in creds}) != 1:
        return False, creds[0], "the stores disagree"
    specs = [spec for spec in meta["stores"] if spec["name"] in PENDING_STORES]
    if any(cred is not None for cred in read_stores({"stores": specs}, lab, "pending").values()):
        return False, creds[0], "a pending value is left"
    # reading the pending stage hides an AWSPENDING label left on the current version
    stages = lab_client(lab, "secretsmanager").describe_secret(
        SecretId=meta["stores"][0]["secret_id"])["VersionIdsToStages"]
    if any("AWSPENDING" in labels for labels in stages.values()):
        return False, creds[0], "an AWSPENDING label is left"
    if not logs_in(lab, creds[0].username, creds[0].password):
        return False, creds[0], "the stores' credential does not log in"
    return True, creds[0], ""


def inject(lab: dict, tmp_path: Path, fault: str, strategy: str, point: str,
           break_server=None, repair_server=None, extra_stores=None) -> dict:
    """Runs one fault from start to end state and records it.  extra_stores(meta, lab), when
    given, makes more stores (holding the scenario's credential) and returns their dicts."""
    with scenario("healthy") as meta:
        if extra_stores:
            meta = {**meta, "stores": [*meta["stores"], *extra_stores(meta, lab)]}
        old = read_stores(meta, lab)["aws-app"]
        env = {"PGAUTH_FAILPOINT": point}
        if break_server:
            env["PGAUTH_FAILPOINT_ACTION"] = "stop"
        with InvariantMonitor(meta, lab) as monitor:
            run = start_rotation(lab, tmp_path / "broken", meta, env=env,
                                 pgauth_strategy=strategy)
            try:
                if break_server:
                    module = wait_stopped(run)
                    break_server()
                    send(module, signal.SIGCONT)
                output, _err = run.communicate(timeout=300)
            finally:
                if repair_server:
                    repair_server()
            broken_rc = run.returncode
            clients_ok = True
            if strategy == "alternating_users":
                # the clients' current credential always works with alternating users
                current = read_stores(meta, lab)["aws-app"]
                clients_ok = logs_in(lab, current.username, current.password)
            again = start_rotation(lab, tmp_path / "again", meta, pgauth_strategy=strategy,
                                   pgauth_rotation_min_age="1h")
            again_output, _err = again.communicate(timeout=300)
        ok, new, why = end_state(meta, lab)
    report = tmp_path / "again" / "reports" / "localhost" / "rotate.json"
    outcome = json.loads(report.read_text()).get("outcome") if report.exists() else None
    result = {"fault": fault, "strategy": strategy, "point": point,
              "state": STATES.get(point, point), "broken_rc": broken_rc,
              "monitor_error": monitor.error,
              "rerun_rc": again.returncode, "rerun_outcome": outcome, "converged": ok,
              "why": why, "samples": monitor.samples, "held_samples": monitor.counts["held"],
              "unknown_samples": monitor.counts["unknown"],
              "lost_samples": monitor.counts["lost"], "clients_ok": clients_ok,
              "lost": bool(monitor.counts["lost"]) or new is None or "log in" in why,
              "new_password": new is not None and new.password != old.password}
    record(result)
    result["output"], result["again_output"] = output, again_output
    return result


def check(result: dict) -> None:
    name = result["fault"]
    stopped = result["monitor_error"]
    assert stopped is None, f"{name}: the monitor stopped: {stopped}"
    assert result["lost_samples"] == 0, f"{name}: no store held a working credential at times"
    assert result["clients_ok"], f"{name}: the clients' current credential stopped working"
    assert result["rerun_rc"] == 0, f"{name}: the re-run failed:\n{result['again_output'][-3000:]}"
    assert result["converged"], f"{name}: not converged after the re-run: {result['why']}"
    assert result["held_samples"] > 0, f"{name}: the monitor never saw a working credential"


@pytest.mark.parametrize(("strategy", "point"),
                         [("single_user", point) for point in SINGLE_USER_POINTS]
                         + [("alternating_users", point) for point in ALTERNATING_POINTS])
def test_sigkill_at_a_step_boundary(lab, tmp_path, strategy, point):
    result = inject(lab, tmp_path, f"SIGKILL after {point} ({strategy})", strategy, point)
    assert result["broken_rc"] != 0, f"the run was not killed at {point}"
    check(result)
    expected = RERUN.get(point, {"resumed"})
    assert result["rerun_outcome"] in expected, (point, result["rerun_outcome"])
    # a pending password is finished, never replaced by a second new one; a run killed
    # before staging leaves the old password, which min_age keeps
    assert result["new_password"] != (point in NOTHING_STAGED)


def stop_and_resume(name: str):
    """SIGSTOP a server (it hangs: the worst way to be down), and SIGCONT it afterwards."""
    service = lab_service(name)
    pid = service.pid()
    return (lambda: send(pid, signal.SIGSTOP)), (lambda: send(pid, signal.SIGCONT))


def restart_postgresql():
    def restart() -> None:
        started = time.monotonic()
        lab_service("postgresql").restart()
        assert time.monotonic() - started < 60
    return restart, None


SERVER_FAULTS = [
    # OpenBao hangs before the second store is staged: the primary's pending is discarded
    ("openbao", "single_user", "stage:aws-app"),
    # OpenBao hangs after the database changed: its promote fails, the re-run finishes it
    ("openbao", "single_user", "set_database"),
    # moto hangs before anything is staged
    ("moto", "single_user", "lock"),
    # moto hangs after the database changed: the primary cannot be promoted
    ("moto", "single_user", "test_login"),
    ("moto", "alternating_users", "set_database"),
    # PostgreSQL restarts under the admin session, before and after ALTER ROLE
    ("postgresql", "single_user", "stage_others"),
    ("postgresql", "single_user", "set_database"),
    ("postgresql", "alternating_users", "ensure_clone"),
]


@pytest.mark.parametrize(("server", "strategy", "point"), SERVER_FAULTS)
def test_a_server_fails_mid_run(lab, tmp_path, server, strategy, point):
    if server == "postgresql":
        breaks, repairs = restart_postgresql()
        what = f"PostgreSQL restarted after {point} ({strategy})"
    else:
        breaks, repairs = stop_and_resume(server)
        what = f"{'OpenBao' if server == 'openbao' else 'moto'} stopped after {point} ({strategy})"
    result = inject(lab, tmp_path, what, strategy, point, breaks, repairs)
    # a restart after ALTER ROLE may go unnoticed: the test login is a new connection and the
    # promotes need no database; every other fault here fails the run
    finishes = server == "postgresql" and point == "set_database"
    assert (result["broken_rc"] == 0) == finishes, (what, result["output"][-2000:])
    check(result)


def ssm_copy(meta: dict, lab: dict) -> list[dict]:
    """A Parameter Store copy of the password (no pending stage: written during promote)."""
    import uuid
    name = f"/faults/{uuid.uuid4().hex[:8]}/app_user"
    secret = lab_client(lab, "secretsmanager").get_secret_value(
        SecretId=meta["stores"][0]["secret_id"])["SecretString"]
    # RDS-style JSON, as the primary: alternating_users switches the user inside it
    lab_client(lab, "ssm").put_parameter(Name=name, Type="SecureString", Value=secret)
    return [{"name": "ssm-app", "type": "aws_ssm", "parameter": name, "format": "json"}]


# an SSM store among the others: killed before the database changed, with the primary
# promoted and SSM not, and inside the parallel promote
SSM_POINTS = [("single_user", "set_database"), ("single_user", "promote:aws-app"),
              ("alternating_users", "switched_first")]


@pytest.mark.parametrize(("strategy", "point"), SSM_POINTS)
def test_sigkill_with_a_parameter_store_copy(lab, tmp_path, strategy, point):
    result = inject(lab, tmp_path, f"SIGKILL after {point} ({strategy}, with SSM)", strategy,
                    point, extra_stores=ssm_copy)
    assert result["broken_rc"] != 0, f"the run was not killed at {point}"
    check(result)
    assert result["rerun_outcome"] in RERUN.get(point, {"resumed"}), result["rerun_outcome"]
