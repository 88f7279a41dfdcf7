# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS side of RDS IAM auth: the instance/cluster flag, the connect ARN, and whether a
principal's policies allow rds-db:connect on it."""
from __future__ import annotations

import json
import urllib.parse

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError, client
from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    connect_arn,
    evaluate,
)

try:
    import botocore.exceptions
except ImportError:  # pragma: no cover - aws.client reports it
    botocore = None

CONNECT = "rds-db:connect"


def _code(err) -> str:
    return err.response.get("Error", {}).get("Code", "") if hasattr(err, "response") else ""


def describe_database(params: dict, instance: str | None, cluster: str | None) -> dict:
    rds = client(params, "rds")
    try:
        if instance:
            db = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
            endpoint = db.get("Endpoint") or {}
            arn, resource_id = db["DBInstanceArn"], db.get("DbiResourceId")
            address, port = endpoint.get("Address"), endpoint.get("Port")
        else:
            db = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
            arn, resource_id = db["DBClusterArn"], db.get("DbClusterResourceId")
            address, port = db.get("Endpoint"), db.get("Port")
    except botocore.exceptions.ClientError as err:
        code = _code(err)
        what = f"DB instance {instance}" if instance else f"DB cluster {cluster}"
        if code in ("DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"):
            raise AwsError(f"{what} not found in {rds.meta.region_name}") from None
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise AwsError(f"access denied describing {what} ({code})") from None
        raise AwsError(f"describing {what} failed: {code}") from None
    except botocore.exceptions.EndpointConnectionError:
        raise AwsError(f"cannot reach RDS at {rds.meta.endpoint_url}") from None
    except botocore.exceptions.NoCredentialsError:
        raise AwsError("no AWS credentials found") from None
    _arn, _aws, _rds, region, account = arn.split(":")[:5]
    return {"iam_enabled": bool(db.get("IAMDatabaseAuthenticationEnabled")),
            "endpoint": address, "port": port, "resource_id": resource_id,
            "region": region, "account": account, "arn": arn,
            "engine": db.get("Engine"), "status": db.get("DBInstanceStatus") or db.get("Status"),
            "master_username": db.get("MasterUsername")}


def _principal(arn: str) -> tuple[str, str]:
    """('role'|'user', name) from a role, user or assumed-role ARN."""
    resource = arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        return "role", resource.split("/")[1]
    kind, _sep, path_and_name = resource.partition("/")
    if kind not in ("role", "user"):
        raise AwsError(f"principal_arn must be an IAM role, user or assumed-role ARN: {arn}")
    return kind, path_and_name.rsplit("/", 1)[-1]


def _document(doc) -> dict:
    if isinstance(doc, str):
        return json.loads(urllib.parse.unquote(doc))
    return doc


def principal_policies(iam, arn: str) -> list[tuple[str, dict]]:
    """Inline and attached managed policies of a role or user (and the user's groups)."""
    kind, name = _principal(arn)
    policies = []

    def managed(attached):
        for item in attached:
            meta = iam.get_policy(PolicyArn=item["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=item["PolicyArn"],
                                             VersionId=meta["DefaultVersionId"])
            policies.append((item["PolicyName"], _document(version["PolicyVersion"]["Document"])))

    if kind == "role":
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            policies.append((policy, _document(doc)))
        managed(iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
        return policies
    for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
        doc = iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
        policies.append((policy, _document(doc)))
    managed(iam.list_attached_user_policies(UserName=name)["AttachedPolicies"])
    for group in iam.list_groups_for_user(UserName=name)["Groups"]:
        for policy in iam.list_group_policies(GroupName=group["GroupName"])["PolicyNames"]:
            doc = iam.get_group_policy(GroupName=group["GroupName"],
                                       PolicyName=policy)["PolicyDocument"]
            policies.append((f"{group['GroupName']}/{policy}", _document(doc)))
        managed(iam.list_attached_group_policies(GroupName=group["GroupName"])["AttachedPolicies"])
    return policies


def connect_decision(params: dict, principal_arn: str, resource_arn: str) -> dict:
    """Ask IAM's policy simulator; where it does not answer, evaluate the policies here."""
    iam = client(params, "iam")
    # one attempt: where the simulator is missing (moto answers 500) we evaluate here
    simulator = client(params, "iam", max_attempts=1)
    try:
        simulated = simulator.simulate_principal_policy(
            PolicySourceArn=principal_arn, ActionNames=[CONNECT], ResourceArns=[resource_arn])
        result = simulated["EvaluationResults"][0]
        decision = {"allowed": ALLOWED, "explicitDeny": EXPLICIT_DENY,
                    "implicitDeny": IMPLICIT_DENY}.get(result["EvalDecision"], "undecided")
        statements = [{"policy": s.get("SourcePolicyId"), "sid": None, "effect": None}
                      for s in result.get("MatchedStatements", [])]
        return {"decision": decision, "connect_allowed": decision == ALLOWED,
                "statements": statements, "method": "simulate_principal_policy", "notes": []}
    except botocore.exceptions.ClientError as err:
        if _code(err) in ("NoSuchEntity", "NoSuchEntityException"):
            raise AwsError(f"principal {principal_arn} does not exist") from None
        fallback_reason = _code(err) or "error"
    except Exception as err:  # noqa: BLE001 - any simulator failure means: evaluate locally
        fallback_reason = type(err).__name__
    try:
        policies = principal_policies(iam, principal_arn)
    except botocore.exceptions.ClientError as err:
        if _code(err) in ("NoSuchEntity", "NoSuchEntityException"):
            raise AwsError(f"principal {principal_arn} does not exist") from None
        raise AwsError(f"reading the policies of {principal_arn} failed: {_code(err)}") from None
    verdict = evaluate(policies, CONNECT, resource_arn)
    return {"decision": verdict.decision, "connect_allowed": verdict.allowed,
            "statements": verdict.statements, "method": "local_evaluation",
            "notes": [_fallback_note(fallback_reason, len(policies)), *verdict.notes]}


def _fallback_note(reason: str, count: int) -> str:
    return (f"simulate_principal_policy unavailable ({reason}); evaluated {count} identity "
            "policies here (no SCPs, permission boundaries or session policies)")


def iam_facts(params: dict, instance: str | None, cluster: str | None, db_user: str,
              principal_arn: str | None) -> dict:
    """The database's IAM flag and endpoint, the connect ARN for db_user, and, given a
    principal, whether its policies allow rds-db:connect on that ARN."""
    db = describe_database(params, instance, cluster)
    arn = connect_arn(db["region"], db["account"], db["resource_id"], db_user)
    facts = {**db, "connect_arn": arn}
    if principal_arn:
        facts.update(connect_decision(params, principal_arn, arn))
    return facts


def modify_database(params: dict, instance: str | None, cluster: str | None, purpose: str,
                    **changes) -> None:
    """ModifyDBInstance or ModifyDBCluster, applied immediately; AwsError names the purpose
    and the error code, never the request (it may carry a password)."""
    try:
        rds = client(params, "rds")
        if instance:
            rds.modify_db_instance(DBInstanceIdentifier=instance, ApplyImmediately=True, **changes)
        else:
            rds.modify_db_cluster(DBClusterIdentifier=cluster, ApplyImmediately=True, **changes)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        raise AwsError(f"{purpose} for {instance or cluster} failed: {code}") from None
