"""Two rotations of one role started together, ten times: exactly one rotates; the other
finds the lock taken or, once the winner is done, a fresh working secret (not due); the
stores agree afterwards."""
from __future__ import annotations

import concurrent.futures
import json

import pytest
from harness import start_rotation
from labfixtures import scenario
from test_faults import end_state


@pytest.mark.parametrize("attempt", range(10))
def test_two_rotations_started_together(lab, tmp_path, attempt):
    # the credential is broken, so each run wants to rotate
    with scenario("password_mismatch") as meta:
        dirs = [tmp_path / run for run in "ab"]

        def run(path):
            started = start_rotation(lab, path, meta, pgauth_rotation_min_age="1h")
            return started.communicate(timeout=300)[0]

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            outputs = list(pool.map(run, dirs))
        ok, _cred, why = end_state(meta, lab)
    reports = [path / "reports" / "localhost" / "rotate.json" for path in dirs]
    outcomes = [json.loads(report.read_text()).get("outcome") if report.exists() else None
                for report in reports]
    assert sorted(map(str, outcomes)).count("rotated") == 1, \
        (outcomes, [output[-1500:] for output in outputs])
    for outcome, output in zip(outcomes, outputs, strict=True):
        if outcome != "rotated":
            assert outcome == "not_due" or \
                "another rotation of role 'app_user' is in progress" in output, output[-2000:]
    assert ok, why
