# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication events in PostgreSQL logs: what failed, for whom, and why.

The client only sees "password authentication failed"; the server log says why, in a
DETAIL line of the same process ("Role "x" does not exist.", "User "x" has an expired
password.", the pg_hba.conf line that matched...).  The scanner follows each process id
across lines, streams any amount of log in bounded memory, and never keeps a line that
could hold a secret without redacting it first.  No I/O here: callers feed lines.

The log is untrusted input: clients that never authenticate choose the user and database
names and the ``replication`` value of their startup packet, and the server logs them at
FATAL, unescaped.  So matching is linear in the line (see logscan_match), lines, roles,
processes and counters are bounded (what is dropped is counted, and ``truncated`` says so),
and a DETAIL counts only for the FATAL it belongs to.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.hba_redact import redact_hba_rule
from ansible_collections.credops.pgauth.plugins.module_utils.logscan_match import (
    DETAILED,
    classify,
    detail_reason,
    hba_match,
    redact,
)

__all__ = ["LINE_LIMIT", "Scanner", "parse_since", "parse_timestamp", "redact"]

_LEVEL = (r"(?P<level>DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|QUERY|"
          r"CONTEXT|LOCATION|STATEMENT)")
# log_line_prefix '%m [%p] %q%u@%d ' (Debian's default, and the lab's).  PostgreSQL prints
# %u and %d as they are, spaces and '@' included: userdb runs from the first '@' to the level
# (a lazy run tried once per position from one anchored start: linear).
_DEFAULT_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z]+| [+-]\d\d(?::?\d\d)?)?) "
    r"\[(?P<pid>\d{1,10})\] (?:(?P<userdb>[^@]*@.*?) )?" + _LEVEL + r":\s+(?P<msg>.*)$")
# RDS's fixed '%t:%r:%u@%d:[%p]:'; %r is 'host(port)' (an IPv6 host has ':'), '[local]' or
# empty, and %u@%d may hold ':' and '@' too: it runs up to ':[pid]:'
_RDS_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z]+)?):"
    r"(?P<remote>[^()]*\(\d+\)|\[local\]|[^:]*):"
    r"(?P<userdb>.*?):\[(?P<pid>\d{1,10})\]:" + _LEVEL + r":\s+(?P<msg>.*)$")
# the lab's IAM verifier: '2026-01-01T00:00:00Z user='x' outcome=deny reason=...'
_IAM_LINE = re.compile(r"^(?P<ts>\S+Z) user=(?P<user>'(?:[^'\\]|\\.)*'|\"[^\"]*\") "
                       r"outcome=(?P<outcome>\w+) reason=(?P<reason>.*)$")
