# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One page over a fleet: a row per host of the reports a play wrote, broken hosts first.

collect() reads ``<report_dir>/<host dir>/<runbook>.json``; render_html() and render_md() are
pure.  Every shown value comes from a report (which holds no secret) and is escaped: a store
error or a role name is untrusted text.  The HTML needs no JavaScript (the rows are already
sorted by verdict, then host); a few lines of inline script let a reader sort by another
column, and a Content-Security-Policy allows nothing else.
"""
from __future__ import annotations

import html
import json
import os
from urllib.parse import quote

from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    md_text,
    target_label,
)

VERDICT_ORDER = {"broken": 0, "degraded": 1, "healthy": 2}
MAX_REPORT_BYTES = 4 << 20  # a report is a few KiB; a huge file is not read whole


def collect(report_dir: str, runbook: str) -> list[dict]:
    """A row per host directory that holds the runbook's report; symlinks are not followed
    (the report directory is written as root)."""
    rows = []
    try:
        entries = sorted(os.scandir(report_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        return rows
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = os.path.join(entry.path, f"{runbook}.json")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            rows.append(_unreadable(entry.name, runbook, "report too large"))
            continue
        try:
            rows.append(row(entry.name, runbook, json.loads(data)))
        except (ValueError, TypeError, AttributeError):
            rows.append(_unreadable(entry.name, runbook, "report is not valid JSON"))
    return sorted(rows, key=lambda r: (VERDICT_ORDER.get(r["verdict"], -1), r["host"]))


def _unreadable(host: str, runbook: str, why: str) -> dict:
    return {"host": host, "verdict": "unknown", "target": "", "finding": why, "title": "",
            "fix": "", "fix_is_command": False, "generated_at": "",
            "links": _links(host, runbook)}


def _links(host: str, runbook: str) -> dict:
    return {ext: f"{quote(host)}/{runbook}.{ext}" for ext in ("md", "json")}


def row(host: str, runbook: str, report: dict) -> dict:
    findings = report.get("findings") or []
    first = findings[0] if findings else {}
    fix = first.get("fix") or {}
    return {"host": host, "verdict": str(report.get("verdict") or "unknown"),
            "target": target_label(report.get("target") or {}),
            "finding": str(first.get("id") or ""), "title": str(first.get("title") or ""),
            "fix": str(fix.get("command") or fix.get("manual") or ""),
            "fix_is_command": bool(fix.get("command")),
            "generated_at": str(report.get("generated_at") or ""),
            "links": _links(host, runbook)}


def counts(rows: list[dict]) -> dict:
    found: dict[str, int] = {}
    for item in rows:
        found[item["verdict"]] = found.get(item["verdict"], 0) + 1
    return found


# the page's own style and script, nothing from anywhere else
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #111; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 0.4em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; cursor: pointer; }
tr.broken td { background: #f4b6bc; }
tr.degraded td { background: #fde8a6; }
tr.healthy td { background: #c8e6d0; }
tr.unknown td { background: #ddd; }
code { white-space: pre-wrap; word-break: break-all; font-size: 0.9em; }
.verdict { font-weight: bold; text-transform: uppercase; }
"""
# sorts the table by a column when its header is clicked; without it the order is by verdict
_SCRIPT = """
document.querySelectorAll("th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.key || a.cells[column].textContent;
      var y = b.cells[column].dataset.key || b.cells[column].textContent;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def render_html(rows: list[dict], runbook: str, generated_at: str) -> str:
    esc = html.escape
    summary = ", ".join(f"{count} {verdict}" for verdict, count in sorted(
        counts(rows).items(), key=lambda item: VERDICT_ORDER.get(item[0], -1)))
    body = []
    for item in rows:
        verdict = item["verdict"] if item["verdict"] in VERDICT_ORDER else "unknown"
        finding = esc(item["finding"]) + (f"<br>{esc(item['title'])}" if item["title"] else "")
        fix = (f"<code>{esc(item['fix'])}</code>" if item["fix_is_command"]
               else esc(item["fix"]))
        links = " ".join(f'<a href="{esc(href)}">{ext}</a>'
                         for ext, href in item["links"].items())
        body.append(
            f'<tr class="{verdict}"><td>{esc(item["host"])}<br><small>{esc(item["target"])}'
            f'</small></td><td class="verdict" data-key="{VERDICT_ORDER.get(verdict, 9)}">'
            f'{esc(item["verdict"])}</td><td>{finding}</td><td>{fix}</td>'
            f'<td>{esc(item["generated_at"])}</td><td>{links}</td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_POLICY}">
<title>credops.pgauth {esc(runbook)}: {esc(summary)}</title>
<style>{_STYLE}</style></head><body>
<h1>credops.pgauth {esc(runbook)}</h1>
<p>{len(rows)} hosts: {esc(summary)}. Written {esc(generated_at)}. Broken hosts first; click a
column header to sort by it.</p>
<table><thead><tr><th>Host</th><th>Verdict</th><th>First finding</th><th>Fix</th>
<th>When</th><th>Reports</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def render_md(rows: list[dict], runbook: str, generated_at: str) -> str:
    out = [f"# credops.pgauth {md_text(runbook)}", "",
           f"{len(rows)} hosts, written {md_text(generated_at)}; broken hosts first.", "",
           "| Host | Verdict | First finding | Fix | When | Reports |",
           "|---|---|---|---|---|---|"]
    for item in rows:
        # a code span in a table cell: GFM still splits it at |, unless escaped
        command = " ".join(item["fix"].replace("`", "'").split()).replace("|", "\\|")
        fix = (f"`{command}`" if item["fix_is_command"] else md_text(item["fix"])) \
            if command else ""
        links = " ".join(f"[{ext}]({href})" for ext, href in item["links"].items())
        out.append(f"| {md_text(item['host'])} | **{md_text(item['verdict'])}** | "
                   f"{md_text(item['finding'])} | {fix} | "
                   f"{md_text(item['generated_at'])} | {links} |")
    return "\n".join(out) + "\n"
