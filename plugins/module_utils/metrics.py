# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A runbook report as metrics in the node_exporter textfile-collector format.

Pure: a report in, the text of a .prom file out.  Names and types follow the Prometheus
conventions: base units (seconds), ``_timestamp_seconds`` for points in time, a state set
for the verdict (one series per possible value, 1 for the current one), and gauges only -
a count over a log window is not a counter (it falls when the window moves).

Points in time, not durations: the file is written once per run and read on every scrape,
so "seconds until VALID UNTIL" would be wrong a minute later; ``time() - x`` in a rule is
always right.  Labels are bounded: the target and role are configured (never taken from a
log line or a store value), the finding ids, severities, stores and reasons come from the
collection's catalogue or the configured store names, and nothing holds a secret.
"""
from __future__ import annotations

import datetime as dt
import re

from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import TITLES

VERDICTS = ("healthy", "degraded", "broken")
SEVERITIES = ("critical", "warning", "info")
PREFIX = "pgauth_"
_LABEL_ESCAPES = {"\\": "\\\\", "\n": "\\n", '"': '\\"'}


def _label_value(value: object) -> str:
    return "".join(_LABEL_ESCAPES.get(char, char) for char in str(value))


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_label_value(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        # Vault's nanosecond fractions: fromisoformat takes at most six digits
        trimmed = re.sub(r"(\.\d{6})\d+", r"\1", str(text)).replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(trimmed)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


class _Family:
    """One metric family: HELP, TYPE and its samples, written together as the format wants."""

    def __init__(self, name: str, help_text: str):
        self.name, self.help, self.samples = PREFIX + name, help_text, []

    def add(self, labels: dict, value: float) -> None:
        self.samples.append((labels, value))

    def render(self) -> str:
        if not self.samples:
            return ""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            number = int(value) if float(value).is_integer() else round(float(value), 3)
            lines.append(f"{self.name}{_labels(labels)} {number}")
        return "\n".join(lines) + "\n"


def _facts(report: dict) -> dict:
    return report.get("facts") or {}


def render_metrics(report: dict, host: str) -> str:
    """The textfile of one report (diagnose or verify) of one inventory host."""
    target = report.get("target") or {}
    base = {"runbook": report.get("runbook") or "", "target": host,
            "role": target.get("role") or ""}
    families = []

    verdict = _Family("verdict", "The runbook's verdict: 1 for the current one of "
                                 "healthy, degraded, broken.")
    for value in VERDICTS:
        verdict.add({**base, "verdict": value}, 1 if report.get("verdict") == value else 0)
    families.append(verdict)

    generated = _Family("report_generated_timestamp_seconds",
                        "When the runbook ran (seconds since the epoch).")
    stamp = _timestamp(report.get("generated_at"))
    if stamp is not None:
        generated.add(base, stamp)
    families.append(generated)

    findings = _Family("findings", "Findings of the report by id and severity (ids from the "
                                   "collection's catalogue only).")
    counts: dict[tuple[str, str], int] = {}
    for finding in report.get("findings") or []:
        fid, severity = finding.get("id"), finding.get("severity")
        if fid in TITLES and severity in SEVERITIES:
            counts[(fid, severity)] = counts.get((fid, severity), 0) + 1
    for (fid, severity), count in sorted(counts.items()):
        findings.add({**base, "id": fid, "severity": severity}, count)
    families.append(findings)
    families.append(_check_family(report, base))
    families += _store_families(report, base)
    families += _role_families(report, base)
    families += _log_families(report, base)
    return "".join(family.render() for family in families)


def _check_family(report: dict, base: dict) -> _Family:
    """verify's checks: their names are fixed or name a configured store or health URL (as
    the report shows it, credentials masked)."""
    checks = _Family("check_ok", "verify: 1 when the check passed.")
    for check in report.get("checks") or []:
        if check.get("check") and check.get("severity") in SEVERITIES:
            checks.add({**base, "check": check["check"], "severity": check["severity"]},
                       1 if check.get("ok") else 0)
    return checks


def _store_families(report: dict, base: dict) -> list[_Family]:
    stores = _facts(report).get("stores") or []
    readable = _Family("store_readable", "1 when the configured store yielded a credential.")
    changed = _Family("store_changed_timestamp_seconds",
                      "When the store's current value was written (its version date): the "
                      "last rotation that reached it.")
    agree = _Family("stores_agree", "1 when every readable store holds the same password "
                                    "(compared by keyed fingerprints, never the values).")
    prints = set()
    for store in stores:
        labels = {**base, "store": store.get("store") or ""}
        ok = bool(store.get("readable", True) and store.get("exists", True))
        readable.add(labels, 1 if ok else 0)
        stamp = _timestamp(store.get("changed_at"))
        if stamp is not None:
            changed.add(labels, stamp)
        if ok and store.get("password_fingerprint"):
            prints.add(store["password_fingerprint"])
    if stores:
        agree.add(base, 1 if len(prints) <= 1 and all(
            s.get("readable", True) for s in stores) else 0)
    return [readable, changed, agree]


def _role_families(report: dict, base: dict) -> list[_Family]:
    role = _facts(report).get("role") or {}
    until = _Family("role_valid_until_timestamp_seconds",
                    "The role's VALID UNTIL (absent when it never expires).")
    stamp = _timestamp(role.get("valid_until")) if role.get("valid_until") not in (
        None, "infinity") else None
    if stamp is not None:
        until.add(base, stamp)
    exists = _Family("role_can_login", "1 when the role exists and may log in.")
    if role:
        exists.add(base, 1 if role.get("exists") and role.get("can_login") else 0)
    return [until, exists]


def _log_families(report: dict, base: dict) -> list[_Family]:
    logs = _facts(report).get("logs") or {}
    failures = _Family("log_auth_failures",
                       "Failed logins of the configured role in the scanned log window, by "
                       "reason (a finding id); a window count, not a counter.")
    window = _Family("log_window_start_timestamp_seconds",
                     "The start of the log window the failures were counted in.")
    if not logs:
        return [failures, window]
    start = _timestamp(logs.get("since"))
    if start is not None:
        window.add(base, start)
    mine = (logs.get("roles") or {}).get(base["role"]) or {}
    reasons = {reason: count for reason, count in (mine.get("by_reason") or {}).items()
               if reason in TITLES}
    other = int(mine.get("failures") or 0) - sum(reasons.values())
    for reason, count in sorted(reasons.items()):
        failures.add({**base, "reason": reason}, count)
    failures.add({**base, "reason": "other"}, max(other, 0))
    return [failures, window]
