# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication events in PostgreSQL logs: what failed, for whom, and why.

The client only sees "password authentication failed"; the server log says why, in a
DETAIL line of the same process ("Role "x" does not exist.", "User "x" has an expired
password.", the pg_hba.conf line that matched...).  The scanner follows each process id
across lines, streams any amount of log in constant memory, and never keeps a line
that could hold a secret without redacting it first.  No I/O here: callers feed lines.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

_LEVEL = (r"(?P<level>DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|QUERY|"
          r"CONTEXT|LOCATION|STATEMENT)")
# log_line_prefix '%m [%p] %q%u@%d ' (Debian's default, and the lab's).  PostgreSQL prints
# %u and %d as they are, spaces and '@' included: userdb runs from the first '@' to the level.
_DEFAULT_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z]+| [+-]\d\d(?::?\d\d)?)?) "
    r"\[(?P<pid>\d+)\] (?:(?P<userdb>[^@]*@.*?) )?" + _LEVEL + r":\s+(?P<msg>.*)$")
# RDS's fixed '%t:%r:%u@%d:[%p]:'; %r is 'host(port)' (an IPv6 host has ':'), '[local]' or
# empty, and %u@%d may hold ':' and '@' too: it runs up to ':[pid]:'
_RDS_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z]+)?):"
    r"(?P<remote>[^()]*\(\d+\)|\[local\]|[^:]*):"
    r"(?P<userdb>.*?):\[(?P<pid>\d+)\]:" + _LEVEL + r":\s+(?P<msg>.*)$")
# the lab's IAM verifier: '2026-01-01T00:00:00Z user='x' outcome=deny reason=...'
_IAM_LINE = re.compile(r"^(?P<ts>\S+Z) user=(?P<user>'(?:[^'\\]|\\.)*'|\"[^\"]*\") "
                       r"outcome=(?P<outcome>\w+) reason=(?P<reason>.*)$")
# PostgreSQL prints the role unescaped ('for user "we"ird"'): a role at the end of the
# message runs to the last quote, one before ', database "' to the last such separator
_ROLE_AT_END = re.compile(r'(?:for user|for role) "(?P<user>.*)"\s*$')
_HBA_ROLES = (re.compile(r', user "(?P<user>.*)", database ".*"(?:, [^"]*)?\s*$'),
              re.compile(r', user "(?P<user>.*)"(?:, [^"]*)?\s*$'))
_CANNOT_LOGIN_ROLE = re.compile(r'^role "(?P<user>.*)" is not permitted to log in')
_QUOTED_USER = re.compile(r'(?:for user|user) "(?P<user>(?:[^"]|"")*)"')
_HBA_MATCH = re.compile(r'Connection matched (?:pg_hba\.conf line (?P<line>\d+)|file "[^"]*" '
                        r'line (?P<line16>\d+)): "(?P<rule>.*)"')
_DETAIL_REASONS = (
    (re.compile(r'Role ".*" does not exist'), "role_missing"),
    (re.compile(r'User ".*" has no password assigned'), "role_password_missing"),
    (re.compile(r'User ".*" has an expired password'), "role_password_expired"),
    (re.compile(r'Password does not match for user'), "store_password_mismatch"),
    (re.compile(r'does not have a valid SCRAM secret'), "role_password_hash_incompatible"),
)
# (text, category, where the message names the role; none: the prefix's %u does)
_FATALS = (
    ("password authentication failed", "password_failed", (_ROLE_AT_END,)),
    ("PAM authentication failed", "pam_failed", (_ROLE_AT_END,)),
    ("pg_hba.conf rejects connection", "hba_reject", _HBA_ROLES),
    ("no pg_hba.conf entry", "no_hba_entry", _HBA_ROLES),
    ("too many connections for role", "connection_limit_reached", (_ROLE_AT_END,)),
    ("too many clients already", "connection_limit_reached", ()),
    ("is not permitted to log in", "role_cannot_login", (_CANNOT_LOGIN_ROLE,)),
)
_RELEVANT = ("FATAL", "DETAIL", "connection authorized", "pam_authenticate")
# A SQL literal as it may appear in a logged statement: SQL doubles a quote inside a
# literal ('ab''cd'), E'' strings escape with a backslash, dollar quotes nest nothing; a
# literal cut off by the line end is redacted to the end.
_LITERAL = (r"[Ee]?'(?:[^'\\]|''|\\.)*(?:'|$)|\"(?:[^\"]|\"\")*(?:\"|$)"
            r"|\$\$.*?(?:\$\$|$)|\$[A-Za-z_]\w*\$.*?(?:\$[A-Za-z_]\w*\$|$)")
_REDACTIONS = (
    (re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"]+"), r"\1********"),
    # password=... in a connection string or a config line: any token
    (re.compile(r"(?i)(password\s*[=:]\s*)(" + _LITERAL + r"|\S+)"), r"\1********"),
    # SQL's PASSWORD takes a literal only, so the words in "password authentication
    # failed" stay readable
    (re.compile(r"(?i)(PASSWORD\s+)(" + _LITERAL + ")"), r"\1********"),
    # an unencoded password may hold '@' and '/': redact to the token's last '@'
    (re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)\S*@"), r"\1********@"),
    (re.compile(r"\b[A-Za-z0-9+/]{32,}={0,2}"), "********"),
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A DETAIL follows its FATAL within a few lines of the same process; remembering the last
# events of this many processes keeps memory constant however long the log is.
_PID_MEMORY = 4096


def _iso(stamp: dt.datetime | None) -> str | None:
    return stamp.isoformat() if stamp else None


def _prefix_user(match: re.Match) -> str:
    """The prefix's %u: a role may hold '@', a database name seldom does."""
    return (match.group("userdb") or "").rpartition("@")[0]


