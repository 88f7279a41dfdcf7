# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small IAM identity-policy evaluator for one question: may this principal rds-db:connect
as this database user?  Used where iam:SimulatePrincipalPolicy is unavailable.

Rules, as IAM applies them to identity policies: an explicit Deny wins, then any Allow,
else the request is implicitly denied.  Action/NotAction match case-insensitively with
``*`` and ``?``; Resource/NotResource match case-sensitively (the database user part of a
``dbuser`` ARN is case-sensitive).  A statement with a Condition, or with a policy variable
in its resources, cannot be decided here: it makes the answer "undecided" instead of a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, UNDECIDED = (
    "allowed", "explicit_deny", "implicit_deny", "undecided")


@lru_cache(maxsize=512)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


_POLICY_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _matches(patterns, value: str, ignore_case: bool) -> bool:
    # a policy variable (${aws:username}) could be anything here: match as '*', and the
    # caller marks the statement undecided
    return any(_glob(_POLICY_VARIABLE.sub("*", str(pattern)), ignore_case).match(value)
               for pattern in _as_list(patterns))


@dataclass
class Decision:
    decision: str
    statements: list[dict] = field(default_factory=list)  # the deciding statements
    notes: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool | None:
        return {ALLOWED: True, UNDECIDED: None}.get(self.decision, False)


def statement_applies(statement: dict, action: str, resource: str) -> bool:
    if "Action" in statement:
        if not _matches(statement["Action"], action, True):
            return False
    elif "NotAction" in statement:
        if _matches(statement["NotAction"], action, True):
            return False
    else:
        return False
    if "Resource" in statement:
        return _matches(statement["Resource"], resource, False)
    if "NotResource" in statement:
        return not _matches(statement["NotResource"], resource, False)
    return False


def evaluate(policies: list[tuple[str, dict]], action: str, resource: str) -> Decision:
    """policies: (name, document) pairs.  Returns the decision and the statements behind it."""
    allows, denies, open_questions = [], [], []
    for name, document in policies:
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            if not isinstance(statement, dict):
                continue
            if not statement_applies(statement, action, resource):
                continue
            label = {"policy": name, "sid": statement.get("Sid") or f"#{index}",
                     "effect": statement.get("Effect")}
            resources = _as_list(statement.get("Resource") or statement.get("NotResource"))
            uncertain = "Condition" in statement or any("${" in str(r) for r in resources)
            if uncertain:
                open_questions.append(label)
            elif statement.get("Effect") == "Deny":
                denies.append(label)
            elif statement.get("Effect") == "Allow":
                allows.append(label)
    if denies:
        return Decision(EXPLICIT_DENY, denies)
    conditional_denies = [s for s in open_questions if s["effect"] == "Deny"]
    if conditional_denies:
        return Decision(UNDECIDED, conditional_denies,
                        ["a Deny with a condition or policy variable matches; cannot evaluate it"])
    if allows:
        return Decision(ALLOWED, allows)
    if open_questions:
        return Decision(UNDECIDED, open_questions,
                        ["only an Allow with a condition or policy variable matches"])
    return Decision(IMPLICIT_DENY, [], ["no statement allows it"])


def connect_arn(region: str, account: str, resource_id: str, db_user: str) -> str:
    return f"arn:aws:rds-db:{region}:{account}:dbuser:{resource_id}/{db_user}"
