"""The diagnose runbook (playbook credops.pgauth.diagnose) against every lab scenario.

Each scenario is named after the finding diagnose must put first.  Every run is at -vvv and
is checked for leaks: no password of the lab (admin or any store's), no AWS secret key and no
IAM token may appear in the output, the reports or the server log.  And diagnose is
read-only: the role, every store and the config file are the same after it ran.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from labfixtures import run_labctl, scenario
from runbooks import (
    assert_no_leak,
    lab_secrets,
    read_report,
    run_playbook,
    snapshot,
    vars_for,
)

IAM_SCENARIOS = {"iam_role_blocks_password", "iam_role_not_granted", "iam_disabled_on_instance",
                 "iam_tls_missing", "iam_token_stale", "iam_policy_denies_connect"}
RESULTS = Path(__file__).resolve().parents[2] / ".build" / "test-results" / "diagnose"
SCENARIOS = sorted(line.split()[0] for line in run_labctl("scenarios").stdout.splitlines())


@pytest.mark.parametrize("name", SCENARIOS)
def test_diagnose_names_the_scenario_first(name, lab, tmp_path):
    if name in IAM_SCENARIOS and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    with scenario(name) as meta:
        secrets = lab_secrets(lab)
        before = snapshot(lab)
        log = Path(lab["PGAUTH_LAB_PGLOG"])
        log_offset = log.stat().st_size
        done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"), "-vvv")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        after = snapshot(lab)
        with log.open(errors="replace") as handle:
            handle.seek(log_offset)
            server_log = handle.read()
    report_json = tmp_path / "reports" / "localhost" / "diagnose.json"
    report = read_report(report_json)
    markdown = report_json.with_suffix(".md").read_text()
    assert before == after, "diagnose changed something"
    assert_no_leak({"the -vvv output": done.stdout + done.stderr, "diagnose.json":
                    report_json.read_text(), "diagnose.md": markdown,
                    "the server log": server_log}, secrets)
    ids = [finding["id"] for finding in report["findings"]]
    # the scenario -> findings table (docs/findings.md, the issue notes) is made from these
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"scenario": name, "verdict": report["verdict"],
         "findings": [[f["id"], f["severity"]] for f in report["findings"]]}))
    if not meta["expect"]:
        assert report["verdict"] == "healthy", ids
        assert not [f for f in report["findings"] if f["severity"] in ("critical", "warning")]
    else:
        assert ids and ids[0] == meta["expect"][0], f"{name}: diagnose said {ids}"
        first = report["findings"][0]
        assert first["fix"]["command"] or first["fix"]["manual"]
        assert f"`{first['id']}`" in markdown and first["title"] in markdown
    assert set(report) >= {"runbook", "target", "generated_at", "verdict", "findings"}
    assert report["runbook"] == "diagnose" and not report["errors"], report["errors"]
    summary_head = f"app_user@{meta['target']['host']}:{meta['target']['port']}"
    assert summary_head in done.stdout and report["verdict"].upper() in done.stdout


def test_check_mode_is_the_same_read(lab, tmp_path):
    with scenario("password_mismatch") as meta:
        before = snapshot(lab)
        done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"), "--check")
        assert done.returncode == 0, done.stdout[-3000:]
        assert snapshot(lab) == before
    report = read_report(tmp_path / "reports" / "localhost" / "diagnose.json")
    assert report["findings"][0]["id"] == "store_password_mismatch"


def test_a_fleet_is_inventory_and_forks(lab, tmp_path):
    """Two targets in group pgauth_targets, one run: a report each, and the play stats say
    which host is broken (what an AWX workflow branches on)."""
    reports = tmp_path / "reports"
    inventory = tmp_path / "inventory.yml"
    with scenario("healthy") as meta:
        ghost = {**meta["target"], "role": "ghost_user"}
        inventory.write_text(yaml.safe_dump({"pgauth_targets": {"hosts": {
            "app-db": {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"]},
            "ghost-db": {"pgauth_target": ghost, "pgauth_stores": []}}}}))
        # extra vars would override the host vars: the shared file has no target or stores
        variables = vars_for(meta, lab, reports)
        del variables["pgauth_target"], variables["pgauth_stores"]
        done = run_playbook(lab, tmp_path, variables, "--forks", "2", inventory=str(inventory))
    assert done.returncode == 0, done.stdout[-3000:]
    verdicts = {host: read_report(reports / host / "diagnose.json")["verdict"]
                for host in ("app-db", "ghost-db")}
    assert verdicts == {"app-db": "healthy", "ghost-db": "broken"}
    stats = done.stdout[done.stdout.index("CUSTOM STATS"):]
    assert re.search(r'"pgauth_diagnose_broken":\s*\[\s*"ghost-db"\s*\]', stats), stats
    assert re.search(r'"pgauth_diagnose_healthy":\s*\[\s*"app-db"\s*\]', stats), stats
