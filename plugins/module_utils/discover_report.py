# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover.md: the copies found as a table, the scopes' progress, what was not listed.
Pure; the report action writes it.  Everything shown came from stores (names, paths) and
is escaped like every other report."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    md_code,
    md_text,
    target_label,
)

_WHERE = ("secret_id", "parameter", "family", "function", "mount_point", "path")


def _where(store: dict) -> str:
    parts = [str(store[key]) for key in _WHERE if store.get(key)]
    for key in ("container", "variable", "key", "document"):
        if store.get(key):
            parts.append(f"{key} {store[key]}")
    if store.get("keys"):
        parts.append("keys " + ", ".join(f"{field}={name}" for field, name in
                                         store["keys"].items()))
    return " ".join(parts)


def render_discover_markdown(report: dict) -> str:
    counts = report.get("counts") or {}
    out = [f"# discover: {md_text(target_label(report.get('target') or {}))}", "",
           (f"**Verdict: {md_text(report['verdict'])}** · generated "
            f"{md_text(report['generated_at'])}"), "",
           (f"Passwords checked by {md_code(report.get('method'))} "
            f"({md_text(report.get('logins', 0))} logins). "
            + ", ".join(f"{md_text(count)} {md_text(status)}" for status, count in
                        counts.items())
            + f" (unrelated ones are not listed); {md_text(report.get('skipped', 0))} values "
            "could not be read."), ""]
    copies = report.get("copies") or []
    out += ["## Copies (primary first)", ""]
    if copies:
        out += ["| status | match | store | type | where | username | host |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {md_text(item['status'])} | {md_text(item.get('match'))} | "
                f"{md_code(item['store'].get('name'))} | {md_text(item['store'].get('type'))} | "
                f"{md_text(_where(item['store']))} | {md_text(item.get('username'))} | "
                f"{md_text(item.get('host'))} |" for item in copies]
    else:
        out.append("No copy of the role's credential was found.")
    out += ["", "## Scopes", ""] + [f"- {md_text(line)}" for line in
                                    report.get("progress") or []]
    for title, key in (("Not listed (errors)", "errors"), ("Warnings", "warnings")):
        if report.get(key):
            out += ["", f"## {title}", ""] + [f"- {md_text(line)}" for line in report[key]]
    out += ["", ("`vars.yml` next to this file holds `pgauth_target`, `pgauth_stores` (the "
                 "current and stale copies above, in this order; shared and unknown copies are "
                 "not in it) and `pgauth_consumers`. It is a proposal: review it before a "
                 "runbook uses it."), ""]
    return "\n".join(out)
