from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose, verdict
from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    HOST_DIR_MAX,
    build_report,
    evidence_line,
    md_code,
    md_fence,
    md_line,
    md_text,
    render_markdown,
    report_host_dir,
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


# -- host directories -------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "expected"), [
    ("db1.example.com", "db1.example.com"),
    ("db_1", "db_1"),
    ("user@db:5432", "user@db:5432"),
    # the documented rule, pinned: sha256("db 1") starts with 4e0107b2
    ("db 1", "db_1-4e0107b2"),
    ("db/1", "db_1-0f5cc971"),
    ("../../etc", "_.__._etc-74ccf3c5"),
    (".hidden", "_hidden-16924190"),
    ("", "_-e3b0c442"),
])
def test_report_host_dir_examples(host, expected):
    assert report_host_dir(host) == expected


def test_report_host_dir_is_injective_on_look_alikes():
    hosts = ["db 1", "db/1", "db_1", "db\\1", "db\t1", "db\n1", "DB_1", "Db_1", "db_1 ",
             "db_1-4e0107b2", "db_1-0f5cc971", "db-deadbeef", "db-deadbeef-00000000",
             ".db_1", "_db_1", "-db_1", "db..1", "db_.1", "d\u00e9", "d\u00e8", "",
             "x" * 128, "x" * 129, "x" * 129 + "y", "x" * 300]
    names = [report_host_dir(host) for host in hosts]
    assert len(set(names)) == len(hosts)
    # a case-insensitive file system (macOS) must not fold two hosts together either
    assert len({name.lower() for name in names}) == len(hosts)


@pytest.mark.parametrize("host", ["../x", "..", ".", "a/../b", "/etc/cron.d", "x" * 1000,
                                  "\u2028", "a\x00b", "-rf", "\udcff"])
def test_report_host_dir_is_one_safe_name(host):
    name = report_host_dir(host)
    assert "/" not in name and "\x00" not in name and ".." not in name
    assert not name.startswith((".", "-")) and 0 < len(name) <= HOST_DIR_MAX + 9
    assert re.fullmatch(r"[A-Za-z0-9_.@:-]+", name)


def test_a_name_that_looks_hashed_is_hashed_itself():
    assert report_host_dir("node-deadbeef") != "node-deadbeef"
    assert report_host_dir("node-deadbeef").startswith("node-deadbeef-")


# -- Markdown that data cannot break out of -----------------------------------------------------

HOSTILE = "``` </details> [link](javascript:alert(1)) <img src=x onerror=alert(1)> *b* | c"


def unescaped(text: str, char: str) -> bool:
    """char appears without a backslash before it (a backslash itself escaped counts)."""
    return re.search(r"(?<!\\)(?:\\\\)*" + re.escape(char), text) is not None


def fenced_blocks(markdown: str) -> tuple[list[str], list[str]]:
    """(the text outside fences, the fences' bodies), read the CommonMark way: a fence ends
    at a line of at least as many backticks as opened it."""
    outside, bodies, opened, body = [], [], None, []
    for line in markdown.split("\n"):
        run = re.match(r"^ {0,3}(`{3,})", line)
        if opened is None:
            if run:
                opened, body = run.group(1), []
            else:
                outside.append(line)
        elif run and len(run.group(1)) >= len(opened) and not line.strip("` "):
            bodies.append("\n".join(body))
            opened = None
        else:
            body.append(line)
    assert opened is None, "a fence is left open"
    return outside, bodies


def test_md_text_escapes_what_markdown_or_html_would_read():
    text = md_text(HOSTILE + "\r\n# heading\u2028next")
    assert "\n" not in text and "\r" not in text and "\u2028" not in text
    for char in "`<>[]*|#":
        assert not unescaped(text, char), char
    assert md_text("app_user") == "app_user"
    assert md_text("_x_") == "\\_x\\_"


def test_md_line_neutralises_block_markers():
    assert md_line("- x") == "\\- x"
    assert md_line("1. x") == "1\\. x"
    assert md_line("    code") == "code"
    assert md_line("# h") == "\\# h"


def test_md_code_cannot_be_closed_from_inside():
    assert md_code("a`b") == "``a`b``"
    assert md_code("```") == "```` ``` ````"
    assert md_code("x\ny") == "`x y`"


def test_md_fence_is_longer_than_any_backtick_run():
    assert md_fence("a ```` b") == ["`````", "a ```` b", "`````"]
    assert md_fence("{}", "json") == ["```json", "{}", "```"]


def test_markdown_keeps_hostile_text_out_of_fences_and_html():
    finding = {"id": HOSTILE, "severity": "critical", "title": "- " + HOSTILE,
               "evidence": {HOSTILE: HOSTILE + "\n```\n</details>"},
               "fix": {"command": f"echo '{HOSTILE}'\n````\n", "manual": HOSTILE},
               "folded": [{"id": HOSTILE, "title": HOSTILE, "evidence": {"e": HOSTILE}}]}
    facts = {"admin_error": "\n```\n" + HOSTILE,
             "iam": {"iam_enabled": True, "connect_arn": "``" + HOSTILE},
             "stores": [{"store": HOSTILE}], "probes": [{"store": HOSTILE, "message": HOSTILE}]}
    report = build_report("diagnose", {"role": "\n```\n" + HOSTILE}, "broken", [finding],
                          {"errors": ["\n```\n" + HOSTILE], "facts": facts,
                           "checks": [{"check": HOSTILE, "ok": False, "severity": "critical",
                                       "detail": HOSTILE}],
                           "steps": [{"step": "\n```\n" + HOSTILE}]}, NOW)
    outside, bodies = fenced_blocks(render_markdown(report))
    assert len(bodies) == 2  # the fix command and the steps, whole
    assert bodies[0] == f"echo '{HOSTILE}'\n````\n"
    assert json.loads(bodies[1])[0]["step"] == "\n```\n" + HOSTILE
    for line in outside:
        spans = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", line)  # inline code spans
        for char in "<[":
            assert not unescaped(spans, char), line
