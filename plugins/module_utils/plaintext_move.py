# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a plaintext ECS environment variable into a secret (store_plaintext_env's fix).

For every ``aws_ecs_task_definition`` store whose variable is a plaintext ``environment``
entry: the target store (a Secrets Manager secret or an SSM parameter) is made to hold the
credential if it does not exist yet, the task's execution role is checked - with the local
IAM policy evaluator - to be allowed to read it (and, when asked, given an inline policy that
allows exactly that), and a revision is registered whose container takes the variable from
``secrets`` (``valueFrom`` the target's ARN) instead.  Nothing is registered when the role
may not read the secret: the tasks would fail to start.  The rotation that follows then
reaches the secret through the task definition, and the service needs a new deployment to
read it (the aws_ecs_service consumer).

The order is what keeps it safe to stop anywhere: the secret exists before anything points
at it, the permission before the revision, and a run again finds the revision done.
"""
from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    call_errors,
    caller_account,
    client,
    describe_aws_error,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import FIELDS
from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import evaluate
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import (
    parse_principal,
    principal_policies,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    make_backend,
)

TARGET_TYPES = ("aws_secretsmanager", "aws_ssm")
# what ECS calls to fetch each kind of secret at task start
READ_ACTIONS = {"aws_secretsmanager": "secretsmanager:GetSecretValue",
                "aws_ssm": "ssm:GetParameters"}


def _target_arn(target: Store) -> str:
    described = target.metadata() or {}
    arn = described.get("ARN")
    if not arn:
        raise target.error("the store did not say its ARN")
    return arn


def _policy_name(arn: str) -> str:
    # the readable tail of two ARNs may be the same (/app/db and /app-db, one name in two
    # regions): the hash of the whole ARN (not a secret) keeps one grant from replacing another
    tail = re.sub(r"[^A-Za-z0-9+=,.@_-]", "-", arn.rsplit(":", 1)[-1])[:80]
    return f"pgauth-read-{tail}-{hashlib.sha256(arn.encode()).hexdigest()[:10]}"


def _may_read(options: dict, role_arn: str, action: str, arn: str) -> str:
    iam = client(options, "iam")
    try:
        policies = principal_policies(iam, parse_principal(role_arn))
    except call_errors() as err:
        raise AwsError(describe_aws_error(err, f"reading the policies of {role_arn}", "IAM",
                                          iam.meta.endpoint_url)) from None
    return evaluate(policies, action, arn).decision


def _check_grantable(options: dict, role_arn: str) -> None:
    account = parse_principal(role_arn).account
    if account != caller_account(options):
        # put_role_policy takes a name: it would grant the role of that name in this account
        raise AwsError(f"the execution role {role_arn} is in account {account}, not the one "
                       "these AWS credentials use; grant it there")


def _grant(options: dict, role_arn: str, action: str, arn: str) -> str:
    iam = client(options, "iam")
    name = _policy_name(arn)
    document = {"Version": "2012-10-17", "Statement": [
        {"Sid": "PgauthReadDatabaseSecret", "Effect": "Allow", "Action": action,
         "Resource": arn}]}
    try:
        iam.put_role_policy(RoleName=parse_principal(role_arn).name, PolicyName=name,
                            PolicyDocument=json.dumps(document))
    except call_errors() as err:
        raise AwsError(describe_aws_error(err, f"granting {action} to {role_arn}", "IAM",
                                          iam.meta.endpoint_url)) from None
    return name


def move_plaintext(stores: list[dict], target_spec: dict, options: dict, check_mode: bool,
                   grant: bool, defaults: dict) -> dict:
    """Move every plaintext ECS store of stores into target_spec.  Returns what was done and
    the store list the rotation should use: the target first (it holds the pending value),
    then the other stores; a moved ECS store is a user of the target now, not a copy.
    defaults: the credential fields a new secret gets besides the password (the target's
    username, host, port, dbname)."""
    if target_spec.get("type") not in TARGET_TYPES:
        raise StoreError(f"pgauth_move_plaintext_to: a {' or '.join(TARGET_TYPES)} store, "
                         f"not {target_spec.get('type')!r}")
    target = Store(target_spec, options)
    plaintext = [(spec, make_backend(spec, options)) for spec in stores
                 if spec.get("type") == "aws_ecs_task_definition"]
    plaintext = [(spec, backend) for spec, backend in plaintext
                 if backend.plaintext_exposure() is not None]
    others = [spec for spec in stores if spec is not target_spec
              and spec.get("name") != target_spec.get("name")
              and all(spec is not moved for moved, _backend in plaintext)]
    result = {"changed": False, "created": False, "moved": [],
              "stores": [target_spec, *others]}
    if not plaintext:
        return result
    if target.exists():
        held, _stored = target.read()
        if held is not None and held.username not in (None, defaults.get("username")):
            raise target.error(f"the secret holds a credential of {held.username!r}, not "
                               f"{defaults.get('username')!r}: the task would be pointed at "
                               "another role's password")
    else:
        cred, _stored = Store(plaintext[0][0], options).read()
        result["created"] = result["changed"] = True
        if not check_mode:
            # the value it holds now, even a placeholder: the rotation replaces it
            fields = {name: getattr(cred, name) for name in FIELDS} if cred else {}
            known = {key: value for key, value in fields.items() if value is not None}
            target.write(target.plan_write({**defaults, **known}))
    arn = _target_arn(target) if not (check_mode and result["created"]) else "(new)"
    json_key = target_spec.get("type") == "aws_secretsmanager" and \
        (target_spec.get("format") or "json") == "json"
    value_from = f"{arn}:password::" if json_key else arn
    action = READ_ACTIONS[target_spec["type"]]
    for _spec, backend in plaintext:
        role = backend.execution_role()
        if not role:
            raise backend.error("the task definition has no executionRoleArn: ECS could not "
                                "fetch the secret at task start")
        granted = None
        if arn == "(new)":
            # check mode, and the secret is not made yet: its ARN (and so the decision) is
            # known only once it exists; the real run checks before registering anything
            decision = "checked once the secret exists"
        else:
            decision = _may_read(options, role, action, arn)
        if decision not in ("allowed", "checked once the secret exists"):
            if not grant:
                raise backend.error(f"the execution role {role} may not {action} on {arn} "
                                    f"({decision}); grant it, or run with "
                                    "pgauth_grant_secret_read: true; nothing was registered")
            _check_grantable(options, role)
            granted = _grant(options, role, action, arn) if not check_mode else "(planned)"
        revision = backend.move_to_secrets(value_from, check_mode)
        result["changed"] = True
        result["moved"].append({"store": backend.label, "execution_role": role,
                                "permission": decision, "granted_policy": granted,
                                "revision": revision, "value_from": value_from})
    return result