_AUTHORIZED_USER = re.compile(r"user=(.+?)(?= database=| application_name=| SSL | GSS |$)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# -- bounds ----------------------------------------------------------------------------------
# A line longer than this is counted and dropped, never parsed: PostgreSQL's startup packet is
# at most 10000 bytes, so no line an unauthenticated client causes is longer, and the
# messages this scanner reads are a few hundred characters.  (file_lines never holds more.)
LINE_LIMIT = 16384
# Distinct roles with statistics; later roles' events are counted as dropped.  A role filter
# (what diagnose, verify and rotate use) tracks one role, whatever the log holds.
MAX_ROLES = 1000
# No PostgreSQL role name is longer (NAMEDATALEN - 1 = 63 bytes; the rest is slack for
# replaced undecodable bytes and builds with a larger NAMEDATALEN).
ROLE_NAME_LIMIT = 256
# FATALs waiting for their DETAIL, by process id: a DETAIL comes with its FATAL (one write,
# the same timestamp), so one still waiting after DETAIL_WINDOW seconds of newer FATALs gets
# none; past PENDING_LIMIT at once the oldest is dropped (and counted).
PENDING_LIMIT = 10000
DETAIL_WINDOW = 2.0
# pam_authenticate's reason, kept for the FATAL of the same process that follows it
_PAM_MEMORY = 4096
_PAM_WINDOW = 60.0
# distinct reasons and hba lines per role, and the length of each; sample and reason lengths
KEY_LIMIT = 16
KEY_CHARS = 256
SAMPLE_CHARS = 1000
_REASON_CHARS = 200
_DROPS = ("long_lines", "role_events", "pending_events", "reason_keys", "unreadable_events")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "...[cut]"


def _iso(stamp: dt.datetime | None) -> str | None:
    return stamp.isoformat() if stamp else None


def _prefix_user(match: re.Match) -> str:
    """The prefix's %u: a role may hold '@', a database name seldom does."""
    return (match.group("userdb") or "").rpartition("@")[0]


def parse_since(since: str | None, now: dt.datetime) -> dt.datetime | None:
    """'90s', '15m', '1h', '2d', '1w', or an ISO 8601 timestamp (UTC when no zone)."""
    if not since:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", since)
    if match:
        try:
            return now - dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise ValueError(f"since {since!r} reaches back before the year 1") from None
    try:
        stamp = dt.datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since {since!r} is neither a duration (15m, 1h, 2d) "
                         "nor an ISO 8601 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def parse_timestamp(text: str) -> dt.datetime | None:
    parts = text.split(" ")
    try:
        stamp = dt.datetime.fromisoformat(f"{parts[0]}T{parts[1]}")
    except (ValueError, IndexError):
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    zone = parts[2] if len(parts) > 2 else "UTC"
    if re.fullmatch(r"[+-]\d\d(:?\d\d)?", zone):
        hours, minutes = int(zone[:3]), int(zone[-2:]) if len(zone) > 3 else 0
        offset = dt.timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes)
        try:
            return stamp.replace(tzinfo=dt.timezone(offset))
        except ValueError:  # an offset of a day or more: the time is unknown, the line still counts
            return None
    # the server's log_timezone; RDS and the lab log in UTC, named zones are taken as UTC
    return stamp.replace(tzinfo=dt.timezone.utc)


@dataclass
class RoleStats:
    failures: Counter = field(default_factory=Counter)   # category -> count
    reasons: Counter = field(default_factory=Counter)    # detailed reason -> count
    hba_lines: Counter = field(default_factory=Counter)  # "line N: rule" -> count
    first_failure: dt.datetime | None = None
    last_failure: dt.datetime | None = None
    successes: int = 0
    first_success: dt.datetime | None = None
    last_success: dt.datetime | None = None
    samples: list[str] = field(default_factory=list)

    def as_dict(self, window_minutes: float | None) -> dict:
        total = sum(self.failures.values())
        span = window_minutes
        if span is None and self.first_failure and self.last_failure:
            span = max((self.last_failure - self.first_failure).total_seconds() / 60, 1.0)
        return {
            "failures": total,
            "by_category": dict(self.failures),
            "by_reason": dict(self.reasons),
            "hba_lines": dict(self.hba_lines),
            "first_failure": _iso(self.first_failure), "last_failure": _iso(self.last_failure),
            "failures_per_minute": round(total / span, 3) if span and total else 0.0,
            "successes": self.successes,
            "first_success": _iso(self.first_success), "last_success": _iso(self.last_success),
            "samples": self.samples,
        }


@dataclass
class _Event:
    """A FATAL waiting for its DETAIL: the line's own timestamp text, as the DETAIL repeats it."""
    stats: RoleStats
    category: str
    ts: str
    stamp: dt.datetime | None
    reason_found: bool = False
    hba_found: bool = False


