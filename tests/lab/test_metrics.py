"""Metrics from real diagnose runs (issue 21): each scenario's textfile passes the real
`promtool check metrics`, and `promtool test rules` over series made from it fires exactly the
expected alerts of the shipped rules (none on healthy)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from labfixtures import scenario
from runbooks import assert_no_leak, lab_secrets, run_playbook, vars_for

RULES = Path(__file__).resolve().parents[2] / "extensions" / "prometheus" / "pgauth-alerts.yml"
PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# scenario -> the alerts its diagnose metrics must fire, and no other
EXPECTED = {
    "healthy": set(),
    "password_mismatch": {"PgauthTargetBroken"},
    "role_password_expiring": {"PgauthPasswordExpiringSoon"},
    "auth_failures_in_logs": {"PgauthLoginsFailing"},
}

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) missing")


def samples(text: str) -> list[tuple[str, dict, float]]:
    found = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(LABEL.findall(match.group("labels") or ""))
        found.append((match.group("name"), labels, float(match.group("value"))))
    return found


def expected_alerts(alert: str, series: list[tuple[str, dict, float]]) -> list[dict]:
    """The labels each alert must carry, from the series alone (the rules' own arithmetic
    is what promtool checks)."""
    def where(name, test):
        return [labels for metric, labels, value in series if metric == name and test(value)]
    if alert == "PgauthTargetBroken":
        return [{**labels, "severity": "critical"}
                for labels in where("pgauth_verdict", lambda v: v == 1)
                if labels["verdict"] == "broken"]
    if alert == "PgauthLoginsFailing":
        return [{key: labels[key] for key in ("target", "role", "reason")} | {
            "severity": "critical"} for labels in where("pgauth_log_auth_failures",
                                                        lambda v: v > 0)]
    if alert == "PgauthStoresDisagree":
        return [{**labels, "severity": "critical"}
                for labels in where("pgauth_stores_agree", lambda v: v == 0)]
    if alert == "PgauthPasswordExpiringSoon":
        return [{**labels, "severity": "warning"}
                for labels in where("pgauth_role_valid_until_timestamp_seconds",
                                    lambda v: v < 7 * 86400)]
    return []


def rule_test(series: list[tuple[str, dict, float]], generated: float, alerts: list[str],
              rules: Path) -> dict:
    """A promtool test: every series constant for 10 minutes; points in time moved so that
    the run happened at t=0 (promtool's clock starts at the epoch)."""
    inputs, shifted = [], []
    for name, labels, value in series:
        if name.endswith("_timestamp_seconds"):
            value -= generated
        shifted.append((name, labels, value))
        body = ",".join(f'{key}="{val}"' for key, val in labels.items())
        inputs.append({"series": f"{name}{{{body}}}", "values": f"{value:g}x10"})
    checks = [{"eval_time": "2m", "alertname": alert,
               "exp_alerts": [{"exp_labels": labels}
                              for labels in expected_alerts(alert, shifted)]}
              for alert in alerts]
    return {"rule_files": [str(rules)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": checks}]}


def labels_only(tmp_path: Path) -> tuple[Path, list[str]]:
    """The shipped rules without annotations (promtool compares those too; their templates
    are checked by `promtool check rules`), and the alert names."""
    rules = yaml.safe_load(RULES.read_text())
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            names.append(rule["alert"])
    path = tmp_path / "rules-labels.yml"
    path.write_text(yaml.safe_dump(rules))
    return path, names


def test_the_shipped_rules_pass_promtool():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_scenario_metrics_fire_exactly_the_expected_alerts(lab, tmp_path):
    rules, alerts = labels_only(tmp_path)
    fired = {}
    for name in EXPECTED:
        out = tmp_path / name
        with scenario(name) as meta:
            variables = {**vars_for(meta, lab, out / "reports"),
                         "pgauth_metrics_file": str(out / "metrics") + "/"}
            done = run_playbook(lab, tmp_path, variables)
        assert done.returncode == 0, done.stdout[-2000:]
        prom = out / "metrics" / "pgauth_localhost_diagnose.prom"
        text = prom.read_text()
        assert prom.stat().st_mode & 0o777 == 0o644
        checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert_no_leak({f"{name}.prom": text}, lab_secrets(lab))
        series = samples(text)
        generated = next(value for metric, _labels, value in series
                         if metric == "pgauth_report_generated_timestamp_seconds")
        test_file = out / "rules-test.yml"
        test_file.write_text(yaml.safe_dump(rule_test(series, generated, alerts, rules)))
        tested = subprocess.run([PROMTOOL, "test", "rules", str(test_file)],
                                capture_output=True, text=True, check=False)
        assert tested.returncode == 0, f"{name}:\n{tested.stdout}{tested.stderr}"
        fired[name] = {alert for alert in alerts if expected_alerts(
            alert, [(m, labels, v - generated if m.endswith("_timestamp_seconds") else v)
                    for m, labels, v in series])}
    assert fired == EXPECTED, fired
