# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' reports: one JSON shape (DESIGN §4), its Markdown rendering and the short
summary printed at the end of a run.  Pure functions; the report action writes the files."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

REPORT_KEYS = ("runbook", "target", "generated_at", "verdict", "findings")
# target keys worth showing; the rest of the target dict stays in the JSON
_TARGET_LABEL = ("role", "host", "port", "dbname")


# A host's report directory (DESIGN §4: <report_dir>/<host>/).  A name made only of these
# characters (lower case: a case-insensitive file system, macOS's default, must not fold two
# hosts into one directory), not starting with '.' or '-', without '..', not longer than
# HOST_DIR_MAX and not ending like a hashed name is used as it is.  Any other name gets a
# readable form plus '-' and 8 hex digits of the SHA-256 of the exact name.  The two forms
# cannot meet (a kept name never ends like a hashed one), so two hosts share a directory only
# if their readable forms and 32-bit hashes both agree.  The hash is of a host name, not of a
# secret.
HOST_DIR_MAX = 128
_KEPT_NAME = re.compile(r"[a-z0-9_@:][a-z0-9_.@:-]*")
_HASHED_NAME = re.compile(r"-[0-9a-f]{8}$")
_NOT_KEPT_CHAR = re.compile(r"[^A-Za-z0-9_.@:-]")


def report_host_dir(host: str) -> str:
    """The directory name of an inventory host's reports: one name per host, never a path.

    The report action writes there and the verify role reads the rotation's rotate.json from
    there (the report_host_dir filter), so both must use this one function."""
    host = str(host)
    if (len(host) <= HOST_DIR_MAX and _KEPT_NAME.fullmatch(host) and ".." not in host
            and not _HASHED_NAME.search(host)):
        return host
    readable = _NOT_KEPT_CHAR.sub("_", host)[:HOST_DIR_MAX]
    # no '..' (read as a parent by anyone who joins paths by hand), no hidden or option-like
    # name: a leading '.' or '-' becomes '_'
    readable = re.sub(r"\.(?=\.)", "_", readable)
    readable = re.sub(r"^[.-]", "_", readable) or "_"
    digest = hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"


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
    for warning in report.get("warnings") or []:
        lines.append(f"[warning] {warning}")
    if paths:
        lines.append("report: " + ", ".join(paths))
    return lines


# Markdown.  Everything a report holds may come from logs, stores or servers (a role name, a
# pg_hba rule, an error message, a store's path): in the .md it must stay text.  Inline text
# is escaped (CommonMark lets any ASCII punctuation be escaped with a backslash) and kept on
# one line; code spans and fenced blocks use a backtick run longer than any in their content,
# so the content cannot close them.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# other control characters, and the bidirectional overrides that make text read otherwise
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
# `code`, [links], <html>/<autolinks>, &entities;, *emphasis*, ~strike~, | cells, # and >
# blocks, $math$ (GitHub), and the backslash itself
_MD_ESCAPE = re.compile(r"([\\`*\[\]<>&|~#$])")
# '_' opens or closes emphasis only next to a space or punctuation: 'app_user' stays readable
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# what makes a line a list item, a setext underline, or an ordered list item
_MD_BLOCK_START = re.compile(r"^(?:[-+=]|(\d{1,9})([.)]))")
_BACKTICKS = re.compile(r"`+")


def _one_line(value) -> str:
    return _CONTROL.sub("", _LINE_BREAK.sub(" ", _scalar(value)))


def md_text(value) -> str:
    """Untrusted text for a Markdown paragraph, list item or table cell: shown as it is, never
    read as Markdown or HTML, on one line."""
    text = _MD_ESCAPE.sub(r"\\\1", _one_line(value))
    return _MD_UNDERSCORE.sub(r"\\_", text)


def md_line(value) -> str:
    """md_text for text that starts a line: no leading spaces (an indented code block) and
    no list, heading-underline or numbered-list marker."""
    text = md_text(value).lstrip()
    match = _MD_BLOCK_START.match(text)
    if match is None:
        return text
    if match.group(1):
        return f"{match.group(1)}\\{text[match.end(1):]}"
    return "\\" + text


