# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small IAM identity-policy evaluator for one question: may this principal rds-db:connect
as this database user?  Used where iam:SimulatePrincipalPolicy is unavailable.

It answers ``allowed`` or ``denied`` only where the answer is exact, and ``undecided`` (with
the reasons) everywhere else: a wrong "allowed" hides the real cause of a failed login and
lets the iam rotation switch the stores of an application that then cannot connect.

Rules, as IAM applies them to identity policies: an explicit Deny wins, then any Allow,
else the request is implicitly denied.  Action matches case-insensitively, Resource
case-sensitively (the database user part of a ``dbuser`` ARN is case-sensitive).  Wildcards
are exact only within one colon-separated ARN segment, where ``*`` also spans ``/``; the IAM
docs (reference_policies_elements_resource, "Using wildcards in resource ARNs") say a ``*``
"can" expand across colons without saying exactly when, so a match that needs a wildcard to
cross a ``:`` is undecided.  So is a statement with a Condition or a policy variable, and one
that applies only through NotAction/NotResource (an inverted match is only as exact as the
wildcard semantics it inverts).  Permission boundaries, SCPs and session policies are the
caller's business (rds_iam): they can only take an Allow away.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ALLOWED, DENIED, UNDECIDED = "allowed", "denied", "undecided"
DECISIONS = (ALLOWED, DENIED, UNDECIDED)

# reasons: what could not be decided (stable ids, returned as `reasons`)
CONDITION = "condition"
POLICY_VARIABLE = "policy_variable"
WILDCARD_ACROSS_SEGMENTS = "wildcard_across_segments"
WILDCARD_IN_SERVICE = "wildcard_in_service"
NOT_ACTION = "not_action"
NOT_RESOURCE = "not_resource"

_POLICY_VARIABLE = re.compile(r"\$\{[^}]*\}")
_WILDCARDS = frozenset("*?")


def glob_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """``*`` (any run) and ``?`` (one character) over the whole string.  Two pointers with
    one backtrack point: O(len(pattern) * len(text)) at worst, never exponential, whatever
    a policy author wrote (``*a*a*a*a*b``)."""
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in (text[t], "?") and pattern[p] != "*":
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def match_action(pattern: str, action: str) -> bool | str:
    """True or False (exact), or a reason string: it may match, cannot tell."""
    pattern = str(pattern)
    if pattern == "*":
        return True
    loose = glob_match(_POLICY_VARIABLE.sub("*", pattern), action, ignore_case=True)
    if "${" in pattern:
        return POLICY_VARIABLE if loose else False
    service, sep, name = pattern.partition(":")
    want_service, _sep, want_name = action.partition(":")
    if not sep:
        # "rds*" and the like: a wildcard standing for the service prefix and the colon
        return WILDCARD_ACROSS_SEGMENTS if loose else False
    if _WILDCARDS & set(service):
        return WILDCARD_IN_SERVICE if loose else False
    return service.lower() == want_service.lower() and glob_match(name, want_name, True)


def match_resource(pattern: str, resource: str) -> bool | str:
    """Resource ARN matching.  Segment by segment (split on ``:``) is exact; where only a
    whole-string glob matches, a wildcard would have to cross a colon (undecided).  The
    whole-string glob is the most any reading of the rules can match, so when even it fails
    the answer is an exact no."""
    pattern = str(pattern)
    if pattern == "*":
        return True
    loose = glob_match(_POLICY_VARIABLE.sub("*", pattern), resource)
    if not loose:
        return False
    if "${" in pattern:
        return POLICY_VARIABLE
    segments, wanted = pattern.split(":"), resource.split(":")
    if len(segments) != len(wanted) or not all(
            glob_match(seg, want) for seg, want in zip(segments, wanted, strict=True)):
        return WILDCARD_ACROSS_SEGMENTS
    if len(segments) > 2 and _WILDCARDS & set(segments[2]):
        # the IAM docs: no wildcard in the service segment; what IAM does with one is unsaid
        return WILDCARD_IN_SERVICE
    return True


def _any(patterns, value: str, matcher) -> bool | str:
    """True if one pattern matches exactly, else a reason if one may match, else False."""
    maybe: bool | str = False
    for pattern in _as_list(patterns):
        found = matcher(pattern, value)
        if found is True:
            return True
        if found and not maybe:
            maybe = found
    return maybe


def statement_applies(statement: dict, action: str, resource: str) -> tuple[bool | None, list[str]]:
    """(True, []) applies for sure, (False, []) does not, (None, reasons) cannot tell."""
    reasons: list[str] = []
    for key, not_key, value, matcher, inverted in (
            ("Action", "NotAction", action, match_action, NOT_ACTION),
            ("Resource", "NotResource", resource, match_resource, NOT_RESOURCE)):
        if key in statement:
            found = _any(statement[key], value, matcher)
            if found is False:
                return False, []
            if found is not True:
                reasons.append(found)
        elif not_key in statement:
            found = _any(statement[not_key], value, matcher)
            if found is True:
                return False, []  # listed in NotAction/NotResource: excluded, exactly
            # not listed (or maybe listed): it applies only through the inversion
            reasons.append(found if found else inverted)
        else:
            return False, []  # IAM refuses such a statement; it grants nothing
    if "Condition" in statement:
        reasons.append(CONDITION)
    return (None, _unique(reasons)) if reasons else (True, [])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class Decision:
    decision: str
    statements: list[dict] = field(default_factory=list)  # the deciding statements
    reasons: list[str] = field(default_factory=list)  # what could not be decided
    notes: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool | None:
        return {ALLOWED: True, DENIED: False}.get(self.decision)


def evaluate(policies: list[tuple[str, dict]], action: str, resource: str) -> Decision:
    """policies: (name, document) pairs.  Returns the decision and the statements behind it.

    An unconditional matching Deny decides (denied) whatever else is open; an open Deny makes
    any Allow undecided; then an exact Allow decides; an open Allow is undecided; nothing is
    an exact implicit deny."""
    found: dict[tuple[str, bool | None], list[dict]] = {}
    for name, document in policies:
        if not isinstance(document, dict):
            continue
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
                continue
            applies, reasons = statement_applies(statement, action, resource)
            if applies is False:
                continue
            label = {"policy": name, "sid": statement.get("Sid") or f"#{index}",
                     "effect": statement["Effect"]}
            if applies is None:
                label["undecided"] = reasons
            found.setdefault((statement["Effect"], applies), []).append(label)

    def open_reasons(labels: list[dict]) -> list[str]:
        return _unique([reason for label in labels for reason in label["undecided"]])

    if found.get(("Deny", True)):
        return Decision(DENIED, found[("Deny", True)], notes=["an explicit Deny matches"])
    if found.get(("Deny", None)):
        labels = found[("Deny", None)]
        return Decision(UNDECIDED, labels, open_reasons(labels),
                        ["a Deny matches that cannot be evaluated here; it may or may not apply"])
    if found.get(("Allow", True)):
        return Decision(ALLOWED, found[("Allow", True)])
    if found.get(("Allow", None)):
        labels = found[("Allow", None)]
        return Decision(UNDECIDED, labels, open_reasons(labels),
                        ["only an Allow that cannot be evaluated here matches"])
    return Decision(DENIED, [], notes=["no statement allows it (implicit deny)"])


def connect_arn(region: str, account: str, resource_id: str, db_user: str,
                partition: str = "aws") -> str:
    """The rds-db:connect resource.  resource_id is the instance's DbiResourceId (db-...)
    or, for Aurora, the cluster's DbClusterResourceId (cluster-...)."""
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{db_user}"
