"""Rotations with two consumers killed (SIGKILL) after promote and after each consumer's
refresh, then run again as a schedule would (min_age 1h): the re-run refreshes and confirms
what was left, never rotates again (the database's verifiers, the secrets' versions and the
files are what the killed run left), and every consumer works: the pooler logs the stores'
credential in, the app answers 200, and at the end verify says so too.

The consumers: the lab's PgBouncer (the stores name its port) and an application restarted
by a command consumer.  The application is a small HTTP server whose health answers 200 only
once it was restarted after its config (the dotenv store) last changed, so a restart that
never ran is seen by observe.  One scenario for every kill point (each killed run is a fresh
rotation after the previous re-run), to keep the lab set-up out of the loop.
"""
from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness import InvariantMonitor, start_rotation
from labfixtures import scenario
from runbooks import read_stores, run_playbook, snapshot, vars_for
from tally import record
from test_consumers import through_pooler
from test_consumers_load import pooler_in_line
from test_faults import end_state

APP_DB = "appdb"
# (kill point, what it leaves, the re-run's outcome, whether the re-run restarts the app)
POINTS = [
    ("promote:app-env", "promoted, no consumer refreshed", "consumers_refreshed", True),
    ("refresh:lab-pgbouncer", "the pooler refreshed, the app not restarted",
     "consumers_refreshed", True),
    ("refresh:app-restart", "both refreshed, neither confirmed", "not_due", False),
]


class RestartedApp(http.server.BaseHTTPRequestHandler):
    """200 when the restart marker is newer than the app's config, else 503."""
    marker: Path
    config: Path

    def do_GET(self):  # the stdlib's name
        cls = type(self)
        try:
            fresh = int(cls.marker.read_text().strip()) > cls.config.stat().st_mtime_ns
        except (OSError, ValueError):
            fresh = False
        self.send_response(200 if fresh else 503)
        self.end_headers()
        self.wfile.write(b"ok" if fresh else b"stale config")

    def log_message(self, *_args):
        return None


@pytest.fixture
def restarted_app(lab, tmp_path):
    marker = tmp_path / "restarted-at"
    config = Path(lab["PGAUTH_LAB_DIR"]) / "app" / "app.env"
    handler = type("Handler", (RestartedApp,), {"marker": marker, "config": config})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield marker, f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def consumers_of(meta: dict, marker: Path, url: str) -> list[dict]:
    # the restart writes the time it ran (no secret in argv: the marker's path only)
    restart = {"name": "app-restart", "type": "command",
               "argv": ["sh", "-c", f"date +%s%N > {marker}"], "health_url": url,
               "timeout": 15, "interval": 0.2}
    return [{**meta["consumers"][0], "timeout": 15, "interval": 0.2}, restart]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except urllib.error.URLError:
        return False


def report_of(workdir: Path, playbook: str = "rotate") -> dict:
    path = workdir / "reports" / "localhost" / f"{playbook}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def rerun(lab: dict, workdir: Path, meta: dict, consumers: list, **extra):
    run = start_rotation(lab, workdir, meta, pgauth_consumers=consumers, **extra)
    output, _err = run.communicate(timeout=300)
    return run.returncode, output, report_of(workdir)


def verify(lab: dict, workdir: Path, meta: dict, consumers: list):
    workdir.mkdir(parents=True, exist_ok=True)
    variables = {**vars_for(meta, lab, workdir / "reports"), "pgauth_consumers": consumers}
    variables.pop("pgauth_logs")
    done = run_playbook(lab, workdir, variables, playbook="verify")
    return done, report_of(workdir, "verify")


def test_killed_around_the_consumers_finishes_them_and_never_rotates_again(
        lab, tmp_path, restarted_app):
    marker, url = restarted_app
    with scenario("pooler_auth_stale") as meta:
        consumers = consumers_of(meta, marker, url)
        # the pooler in line and the app restarted: the starting point is healthy
        pooler_in_line(lab, meta)
        marker.write_text(f"{time.time_ns()}\n")
        assert healthy(url)
        for index, (point, state, outcome, restarts) in enumerate(POINTS):
            name = point.replace(":", "_")
            before, old = snapshot(lab), read_stores(meta, lab)["aws-app"]
            with InvariantMonitor(meta, lab) as monitor:
                killed = start_rotation(lab, tmp_path / name / "killed", meta,
                                        env={"PGAUTH_FAILPOINT": point},
                                        pgauth_consumers=consumers)
                killed_output, _err = killed.communicate(timeout=300)
                left = snapshot(lab)
                restarted_before = marker.read_text()
                rc, output, again = rerun(lab, tmp_path / name / "again", meta, consumers,
                                          pgauth_rotation_min_age="1h")
                after = snapshot(lab)
            assert killed.returncode != 0, (point, killed_output[-2000:])
            assert left["roles"] != before["roles"], f"{point}: the killed run never rotated"
            assert rc == 0, (point, output[-3000:])
            assert again["outcome"] == outcome, (point, again.get("outcome"), output[-2000:])
            # never rotated again: the verifiers, the versions and the files are the killed
            # run's
            assert after == left, f"{point}: the re-run changed the stores or the database"
            lines = {line["consumer"]: line for line in again["consumers"]}
            assert all(line["refreshed"] and line["confirmed"] for line in lines.values()), lines
            assert ("app-restart" in lines) == restarts, (point, lines)
            assert (marker.read_text() != restarted_before) == restarts, point
            cred = read_stores(meta, lab)["aws-app"]
            assert through_pooler(lab, meta, cred.username or "app_user", cred.password), point
            assert healthy(url), point
            if index == len(POINTS) - 1:
                # verify's own consumer checks, once (a playbook run costs seconds)
                done, verified = verify(lab, tmp_path / name / "verify", meta, consumers)
                checks = {check["check"]: check["ok"] for check in verified.get("checks", [])}
                assert done.returncode == 0, (point, checks, done.stdout[-2000:])
                assert checks["consumer:lab-pgbouncer"] and checks["consumer:app-restart"], \
                    checks
            assert monitor.error is None and monitor.counts["lost"] == 0, monitor.counts
            converged, current, why = end_state(meta, lab)
            assert converged, (point, why)
            record({"fault": f"SIGKILL after {point} (single_user, 2 consumers)",
                    "strategy": "single_user", "point": point, "state": state,
                    "broken_rc": killed.returncode, "monitor_error": monitor.error,
                    "rerun_rc": rc, "rerun_outcome": again["outcome"], "converged": converged,
                    "why": why, "samples": monitor.samples,
                    "held_samples": monitor.counts["held"],
                    "unknown_samples": monitor.counts["unknown"],
                    "lost_samples": monitor.counts["lost"], "clients_ok": True,
                    "lost": False, "new_password": current.password != old.password})
