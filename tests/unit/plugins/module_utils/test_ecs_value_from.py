"""value_from_store: what an ECS secrets entry's valueFrom may point at (pure)."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.ecs_value_from import (
    ValueFromError,
    value_from_store,
)

MINE = "123456789012"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{MINE}:secret:prod/app-AbCdEf"


def store(ref: str, fmt: str | None = None) -> dict:
    return value_from_store(ref, {"profile": "ops", "region": "us-east-1"}, "ecs -> x", fmt,
                            lambda: MINE)


def test_a_secret_takes_its_own_region_and_json_for_a_key():
    assert store(SECRET + ":password::") == {
        "profile": "ops", "region": "eu-west-1", "name": "ecs -> x",
        "type": "aws_secretsmanager", "secret_id": SECRET, "format": "json"}
    assert store(SECRET)["format"] == "password"
    assert store(SECRET, "dsn")["format"] == "dsn"


@pytest.mark.parametrize("ref", ["/prod/db/password", "db_password",
                                 f"arn:aws:ssm:eu-west-1:{MINE}:parameter/prod/db"])
def test_parameters_by_name_or_arn(ref):
    found = store(ref)
    assert found["type"] == "aws_ssm" and found["parameter"] == ref
    assert "endpoint_url" not in found


@pytest.mark.parametrize("ref, message", [
    ("arn:aws:secretsmanager:eu-west-1:999999999999:secret:theirs-AbCdEf",
     "account 999999999999"),
    (SECRET + ":username::", "only password"),
    (SECRET + ":password:AWSPREVIOUS:", "pins a version stage"),
    (SECRET + "::: ", "pins a version"),
    ("arn:aws:s3:::bucket/key", "neither a Secrets Manager secret nor an SSM parameter"),
])
def test_refused(ref, message):
    with pytest.raises(ValueFromError, match=message):
        store(ref)