def md_code(value) -> str:
    """Untrusted text as inline code: delimited by more backticks than any run inside."""
    text = _one_line(value)
    if not text:
        return ""
    ticks = "`" * (1 + max((len(run) for run in _BACKTICKS.findall(text)), default=0))
    if text.startswith("`") or text.endswith("`") or (text[0] == " " and text[-1] == " "):
        text = f" {text} "  # CommonMark strips one space on each side
    return f"{ticks}{text}{ticks}"


def md_fence(body: str, info: str = "") -> list[str]:
    """A fenced code block that its body cannot close, as lines."""
    body = str(body)
    ticks = "`" * max(3, 1 + max((len(run) for run in _BACKTICKS.findall(body)), default=0))
    return [ticks + info, body, ticks]


def render_markdown(report: dict) -> str:
    target = report.get("target") or {}
    findings = report.get("findings") or []
    out = [f"# {md_text(report['runbook'])}: {md_text(target_label(target))}", "",
           (f"**Verdict: {md_text(report['verdict'])}** · generated "
            f"{md_text(report['generated_at'])}"), ""]
    if not findings:
        out += ["No findings: every check passed.", ""]
    for number, finding in enumerate(findings, 1):
        out += [f"## {number}. {md_code(finding['id'])} ({md_text(finding['severity'])})", "",
                md_line(finding["title"]) + ".", ""]
        evidence = finding.get("evidence") or {}
        if evidence:
            out += ["| evidence | value |", "|---|---|"]
            out += [f"| {md_text(key)} | {md_text(value)} |" for key, value in evidence.items()]
            out.append("")
        fix = finding.get("fix") or {}
        if fix.get("command"):
            out += ["Fix:", "", *md_fence(fix["command"], "sh"), ""]
            if fix.get("manual"):
                out += [f"Alternatively: {md_text(fix['manual'])}", ""]
        elif fix.get("manual"):
            out += [f"Fix: {md_text(fix['manual'])}", ""]
        for folded in finding.get("folded") or []:
            out.append(f"- explains {md_code(folded['id'])}: {md_text(folded['title'])}"
                       + (f" ({md_text(evidence_line(folded.get('evidence') or {}))})"
                          if folded.get("evidence") else ""))
        if finding.get("folded"):
            out.append("")
    if report.get("errors"):
        out += ["## Not checked", ""] + [f"- {md_text(error)}" for error in report["errors"]]
        out.append("")
    if report.get("checks"):
        out += ["## Checks", "", "| check | result | detail |", "|---|---|---|"]
        out += [f"| {md_text(check['check'])} | "
                f"{'ok' if check['ok'] else 'FAILED (' + md_text(check['severity']) + ')'} | "
                f"{md_text(check['detail'])} |" for check in report["checks"]]
        out.append("")
    out += _checks_markdown(report.get("facts") or {})
    if report.get("timings"):
        timings = sorted(report["timings"].items())
        out += ["Timings (s): " + ", ".join(f"{md_text(key)} {md_text(value)}"
                                            for key, value in timings), ""]
    # the gathered facts stay in the JSON; other sections (steps, checks) are shown as JSON
    sections = [key for key in report
                if key not in REPORT_KEYS and key not in ("errors", "facts", "timings", "checks")]
    for key in sections:
        body = json.dumps(report[key], indent=2, sort_keys=True, default=str)
        out += [f"## {md_text(key)}", "", *md_fence(body, "json"), ""]
    return "\n".join(out)


def _checks_markdown(facts: dict) -> list[str]:
    """What was looked at: the role, and per store its value and a login with it."""
    if not facts:
        return []
    out = ["## What was checked", ""]
    role = facts.get("role") or {}
    if facts.get("admin_error"):
        out += [f"- admin login failed: {md_text(facts['admin_error'])}"]
    elif role:
        state = ("missing" if not role.get("exists") else
                 ", ".join(f"{key}: {md_text(role.get(key))}" for key in
                           ("can_login", "valid_until", "password_hash", "conn_limit",
                            "connections", "rds_iam_member") if key in role))
        out += [f"- role: {state}"]
    iam = facts.get("iam") or {}
    if iam:
        out += [f"- RDS IAM: enabled {md_text(iam.get('iam_enabled'))}, connect ARN "
                f"{md_code(iam.get('connect_arn'))}"
                + (f", principal allowed {md_text(iam.get('connect_allowed'))}"
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
        out.append("| " + " | ".join(md_text(value) for value in (
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
