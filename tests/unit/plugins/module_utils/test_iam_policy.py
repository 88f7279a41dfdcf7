"""The local IAM evaluator on a table of identity policies."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    UNDECIDED,
    connect_arn,
    evaluate,
)

ARN = connect_arn("eu-west-1", "123456789012", "db-ABCDEFGH", "app_user")
OTHER_DB = connect_arn("eu-west-1", "123456789012", "db-ZZZZZZZZ", "app_user")


def allow(resource, action="rds-db:connect", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(resource, action="rds-db:connect", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


CASES = [
    ("exact allow", [allow(ARN)], ALLOWED),
    ("wildcard user", [allow(ARN.rsplit("/", 1)[0] + "/*")], ALLOWED),
    ("wildcard everything", [allow("*", action="rds-db:*")], ALLOWED),
    ("action case-insensitive", [allow(ARN, action="RDS-DB:Connect")], ALLOWED),
    ("question mark", [allow(ARN.replace("app_user", "app_use?"))], ALLOWED),
    ("user part is case-sensitive", [allow(ARN.replace("app_user", "App_User"))], IMPLICIT_DENY),
    ("wrong resource id", [allow(OTHER_DB)], IMPLICIT_DENY),
    ("other action", [allow(ARN, action="rds:DescribeDBInstances")], IMPLICIT_DENY),
    ("no policy", [], IMPLICIT_DENY),
    ("deny wins over allow", [allow("*", action="*"), deny(ARN)], EXPLICIT_DENY),
    ("NotAction allow", [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], ALLOWED),
    ("NotAction excludes it", [{"Effect": "Allow", "NotAction": "rds-db:*", "Resource": "*"}],
     IMPLICIT_DENY),
    ("NotResource allow", [{"Effect": "Allow", "Action": "rds-db:connect",
                            "NotResource": OTHER_DB}], ALLOWED),
    ("NotResource deny of another db", [allow(ARN), {"Effect": "Deny", "Action": "*",
                                                     "NotResource": ARN}], ALLOWED),
    ("conditional allow only", [allow(ARN, Condition={"IpAddress": {"aws:SourceIp": "10/8"}})],
     UNDECIDED),
    ("conditional deny beats allow", [allow(ARN), deny(ARN, Condition={"Bool": {"x": "true"}})],
     UNDECIDED),
    ("unconditional deny beats conditional", [deny(ARN), allow(ARN, Condition={"a": {}})],
     EXPLICIT_DENY),
    ("policy variable", [allow("arn:aws:rds-db:*:*:dbuser:*/${aws:username}")], UNDECIDED),
    ("list forms", [{"Effect": "Allow", "Action": ["s3:*", "rds-db:connect"],
                     "Resource": [OTHER_DB, ARN]}], ALLOWED),
]


@pytest.mark.parametrize(("label", "statements", "want"), CASES, ids=[c[0] for c in CASES])
def test_decisions(label, statements, want):
    decision = evaluate([("p", {"Version": "2012-10-17", "Statement": statements})],
                        "rds-db:connect", ARN)
    assert decision.decision == want, label


def test_deciding_statements_are_named():
    decision = evaluate([("app-db", {"Statement": [dict(allow(ARN), Sid="AppConnect")]}),
                         ("other", {"Statement": allow(OTHER_DB)})], "rds-db:connect", ARN)
    assert decision.allowed is True
    assert decision.statements == [{"policy": "app-db", "sid": "AppConnect", "effect": "Allow"}]


def test_connect_arn_format():
    assert ARN == "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEFGH/app_user"
