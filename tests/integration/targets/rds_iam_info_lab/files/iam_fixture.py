"""Arrange IAM principals and the instance flag in moto for the rds_iam_info tests.

    iam_fixture.py principals CONNECT_ARN OTHER_ARN   -> prints {name: arn}
    iam_fixture.py flag INSTANCE on|off
"""
import contextlib
import json
import os
import sys

import boto3

kwargs = {"region_name": os.environ["AWS_REGION"], "endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
command = sys.argv[1]
if command == "flag":
    boto3.client("rds", **kwargs).modify_db_instance(
        DBInstanceIdentifier=sys.argv[2], ApplyImmediately=True,
        EnableIAMDatabaseAuthentication=sys.argv[3] == "on")
    sys.exit(0)

connect_arn, other_arn = sys.argv[2], sys.argv[3]
iam = boto3.client("iam", **kwargs)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def statement(effect, resource, action="rds-db:connect"):
    return {"Effect": effect, "Action": action, "Resource": resource}


principals = {
    "allow": [statement("Allow", connect_arn)],
    "deny": [statement("Allow", "*", "*"), statement("Deny", connect_arn)],
    "wrongid": [statement("Allow", other_arn)],
    "none": None,
}
arns = {}
for name, statements in principals.items():
    role = f"itest-app-{name}"
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role_policy(RoleName=role, PolicyName="db")
    try:
        arns[name] = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arns[name] = iam.get_role(RoleName=role)["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=role, PolicyName="db", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
print(json.dumps(arns))
