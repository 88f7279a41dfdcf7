# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linear-time readers for the log messages the scanner classifies, and redact().

Unauthenticated clients choose part of what the server logs: the user and database names of
the startup packet, and any value of its ``replication`` parameter (up to the packet's 10000
bytes, logged at FATAL before authentication).  So nothing here uses a regular expression with
a nested or greedy-then-backtracking quantifier over text a client chose, and nothing searches
the text once per candidate start: the messages' fixed wording is matched with startswith,
the quoted names with find/rfind, which are linear in the line.
"""
from __future__ import annotations

import re
from collections.abc import Callable

# a reader takes the message and returns the role it names, or None when it cannot read one
Reader = Callable[[str], "str | None"]

# (how the message starts, category, where the role is: a reader of the message, or None when
# the message names none and the prefix's %u does).  PostgreSQL's messages start with their
# wording; a message that only contains it (a logged startup value, say) is not a login failure.
_PW_FAILED = 'password authentication failed for user "'
_PAM_FAILED = 'PAM authentication failed for user "'
_ROLE_LIMIT = 'too many connections for role "'
_LDAP_FAILED = 'LDAP authentication failed for user "'
_RADIUS_FAILED = 'RADIUS authentication failed for user "'


def _quoted_to_end(msg: str, start: int) -> str | None:
    """A role quoted at the end of the message, unescaped: it runs from start to the last
    '"', which only whitespace may follow."""
    end = len(msg.rstrip())
    if end - 1 < start or msg[end - 1] != '"':
        return None
    return msg[start:end - 1]


def _hba_role(msg: str) -> str | None:
    """'... for host "h", user "R", database "D", SSL off' (or without the database, as a
    replication connection has it).  PostgreSQL prints R unescaped, so R runs from the first
    ', user "' to the last '", database "' before the closing quote; after that quote only
    ', <words>' or whitespace may follow."""
    start = msg.find(', user "')
    if start < 0:
        return None
    start += len(', user "')
    last = msg.rfind('"')
    if last < start:
        return None
    tail = msg[last + 1:]
    if tail.strip() and not tail.startswith(", "):
        return None
    separator = msg.rfind('", database "', start, last)
    return msg[start:separator] if separator >= 0 else msg[start:last]


def _cannot_login_role(msg: str) -> str | None:
    end = msg.rfind('" is not permitted to log in')
    return msg[len('role "'):end] if end >= len('role "') else None


FATALS = (
    (_PW_FAILED, "password_failed", lambda msg: _quoted_to_end(msg, len(_PW_FAILED))),
    (_PAM_FAILED, "pam_failed", lambda msg: _quoted_to_end(msg, len(_PAM_FAILED))),
    # their DETAIL names a pg_hba.conf line with the LDAP bind password or RADIUS secrets
    (_LDAP_FAILED, "ldap_failed", lambda msg: _quoted_to_end(msg, len(_LDAP_FAILED))),
    (_RADIUS_FAILED, "radius_failed", lambda msg: _quoted_to_end(msg, len(_RADIUS_FAILED))),
    ("pg_hba.conf rejects connection for host", "hba_reject", _hba_role),
    ("no pg_hba.conf entry for host", "no_hba_entry", _hba_role),
    (_ROLE_LIMIT, "connection_limit_reached", lambda msg: _quoted_to_end(msg, len(_ROLE_LIMIT))),
    ("sorry, too many clients already", "connection_limit_reached", None),
)
# categories whose FATAL PostgreSQL follows with a DETAIL that says why (auth_failed() in
# auth.c); the others have none, so a DETAIL offered to them is not theirs
DETAILED = frozenset(("password_failed", "pam_failed", "ldap_failed", "radius_failed"))

# (start, what must follow the quoted role, reason) of a DETAIL's first line
_DETAIL_REASONS = (
    ('Role "', '" does not exist', "role_missing"),
    ('User "', '" has no password assigned', "role_password_missing"),
    ('User "', '" has an expired password', "role_password_expired"),
    ("Password does not match for user", "", "store_password_mismatch"),
    ('User "', '" does not have a valid SCRAM secret', "role_password_hash_incompatible"),
)
# the header is fixed text, digits and a file name without quotes: no backtracking
_HBA_HEADER = re.compile(r'Connection matched (?:pg_hba\.conf line (?P<line>\d{1,10})|'
                         r'file "[^"]*" line (?P<line16>\d{1,10})): "')


def classify(msg: str) -> tuple[str, Reader | None] | None:
    """(category, role reader or None) of a FATAL message PostgreSQL prints for a failed
    login, or None."""
    for start, category, reader in FATALS:
        if msg.startswith(start):
            return category, reader
    # the one wording with the role first ('role "x" does not exist' is another failure)
    if msg.startswith('role "') and "is not permitted to log in" in msg:
        return "role_cannot_login", _cannot_login_role
    return None


def detail_reason(text: str) -> str | None:
    """The reason a DETAIL line (or its continuation) gives, read from its start."""
    for start, follows, reason in _DETAIL_REASONS:
        if text.startswith(start) and (not follows or text.find(follows, len(start)) >= 0):
            return reason
    return None


def hba_match(text: str) -> tuple[str, str] | None:
    """(line number, rule text) of 'Connection matched pg_hba.conf line N: "rule"'."""
    header = _HBA_HEADER.match(text)
    if header is None:
        return None
    end = text.rfind('"')
    if end < header.end():
        return None
    return header.group("line") or header.group("line16"), text[header.end():end]


# -- redaction -------------------------------------------------------------------------------

MASK = "********"
# A SQL literal, or a quoted value of a connection string: SQL doubles a quote inside a
# literal ('ab''cd'); E'', and libpq's quoting, escape with a backslash (taken as an escape in
# every form, which at worst redacts more); U&'', N'', B'', X'' are literals too; dollar quotes
# end at the same tag.  A literal cut off by the end of the text is redacted to the end.  Each
# alternative starts with a different character and its loop stops at the first character
# that can end it, so a match never backtracks.
_LITERAL = (r"(?:[EeNnBbXx]|[Uu]&)?'(?:[^'\\]|''|\\.)*(?:'|\\?\Z)"
            r'|(?:[Uu]&)?"(?:[^"\\]|""|\\.)*(?:"|\\?\Z)'
            r"|\$(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|\Z)")
_LITERAL_RE = re.compile(_LITERAL, re.S)
# password=..., passwd: ..., secret=... in a connection string or a config line: any token
_ASSIGNED = re.compile(r"(?i)((?:password|passwd|secrets?)\s*[=:]\s*)(?:" + _LITERAL + r"|\S+)",
                       re.S)
_SQL_PASSWORD = re.compile(r"(?i)password")
_AMZ = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"]+")
# the token runs to the next whitespace; an unencoded password may hold '@' and '/', so it
# runs to the token's last '@' (found with rfind in _url_password, not by backtracking)
_URL = re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)(\S*)")
_BASE64ISH = re.compile(r"\b[A-Za-z0-9+/]{32,}={0,2}")
_SPACE = re.compile(r"\s*")


def _sql_passwords(text: str) -> str:
    """SQL's PASSWORD takes a literal only, so the words in "password authentication failed"
    stay readable.  Whitespace may separate them; a comment between them (/* */ or --) is
    unusual enough that the rest of the statement is redacted, comment and all."""
    parts, done, pos = [], 0, 0
    while True:
        found = _SQL_PASSWORD.search(text, pos)
        if found is None:
            break
        start = _SPACE.match(text, found.end()).end()
        if text.startswith(("/*", "--"), start):
            parts += [text[done:start], MASK]
            done = len(text)
            break
        literal = _LITERAL_RE.match(text, start)
        if literal is None:
            pos = found.end()
            continue
        end = literal.end()
        # 'sec'<newline>'ret' is one literal in SQL: the continuation goes too
        while True:
            after = _SPACE.match(text, end).end()
            more = _LITERAL_RE.match(text, after) if "\n" in text[end:after] else None
            if more is None:
                break
            end = more.end()
        parts += [text[done:start], MASK]
        done = pos = end
    parts.append(text[done:])
    return "".join(parts)


def _url_password(found: re.Match) -> str:
    token = found.group(2)
    at = token.rfind("@")
    return found.group(0) if at < 0 else found.group(1) + MASK + token[at:]


def redact(text: str) -> str:
    """Passwords, tokens and signatures out of a log line (or a few lines)."""
    text = _AMZ.sub(r"\1" + MASK, text)
    text = _sql_passwords(text)
    text = _ASSIGNED.sub(lambda found: found.group(1) + MASK, text)
    text = _URL.sub(_url_password, text)
    return _BASE64ISH.sub(MASK, text)