class Scanner:
    """Feed it lines (any source, in order); ask for the per-role summary at the end."""

    def __init__(self, since: dt.datetime | None = None, role: str | None = None,
                 max_samples: int = 5, until: dt.datetime | None = None):
        # until: lines from then on are not counted (diagnose's own logins come after it)
        self.since, self.until, self.role, self.max_samples = since, until, role, max_samples
        self.roles: dict[str, RoleStats] = {}
        self.lines = 0
        self.matched = 0
        self.failures = 0  # of every role in the window, tracked or not
        self.dropped = dict.fromkeys(_DROPS, 0)
        self._pending: dict[str, _Event] = {}  # pid -> FATAL waiting for its DETAIL
        self._pam_reason: dict[str, tuple[str, dt.datetime | None]] = {}
        self._continues: _Event | None = None  # the event whose DETAIL the next '\t' line continues

    def _stats(self, role: str) -> RoleStats | None:
        stats = self.roles.get(role)
        if stats is None:
            if len(self.roles) >= MAX_ROLES or len(role) > ROLE_NAME_LIMIT:
                self.dropped["role_events"] += 1
                return None
            stats = self.roles[role] = RoleStats()
        return stats

    def _bump(self, counter: Counter, key: str) -> None:
        key = _cut(key, KEY_CHARS)
        if key in counter or len(counter) < KEY_LIMIT:
            counter[key] += 1
        else:
            self.dropped["reason_keys"] += 1

    def _in_window(self, stamp: dt.datetime | None) -> bool:
        if stamp is None:
            return True
        return ((self.since is None or stamp >= self.since)
                and (self.until is None or stamp < self.until))

    def feed(self, line: str) -> None:
        self.lines += 1
        if len(line) > LINE_LIMIT and len(line.rstrip("\r\n")) > LINE_LIMIT:
            self.dropped["long_lines"] += 1
            self._continues = None  # what follows continues a message not read
            return
        if line.startswith("\t"):
            # continues the message of the line right before it: only a DETAIL's counts
            if self._continues is not None:
                self._detail(self._continues, line.strip())
            return
        self._continues = None
        if not ("FATAL" in line or "DETAIL" in line or "connection authorized" in line
                or "pam_authenticate" in line or "outcome=" in line):
            return
        line = line.rstrip("\r\n")
        match = _DEFAULT_PREFIX.match(line) or _RDS_PREFIX.match(line)
        if match is None:
            iam = _IAM_LINE.match(line)
            if iam:
                self._iam(iam)
            return
        pid, level, msg = match.group("pid"), match.group("level"), match.group("msg")
        # a DETAIL belongs to the FATAL right before it in that process, with the same
        # timestamp: any other line of the process ends the wait (a pid is reused, and a
        # forged DETAIL line naming another process's pid must not count for it)
        pending = self._pending.pop(pid, None)
        pam = self._pam_reason.pop(pid, None)
        if level == "DETAIL":
            if pending is not None and pending.ts == match.group("ts"):
                self._continues = pending
                self._detail(pending, msg)
            return
        if level == "LOG":
            if msg.startswith("pam_authenticate failed:"):
                self._remember_pam(pid, msg.partition(":")[2].strip(), match.group("ts"))
            elif msg.startswith("connection authorized:"):
                self._success(match, msg)
            return
        if level == "FATAL":
            self._fatal(match, pid, msg, line, pam)

    def _fatal(self, match: re.Match, pid: str, msg: str, line: str,
               pam: tuple[str, dt.datetime | None] | None) -> None:
        found = classify(msg)
        if found is None:
            return
        category, reader = found
        role = reader(msg) if reader is not None else _prefix_user(match)
        if role is None:  # a known wording without its closing quote: a name with a newline
            self.dropped["unreadable_events"] += 1
            return
        stamp = parse_timestamp(match.group("ts"))
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        if category == "hba_reject":
            tail = msg[msg.rfind('"') + 1:]  # after the names, which a client chose
            if "no encryption" in tail or "SSL off" in tail:
                category = "tls_required"
        self.matched += 1
        self.failures += 1
        stats = self._stats(role)
        if stats is None:
            return
        stats.failures[category] += 1
        if category == "pam_failed":
            reason = "no reason logged"
            if pam is not None and _near(pam[1], stamp, _PAM_WINDOW):
                reason = pam[0]
            self._bump(stats.reasons, "pam: " + reason)
        stats.first_failure = stats.first_failure or stamp
        stats.last_failure = stamp or stats.last_failure
        if len(stats.samples) < self.max_samples:
            stats.samples.append(_cut(redact(line), SAMPLE_CHARS))
        if category in DETAILED:
            self._await_detail(pid, _Event(stats, category, match.group("ts"), stamp))

    def _await_detail(self, pid: str, event: _Event) -> None:
        # the oldest waiting FATALs whose DETAIL would have come by now get none
        while self._pending:
            oldest_pid, oldest = next(iter(self._pending.items()))
            if _near(oldest.stamp, event.stamp, DETAIL_WINDOW) and oldest.stamp is not None:
                break
            del self._pending[oldest_pid]
        self._pending[pid] = event
        if len(self._pending) > PENDING_LIMIT:
            del self._pending[next(iter(self._pending))]
            self.dropped["pending_events"] += 1

    def _remember_pam(self, pid: str, reason: str, ts: str) -> None:
        self._pam_reason[pid] = (_cut(redact(reason), _REASON_CHARS), parse_timestamp(ts))
        if len(self._pam_reason) > _PAM_MEMORY:
            del self._pam_reason[next(iter(self._pam_reason))]

    def _detail(self, event: _Event, text: str) -> None:
        """A DETAIL line of the event's message: one reason, then the hba line."""
        reason = None if event.reason_found else detail_reason(text)
        if reason is not None:
            self._bump(event.stats.reasons, reason)
            event.reason_found = True
            return
        hba = None if event.hba_found else hba_match(text)
        if hba is not None:
            event.hba_found = True
            number, rule = hba
            self._bump(event.stats.hba_lines, f"line {number}: {redact_hba_rule(rule.strip())}")
            if event.category == "password_failed" and not event.reason_found:
                # a failed SCRAM exchange logs only the hba line: a wrong password
                self._bump(event.stats.reasons, "store_password_mismatch")
            self._continues = None  # nothing of a DETAIL follows its hba line

    def _success(self, match: re.Match, msg: str) -> None:
        user = _AUTHORIZED_USER.search(msg)
        role = user.group(1) if user else _prefix_user(match)
        stamp = parse_timestamp(match.group("ts"))
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        stats = self._stats(role)
        if stats is None:
            return
        stats.successes += 1
        stats.first_success = stats.first_success or stamp
        stats.last_success = stamp or stats.last_success

    def _iam(self, match: re.Match) -> None:
        role = match.group("user")[1:-1]
        stamp = parse_timestamp(match.group("ts"))
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        if match.group("outcome") == "allow":
            return
        self.matched += 1
        stats = self._stats(role)
        if stats is not None:
            self._bump(stats.reasons, "iam: " + _cut(redact(match.group("reason").strip()),
                                                     _REASON_CHARS))

    def result(self, now: dt.datetime | None = None) -> dict:
        window = None
        if self.since is not None:
            now = now or dt.datetime.now(dt.timezone.utc)
            window = max((now - self.since).total_seconds() / 60, 1 / 60)
        roles = {name: stats.as_dict(window) for name, stats in sorted(self.roles.items())}
        return {
            "roles": roles,
            "lines_scanned": self.lines,
            "failures": self.failures,
            "since": self.since.isoformat() if self.since else None,
            "truncated": any(self.dropped.values()),
            "dropped": dict(self.dropped),
        }


def _near(first: dt.datetime | None, second: dt.datetime | None, seconds: float) -> bool:
    """Within seconds of each other; an unknown time is near anything."""
    if first is None or second is None:
        return True
    return abs((second - first).total_seconds()) <= seconds