def _message_role(msg: str, patterns: tuple, match: re.Match) -> str:
    """The role a FATAL message names: it is what the client asked for, where the prefix
    may be cut wrong by a role with '@', ':' or spaces."""
    for pattern in patterns:
        found = pattern.search(msg)
        if found:
            return found.group("user")
    if patterns:  # a wording this scanner does not know
        quoted = _QUOTED_USER.search(msg)
        if quoted:
            return quoted.group("user").replace('""', '"')
    return _prefix_user(match)


def redact(line: str) -> str:
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    return line


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
    role: str
    category: str
    stamp: dt.datetime | None
    line: str
    reason_found: bool = False


def _remember(memory: dict, key: str, value) -> None:
    memory[key] = value
    if len(memory) > _PID_MEMORY:
        memory.pop(next(iter(memory)))


class Scanner:
    """Feed it lines (any source, in order); ask for the per-role summary at the end."""

    def __init__(self, since: dt.datetime | None = None, role: str | None = None,
                 max_samples: int = 5, until: dt.datetime | None = None):
        # until: lines from then on are not counted (diagnose's own logins come after it)
        self.since, self.until, self.role, self.max_samples = since, until, role, max_samples
        self.roles: dict[str, RoleStats] = {}
        self.lines = 0
        self.matched = 0
        self._last_by_pid: dict[str, _Event] = {}
        self._pam_reason: dict[str, str] = {}
        self._last_pid: str | None = None

    def _stats(self, role: str) -> RoleStats:
        stats = self.roles.get(role)
        if stats is None:
            stats = self.roles[role] = RoleStats()
        return stats

    def _in_window(self, stamp: dt.datetime | None) -> bool:
        if stamp is None:
            return True
        return ((self.since is None or stamp >= self.since)
                and (self.until is None or stamp < self.until))

    def feed(self, line: str) -> None:
        self.lines += 1
        if line.startswith("\t"):  # continuation of the previous message of the last process
            if self._last_pid is not None:
                self._detail(self._last_pid, line.strip())
            return
        if not any(marker in line for marker in _RELEVANT) and "outcome=" not in line:
            return
        line = line.rstrip("\r\n")
        match = _DEFAULT_PREFIX.match(line) or _RDS_PREFIX.match(line)
        if match is None:
            iam = _IAM_LINE.match(line)
            if iam:
                self._iam(iam, line)
            return
        pid, level, msg = match.group("pid"), match.group("level"), match.group("msg")
        self._last_pid = pid
        if level == "DETAIL":
            self._detail(pid, msg)
            return
        if level == "LOG":
            if msg.startswith("pam_authenticate failed:"):
                _remember(self._pam_reason, pid, msg.partition(":")[2].strip())
            elif msg.startswith("connection authorized:"):
                self._success(match, msg)
            return
        if level != "FATAL":
            return
        found = next(((cat, roles) for text, cat, roles in _FATALS if text in msg), None)
        if found is None:
            return
        category, role = found[0], _message_role(msg, found[1], match)
        stamp = parse_timestamp(match.group("ts"))
        self._last_by_pid.pop(pid, None)
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        if category == "hba_reject" and re.search(r"no encryption|SSL off", msg):
            category = "tls_required"
        self.matched += 1
        stats = self._stats(role)
        stats.failures[category] += 1
        if category == "pam_failed":
            stats.reasons["pam: " + self._pam_reason.pop(pid, "no reason logged")] += 1
        stats.first_failure = stats.first_failure or stamp
        stats.last_failure = stamp or stats.last_failure
        if len(stats.samples) < self.max_samples:
            stats.samples.append(redact(line))
        _remember(self._last_by_pid, pid, _Event(role, category, stamp, line))

    def _detail(self, pid: str, msg: str) -> None:
        event = self._last_by_pid.get(pid)
        if event is None:
            return
        stats = self._stats(event.role)
        for pattern, reason in _DETAIL_REASONS:
            if pattern.search(msg):
                stats.reasons[reason] += 1
                event.reason_found = True
                break
        hba = _HBA_MATCH.search(msg)
        if hba:
            number = hba.group("line") or hba.group("line16")
            stats.hba_lines[f"line {number}: {hba.group('rule').strip()}"] += 1
            if event.category == "password_failed" and not event.reason_found:
                # a failed SCRAM exchange logs only the hba line: a wrong password
                stats.reasons["store_password_mismatch"] += 1

    def _success(self, match, msg: str) -> None:
        user = re.search(r"user=(.+?)(?= database=| application_name=| SSL | GSS |$)", msg)
        role = user.group(1) if user else _prefix_user(match)
        stamp = parse_timestamp(match.group("ts"))
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        stats = self._stats(role)
        stats.successes += 1
        stats.first_success = stats.first_success or stamp
        stats.last_success = stamp or stats.last_success

    def _iam(self, match, line: str) -> None:
        role = match.group("user")[1:-1]
        stamp = parse_timestamp(match.group("ts"))
        if (self.role is not None and role != self.role) or not self._in_window(stamp):
            return
        if match.group("outcome") == "allow":
            return
        self.matched += 1
        stats = self._stats(role)
        stats.reasons["iam: " + match.group("reason").strip()] += 1

    def result(self, now: dt.datetime | None = None) -> dict:
        window = None
        if self.since is not None:
            now = now or dt.datetime.now(dt.timezone.utc)
            window = max((now - self.since).total_seconds() / 60, 1 / 60)
        roles = {name: stats.as_dict(window) for name, stats in sorted(self.roles.items())}
        return {
            "roles": roles,
            "lines_scanned": self.lines,
            "failures": sum(role["failures"] for role in roles.values()),
            "since": self.since.isoformat() if self.since else None,
        }
