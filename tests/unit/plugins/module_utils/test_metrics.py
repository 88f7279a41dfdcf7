"""render_metrics: the textfile format, bounded labels, no secret, and promtool's verdict."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.metrics import render_metrics

SECRET = "Hunter2-very-secret"
REPORT = {
    "runbook": "diagnose", "verdict": "broken", "generated_at": "2026-12-01T12:00:00+00:00",
    "target": {"role": "app_user", "password": SECRET},
    "findings": [{"id": "store_password_mismatch", "severity": "critical"},
                 {"id": "not-a-catalogue-id", "severity": "critical"},
                 {"id": "auth_failures_in_logs", "severity": "warning"}],
    "facts": {
        "role": {"exists": True, "can_login": True, "valid_until": "2026-12-05T00:00:00+00:00"},
        "stores": [{"store": "aws", "readable": True, "exists": True,
                    "changed_at": "2026-11-01T00:00:00Z", "password_fingerprint": "a" * 64},
                   {"store": 'weird "name"\\', "readable": True, "exists": True,
                    "changed_at": "2026-11-02T00:00:00.123456789Z",
                    "password_fingerprint": "b" * 64},
                   {"store": "broken", "readable": False, "error": f"bad {SECRET}"}],
        "logs": {"since": "2026-12-01T11:00:00+00:00", "roles": {
            "app_user": {"failures": 7, "by_reason": {"store_password_mismatch": 5}},
            "'; DROP attacker-chosen": {"failures": 99, "by_reason": {"x": 99}}}}},
}


def test_values_and_bounded_labels():
    text = render_metrics(REPORT, "db-1")
    assert SECRET not in text and "attacker" not in text and "not-a-catalogue-id" not in text
    assert 'pgauth_verdict{runbook="diagnose",target="db-1",role="app_user",verdict="broken"} 1' \
        in text
    assert 'verdict="healthy"} 0' in text
    assert 'pgauth_stores_agree{runbook="diagnose",target="db-1",role="app_user"} 0' in text
    assert 'store="weird \\"name\\"\\\\"' in text  # label values escaped
    assert 'reason="store_password_mismatch"} 5' in text and 'reason="other"} 2' in text
    assert "pgauth_role_valid_until_timestamp_seconds" in text
    assert 'store="broken"} 0' in text
    assert "} 1796428800\n" in text  # 2026-12-05T00:00:00Z
    for line in text.splitlines():
        if not line.startswith("#"):
            assert line.startswith("pgauth_"), line


def test_verify_checks_and_an_empty_report():
    verify = {"runbook": "verify", "verdict": "healthy", "target": {"role": "r"},
              "checks": [{"check": "login:aws", "ok": True, "severity": "critical"},
                         {"check": "logs_quiet", "ok": False, "severity": "warning"}]}
    text = render_metrics(verify, "h")
    expected = ('pgauth_check_ok{runbook="verify",target="h",role="r",check="logs_quiet",'
                'severity="warning"} 0')
    assert expected in text
    assert render_metrics({"runbook": "diagnose"}, "h").count("pgauth_verdict{") == 3


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing")
def test_promtool_accepts_it():
    checked = subprocess.run(["promtool", "check", "metrics"],
                             input=render_metrics(REPORT, "db-1"), capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing")
def test_the_consumer_alert_fires_on_verify_metrics_of_an_unconfirmed_consumer(tmp_path):
    import pathlib

    import yaml
    rules = pathlib.Path(__file__).resolve().parents[4] / "extensions" / "prometheus" / \
        "pgauth-alerts.yml"
    loaded = yaml.safe_load(rules.read_text())
    for group in loaded["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # checked by promtool check rules
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(loaded))
    verify = {"runbook": "verify", "verdict": "broken", "target": {"role": "app_user"},
              "checks": [{"check": "consumer:pooler", "ok": False, "severity": "critical"},
                         {"check": "consumer:api", "ok": True, "severity": "critical"}]}
    series = [line for line in render_metrics(verify, "db-1").splitlines()
              if line.startswith("pgauth_check_ok")]
    inputs = [{"series": line.rsplit(" ", 1)[0], "values": line.rsplit(" ", 1)[1] + "x5"}
              for line in series]
    labels = {"runbook": "verify", "target": "db-1", "role": "app_user",
              "check": "consumer:pooler", "severity": "critical"}
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": [str(tmp_path / "rules.yml")], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": [
            {"eval_time": "2m", "alertname": "PgauthConsumerUnconfirmed",
             "exp_alerts": [{"exp_labels": labels}]}]}]}))
    tested = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")],
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
