from __future__ import annotations

import datetime as dt
import json

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose, verdict
from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    build_report,
    evidence_line,
    render_markdown,
    stats,
    summary,
)

TARGET = {"host": "db.internal", "port": 5432, "dbname": "appdb", "role": "app_user"}
NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone.utc)
MISMATCH_FACTS = {
    "target": {**TARGET, "auth": "password"},
    "role": {"exists": True, "can_login": True, "password_set": True, "password_hash": "scram"},
    "server": {"password_encryption": "scram-sha-256"},
    "stores": [{"store": "aws", "readable": True, "exists": True, "placeholder": False,
                "password_fingerprint": "f1", "version": "v1"}],
    "probes": [{"store": "aws", "ok": False, "category": "store_password_mismatch",
                "message": 'password authentication failed for user "app_user"'}],
}


def mismatch_report(**extra) -> dict:
    findings = diagnose(MISMATCH_FACTS)
    return build_report("diagnose", TARGET, verdict(findings), findings, extra, NOW)


def test_report_has_the_contract_keys_and_is_json():
    report = mismatch_report(errors=[], runbook="ignored")
    assert list(report)[:5] == ["runbook", "target", "generated_at", "verdict", "findings"]
    assert report["runbook"] == "diagnose"  # extra keys never override the contract's
    assert report["generated_at"] == "2026-11-22T09:30:00.000+00:00"
    assert report["verdict"] == "broken"
    json.dumps(report)


def test_summary_names_target_verdict_cause_and_command():
    lines = summary(mismatch_report(), ["/r/diagnose.json"])
    assert lines[0] == "app_user@db.internal:5432/appdb: BROKEN (1 finding)"
    assert lines[1].startswith("[critical] store_password_mismatch: ")
    assert lines[2] == "    evidence: stores: aws"
    assert lines[3].startswith("    fix: ansible-playbook credops.pgauth.rotate -e @vars.yml")
    assert lines[-1] == "report: /r/diagnose.json"


def test_summary_of_a_healthy_target_and_unchecked_parts():
    report = build_report("diagnose", TARGET, "healthy", [], {"errors": ["iam: no region"]}, NOW)
    assert summary(report) == ["app_user@db.internal:5432/appdb: HEALTHY (0 findings)",
                               "[not checked] iam: no region"]


def test_markdown_shows_fix_evidence_and_checks():
    facts = {key: MISMATCH_FACTS[key] for key in ("role", "stores", "probes")}
    text = render_markdown(mismatch_report(facts=facts, timings={"role": 0.1}))
    assert "# diagnose: app_user@db.internal:5432/appdb" in text
    assert "## 1. `store_password_mismatch` (critical)" in text
    assert "```sh\nansible-playbook credops.pgauth.rotate" in text
    assert "| aws | True | v1 | none | False | store_password_mismatch: password authentication" \
        in text
    assert "Timings (s): role 0.1" in text
    assert '"password_fingerprint"' not in text  # facts stay in the JSON


def test_markdown_escapes_table_cells():
    finding = {"id": "store_unreadable", "severity": "critical", "title": "T",
               "evidence": {"error": "a | b\nc"}, "fix": {"manual": "m"}, "folded": []}
    text = render_markdown(build_report("diagnose", TARGET, "broken", [finding], None, NOW))
    assert "| error | a \\| b c |" in text


def test_evidence_line_is_bounded():
    assert evidence_line({"a": "x" * 500}).endswith("…")
    assert len(evidence_line({"a": "x" * 500})) == 160
    assert evidence_line({"a": None, "b": [], "c": [1, 2]}) == "c: 1, 2"


def test_stats_aggregate_per_runbook_and_verdict():
    data = stats(mismatch_report(), "db1", ["/r/diagnose.json"])
    assert data == {"pgauth_diagnose": {"db1": {"verdict": "broken",
                                                "report": "/r/diagnose.json",
                                                "findings": ["store_password_mismatch"]}},
                    "pgauth_diagnose_broken": ["db1"]}
