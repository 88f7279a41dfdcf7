# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' reports: one JSON shape (DESIGN §4), its Markdown rendering and the short
summary printed at the end of a run.  Pure functions; the report action writes the files."""
from __future__ import annotations

import datetime as dt
import json

REPORT_KEYS = ("runbook", "target", "generated_at", "verdict", "findings")
# target keys worth showing; the rest of the target dict stays in the JSON
_TARGET_LABEL = ("role", "host", "port", "dbname")


def target_label(target: dict) -> str:
    role, host, port, dbname = (target.get(key) for key in _TARGET_LABEL)
    return f"{role or '?'}@{host or '?'}:{port or 5432}/{dbname or '?'}"


def build_report(runbook: str, target: dict, verdict: str, findings: list,
                 extra: dict | None = None, now: dt.datetime | None = None) -> dict:
    # milliseconds: verify starts its log window here, and a second-wide stamp would let in
    # the failed login the rotation itself saw just before (the stale secret it replaced)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds")
    report = {"runbook": runbook, "target": target, "generated_at": stamp,
              "verdict": verdict, "findings": findings}
    for key, value in (extra or {}).items():
        if key not in REPORT_KEYS:
            report[key] = value
    return report


def _scalar(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(item) for item in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return "none" if value is None else str(value)


def evidence_line(evidence: dict, limit: int = 160) -> str:
    """The evidence on one line, for the summary; nested values as compact JSON."""
    text = "; ".join(f"{key}: {_scalar(value)}" for key, value in (evidence or {}).items()
                     if value not in (None, [], {}, ""))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def fix_line(fix: dict) -> str:
    return (fix or {}).get("command") or (fix or {}).get("manual") or "none needed"


def summary(report: dict, paths: list[str] | None = None) -> list[str]:
    """A few lines for the end of the run: the verdict, each root cause and its fix."""
    findings = report.get("findings") or []
    head = (f"{target_label(report.get('target') or {})}: {report['verdict'].upper()} "
            f"({len(findings)} finding{'s' if len(findings) != 1 else ''})")
    lines = [head]
    for finding in findings:
        folded = [item["id"] for item in finding.get("folded") or []]
        lines.append(f"[{finding['severity']}] {finding['id']}: {finding['title']}"
                     + (f" (explains: {', '.join(folded)})" if folded else ""))
        if finding.get("evidence"):
            lines.append(f"    evidence: {evidence_line(finding['evidence'])}")
        lines.append(f"    fix: {fix_line(finding.get('fix'))}")
    checks = report.get("checks") or []
    if checks:
        passed = [check for check in checks if check["ok"]]
        lines.append(f"checks: {len(passed)} of {len(checks)} passed")
        lines += [f"[FAILED {check['severity']}] {check['check']}: {check['detail']}"
                  for check in checks if not check["ok"]]
        lines += [f"[info] {check['check']}: {check['detail']}"
                  for check in checks if check["ok"] and check["severity"] == "info"]
    if report.get("steps"):
        lines.append("steps: " + ", ".join(
            f"{step['step']}" + ("" if step["status"] == "done" else f" ({step['status']})")
            for step in report["steps"]))
    if report.get("outcome"):
        lines.append(f"outcome: {report['outcome']}"
                     + (f" (the stores now hold {report['login_user']})"
                        if report.get("login_user") else ""))
    for error in report.get("errors") or []:
        lines.append(f"[not checked] {error}")
    if paths:
        lines.append("report: " + ", ".join(paths))
    return lines


def _md_value(value) -> str:
    text = _scalar(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    target = report.get("target") or {}
    findings = report.get("findings") or []
    out = [f"# {report['runbook']}: {target_label(target)}", "",
           f"**Verdict: {report['verdict']}** · generated {report['generated_at']}", ""]
    if not findings:
        out += ["No findings: every check passed.", ""]
    for number, finding in enumerate(findings, 1):
        out += [f"## {number}. `{finding['id']}` ({finding['severity']})", "",
                finding["title"] + ".", ""]
        evidence = finding.get("evidence") or {}
        if evidence:
            out += ["| evidence | value |", "|---|---|"]
            out += [f"| {key} | {_md_value(value)} |" for key, value in evidence.items()]
            out.append("")
        fix = finding.get("fix") or {}
        if fix.get("command"):
            out += ["Fix:", "", "```sh", fix["command"], "```", ""]
            if fix.get("manual"):
                out += [f"Alternatively: {fix['manual']}", ""]
        elif fix.get("manual"):
            out += [f"Fix: {fix['manual']}", ""]
        for folded in finding.get("folded") or []:
            out.append(f"- explains `{folded['id']}`: {folded['title']}"
                       + (f" ({evidence_line(folded.get('evidence') or {})})"
                          if folded.get("evidence") else ""))
        if finding.get("folded"):
            out.append("")
    if report.get("errors"):
        out += ["## Not checked", ""] + [f"- {error}" for error in report["errors"]] + [""]
    if report.get("checks"):
        out += ["## Checks", "", "| check | result | detail |", "|---|---|---|"]
        out += [f"| {_md_value(check['check'])} | "
                f"{'ok' if check['ok'] else 'FAILED (' + check['severity'] + ')'} | "
                f"{_md_value(check['detail'])} |" for check in report["checks"]]
        out.append("")
    out += _checks_markdown(report.get("facts") or {})
    if report.get("timings"):
        timings = sorted(report["timings"].items())
        out += ["Timings (s): " + ", ".join(f"{key} {value}" for key, value in timings), ""]
    # the gathered facts stay in the JSON; other sections (steps, checks) are shown as JSON
    sections = [key for key in report
                if key not in REPORT_KEYS and key not in ("errors", "facts", "timings", "checks")]
    for key in sections:
        body = json.dumps(report[key], indent=2, sort_keys=True, default=str)
        out += [f"## {key}", "", "```json", body, "```", ""]
    return "\n".join(out)


def _checks_markdown(facts: dict) -> list[str]:
    """What was looked at: the role, and per store its value and a login with it."""
    if not facts:
        return []
    out = ["## What was checked", ""]
    role = facts.get("role") or {}
    if facts.get("admin_error"):
        out += [f"- admin login failed: {facts['admin_error']}"]
    elif role:
        state = ("missing" if not role.get("exists") else
                 ", ".join(f"{key}: {_md_value(role.get(key))}" for key in
                           ("can_login", "valid_until", "password_hash", "conn_limit",
                            "connections", "rds_iam_member") if key in role))
        out += [f"- role: {state}"]
    iam = facts.get("iam") or {}
    if iam:
        out += [f"- RDS IAM: enabled {iam.get('iam_enabled')}, connect ARN "
                f"`{iam.get('connect_arn')}`"
                + (f", principal allowed {iam.get('connect_allowed')}"
                   if "connect_allowed" in iam else "")]
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    stores = facts.get("stores") or []
    if stores:
        out += ["", "| store | readable | version | changed | placeholder | login |",
                "|---|---|---|---|---|---|"]
    for store in stores:
        probe = probes.get(store.get("store")) or {}
        login = ("ok" if probe.get("ok") else
                 f"{probe.get('category')}: {probe.get('message')}" if probe else "not tried")
        out.append("| " + " | ".join(_md_value(value) for value in (
            store.get("store"), store.get("readable", True), store.get("version"),
            store.get("changed_at"), store.get("placeholder"), login)) + " |")
    return [*out, ""]


def stats(report: dict, host: str, paths: list[str]) -> dict:
    """set_stats data for AWX: per runbook, each host's verdict and finding ids, and the hosts
    per verdict (lists aggregate across hosts, so a workflow can branch on them)."""
    runbook, verdict = report["runbook"], report["verdict"]
    return {f"pgauth_{runbook}": {host: {"verdict": verdict, "report": paths[0] if paths else None,
                                         "findings": [f["id"] for f in report["findings"]]}},
            f"pgauth_{runbook}_{verdict}": [host]}
