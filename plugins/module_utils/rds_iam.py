# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS side of RDS IAM auth: the instance/cluster flag, the connect ARN, and whether a
principal's policies allow rds-db:connect on it."""
from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    botocore_exceptions,
    client,
    describe_aws_error,
    error_code,
)
from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import (
    ALLOWED,
    DENIED,
    UNDECIDED,
    connect_arn,
    evaluate,
)

CONNECT = "rds-db:connect"

# reasons for undecided found here (the evaluator adds condition, policy_variable,
# wildcard_across_segments, wildcard_in_service, not_action, not_resource)
MISSING_CONTEXT_VALUES = "missing_context_values"
SIMULATOR_DECISION = "simulator_decision"
SESSION_POLICY = "session_policy"
PERMISSIONS_BOUNDARY = "permissions_boundary"
SCP = "scp"
CROSS_ACCOUNT = "cross_account"
PRINCIPAL_IN_OTHER_ACCOUNT = "principal_in_other_account"
POLICIES_UNREADABLE = "policies_unreadable"
LISTING_INCOMPLETE = "listing_incomplete"


def _account(arn: str) -> str:
    parts = str(arn).split(":")
    return parts[4] if len(parts) > 4 else ""


def describe_database(params: dict, instance: str | None, cluster: str | None) -> dict:
    """The IAM flag, endpoint and the resource id the connect ARN uses.  An Aurora cluster's
    IAM users are authorized on the cluster: the ARN names its DbClusterResourceId
    (cluster-...), even for a connection to one of its instances, and the flag is the
    cluster's (Aurora User Guide, UsingWithRDS.IAMDBAuth.IAMPolicy:
    arn:aws:rds-db:region:account-id:dbuser:DbClusterResourceId/db-user-name)."""
    rds = client(params, "rds")
    aurora_cluster = None
    try:
        if instance:
            db = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
            endpoint = db.get("Endpoint") or {}
            arn, resource_id = db["DBInstanceArn"], db.get("DbiResourceId")
            address, port = endpoint.get("Address"), endpoint.get("Port")
            iam_enabled = db.get("IAMDatabaseAuthenticationEnabled")
            if db.get("DBClusterIdentifier") and str(db.get("Engine", "")).startswith("aurora"):
                aurora_cluster = db["DBClusterIdentifier"]
                member_of = rds.describe_db_clusters(
                    DBClusterIdentifier=aurora_cluster)["DBClusters"][0]
                resource_id = member_of.get("DbClusterResourceId")
                iam_enabled = member_of.get("IAMDatabaseAuthenticationEnabled")
        else:
            db = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
            arn, resource_id = db["DBClusterArn"], db.get("DbClusterResourceId")
            address, port = db.get("Endpoint"), db.get("Port")
            iam_enabled = db.get("IAMDatabaseAuthenticationEnabled")
    except (botocore_exceptions().ClientError, botocore_exceptions().BotoCoreError) as err:
        # a BotoCoreError (a timeout, a broken response) was a traceback here once
        what = f"DB instance {instance}" if instance else f"DB cluster {cluster}"
        if error_code(err) in ("DBInstanceNotFound", "DBInstanceNotFoundFault",
                               "DBClusterNotFoundFault"):
            raise AwsError(f"{what} not found in {rds.meta.region_name}") from None
        raise AwsError(describe_aws_error(err, f"describing {what}", "RDS",
                                          rds.meta.endpoint_url)) from None
    _arn, partition, _rds, region, account = arn.split(":")[:5]
    return {"iam_enabled": bool(iam_enabled),
            "endpoint": address, "port": port, "resource_id": resource_id,
            "region": region, "account": account, "partition": partition, "arn": arn,
            "aurora_cluster": aurora_cluster,
            "engine": db.get("Engine"), "status": db.get("DBInstanceStatus") or db.get("Status"),
            "master_username": db.get("MasterUsername"),
            # ManageMasterUserPassword: the master password lives in a secret RDS owns
            "master_user_secret_arn": (db.get("MasterUserSecret") or {}).get("SecretArn")}


@dataclass(frozen=True)
class Principal:
    arn: str
    kind: str  # role | user
    name: str
    account: str
    session: bool  # an assumed-role session ARN (sts), not the role itself


def parse_principal(arn: str) -> Principal:
    """A role, user or assumed-role session ARN; AwsError for anything else."""
    parts = str(arn).split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ("iam", "sts"):
        raise AwsError(f"principal_arn must be an IAM role, user or assumed-role ARN: {arn}")
    service, account, resource = parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/") and resource.count("/") >= 2:
        return Principal(arn, "role", resource.split("/")[1], account, True)
    kind, _sep, path_and_name = resource.partition("/")
    if service != "iam" or kind not in ("role", "user") or not path_and_name:
        raise AwsError(f"principal_arn must be an IAM role, user or assumed-role ARN: {arn}")
    return Principal(arn, kind, path_and_name.rsplit("/", 1)[-1], account, False)


def _document(doc) -> dict:
    if isinstance(doc, str):
        return json.loads(urllib.parse.unquote(doc))
    return doc


class ListingIncomplete(Exception):
    """A list_* call said there is more but gave no way to get it."""


MAX_PAGES = 100


def _all(call, key: str, **kwargs) -> list:
    """Every item of a paginated IAM list_* call, following Marker while IsTruncated: a policy
    on the second page counts as much as one on the first (a Deny there decides)."""
    items, marker = [], None
    for _page in range(MAX_PAGES):
        page = call(**kwargs, **({"Marker": marker} if marker else {}))
        items.extend(page.get(key) or [])
        if not page.get("IsTruncated"):
            return items
        marker = page.get("Marker")
        if not marker:
            break
    raise ListingIncomplete(f"{getattr(call, '__name__', key)}: the listing did not end "
                            f"within {MAX_PAGES} pages")


def principal_policies(iam, principal: Principal) -> list[tuple[str, dict]]:
    """Inline and attached managed policies of a role or user (and the user's groups),
    every page of every listing."""
    name, policies = principal.name, []

    def managed(attached):
        for item in attached:
            meta = iam.get_policy(PolicyArn=item["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=item["PolicyArn"],
                                             VersionId=meta["DefaultVersionId"])
            policies.append((item["PolicyName"], _document(version["PolicyVersion"]["Document"])))

    if principal.kind == "role":
        for policy in _all(iam.list_role_policies, "PolicyNames", RoleName=name):
            doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            policies.append((policy, _document(doc)))
        managed(_all(iam.list_attached_role_policies, "AttachedPolicies", RoleName=name))
        return policies
    for policy in _all(iam.list_user_policies, "PolicyNames", UserName=name):
        doc = iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
        policies.append((policy, _document(doc)))
    managed(_all(iam.list_attached_user_policies, "AttachedPolicies", UserName=name))
    for group in _all(iam.list_groups_for_user, "Groups", UserName=name):
        group_name = group["GroupName"]
        for policy in _all(iam.list_group_policies, "PolicyNames", GroupName=group_name):
            doc = iam.get_group_policy(GroupName=group_name, PolicyName=policy)["PolicyDocument"]
            policies.append((f"{group_name}/{policy}", _document(doc)))
        managed(_all(iam.list_attached_group_policies, "AttachedPolicies",
                     GroupName=group_name))
    return policies


def _entity(iam, principal: Principal) -> dict:
    """GetRole/GetUser: the entity's real ARN (with its path) and its permissions boundary."""
    if principal.kind == "role":
        return iam.get_role(RoleName=principal.name)["Role"]
    return iam.get_user(UserName=principal.name)["User"]


def _undecided(method: str, reasons: list[str], notes: list[str],
               statements: list | None = None) -> dict:
    return {"decision": UNDECIDED, "connect_allowed": None, "reasons": reasons,
            "statements": statements or [], "method": method, "notes": notes}


def _simulate(params: dict, source_arn: str, resource_arn: str) -> dict | str:
    """The simulator's answer, or why there is none (then we evaluate here)."""
    # one attempt: where the simulator is missing (moto answers 500) we evaluate here
    simulator = client(params, "iam", max_attempts=1)
    try:
        simulated = simulator.simulate_principal_policy(
            PolicySourceArn=source_arn, ActionNames=[CONNECT], ResourceArns=[resource_arn])
    except botocore_exceptions().ClientError as err:
        if error_code(err) in ("NoSuchEntity", "NoSuchEntityException"):
            raise AwsError(f"principal {source_arn} does not exist") from None
        return error_code(err) or "error"
    except Exception as err:  # noqa: BLE001 - any simulator failure means: evaluate locally
        return type(err).__name__
    result = (simulated.get("EvaluationResults") or [{}])[0]
    # with ResourceArns given, the per-resource part carries the decision and the missing
    # context keys (the top level has them only for Resource "*")
    specific = next((item for item in result.get("ResourceSpecificResults") or []
                     if item.get("EvalResourceName") == resource_arn), {})
    raw = specific.get("EvalResourceDecision") or result.get("EvalDecision")
    missing = sorted({*(result.get("MissingContextValues") or []),
                      *(specific.get("MissingContextValues") or [])})
    statements = [{"policy": s.get("SourcePolicyId"), "sid": None, "effect": None}
                  for s in (specific.get("MatchedStatements")
                            or result.get("MatchedStatements") or [])]
    method = "simulate_principal_policy"
    if missing:
        # the simulator evaluated the conditions on these keys as absent: a Deny or an
        # Allow that needs them may go either way for the real request
        lacked = f"the simulator lacked the context keys {', '.join(missing)} (it said {raw})"
        return _undecided(method, [MISSING_CONTEXT_VALUES], [lacked], statements)
    decision = {"allowed": ALLOWED, "explicitDeny": DENIED, "implicitDeny": DENIED}.get(raw)
    if decision is None:
        return _undecided(method, [SIMULATOR_DECISION],
                          [f"the simulator answered {raw!r}"], statements)
    return {"decision": decision, "connect_allowed": decision == ALLOWED, "reasons": [],
            "statements": statements, "method": method,
            "notes": [f"the simulator said {raw}"]}


def _organization_note(params: dict) -> str | None:
    """None when the account is in no AWS Organization (no SCP can apply); else why SCPs
    may remove the Allow."""
    try:
        client(params, "organizations", max_attempts=1).describe_organization()
    except botocore_exceptions().ClientError as err:
        if error_code(err) == "AWSOrganizationsNotInUseException":
            return None
        return f"whether SCPs apply could not be read ({error_code(err) or 'error'})"
    except Exception as err:  # noqa: BLE001 - unknown is undecided, not an error of the run
        return f"whether SCPs apply could not be read ({type(err).__name__})"
    return "the account is in an AWS Organization: its SCPs are not visible here"


def connect_decision(params: dict, principal_arn: str, resource_arn: str) -> dict:
    """allowed | denied | undecided for principal_arn doing rds-db:connect on resource_arn,
    with the reasons an answer could not be decided.  IAM's policy simulator first; where it
    does not answer, the principal's policies are evaluated here."""
    principal = parse_principal(principal_arn)
    iam = client(params, "iam")
    try:
        entity = _entity(iam, principal)
    except (botocore_exceptions().ClientError, botocore_exceptions().BotoCoreError) as err:
        if error_code(err) in ("NoSuchEntity", "NoSuchEntityException"):
            raise AwsError(f"principal {principal_arn} does not exist") from None
        return _undecided("local_evaluation", [POLICIES_UNREADABLE],
                          [f"reading {principal_arn} failed ({error_code(err) or 'error'})"])
    entity_arn = entity.get("Arn") or principal_arn
    entity_account = _account(entity_arn)
    if entity_account != principal.account:
        # IAM names are per account: these credentials see another account's namesake
        elsewhere = (f"{principal_arn} is in account {principal.account}; these AWS "
                     f"credentials read account {entity_account}")
        return _undecided("local_evaluation", [PRINCIPAL_IN_OTHER_ACCOUNT], [elsewhere])
    # What can only take an Allow away, and that no evaluation of the identity policies sees
    limits: list[tuple[str, str]] = []
    if principal.session:
        note = (f"an assumed-role session: its session policies are unknown (the role "
                f"{entity_arn} was evaluated)")
        limits.append((SESSION_POLICY, note))
    if _account(resource_arn) != principal.account:
        note = ("the principal and the database are in different accounts (RDS wants a "
                "role in the database's account)")
        limits.append((CROSS_ACCOUNT, note))
    simulated = _simulate(params, entity_arn, resource_arn)
    if isinstance(simulated, dict):
        return _limited(simulated, limits)
    boundary = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary:
        note = f"a permissions boundary ({boundary}) may not allow rds-db:connect"
        limits.append((PERMISSIONS_BOUNDARY, note))
    unavailable = (f"simulate_principal_policy unavailable ({simulated}); evaluated the "
                   "identity policies here")
    notes = [unavailable]
    try:
        policies = principal_policies(iam, principal)
    except ListingIncomplete as err:
        return _undecided("local_evaluation", [LISTING_INCOMPLETE], [*notes, str(err)])
    except (botocore_exceptions().ClientError, botocore_exceptions().BotoCoreError) as err:
        failed = (f"reading the policies of {principal_arn} failed "
                  f"({error_code(err) or type(err).__name__})")
        return _undecided("local_evaluation", [POLICIES_UNREADABLE], [*notes, failed])
    verdict = evaluate(policies, CONNECT, resource_arn)
    local = {"decision": verdict.decision, "connect_allowed": verdict.allowed,
             "reasons": verdict.reasons, "statements": verdict.statements,
             "method": "local_evaluation",
             "notes": [*notes, f"{len(policies)} identity policies", *verdict.notes]}
    if verdict.decision != DENIED:  # an SCP can only matter to an Allow
        scp = _organization_note(params)
        if scp:
            limits.append((SCP, scp))
    return _limited(local, limits)


def _limited(decision: dict, limits: list[tuple[str, str]]) -> dict:
    """Session policies, boundaries, SCPs and cross-account rules can only take an Allow
    away: a denied stays denied, anything else becomes undecided with their reasons."""
    if not limits or decision["decision"] == DENIED:
        return decision
    return {**decision, "decision": UNDECIDED, "connect_allowed": None,
            "reasons": list(dict.fromkeys([*decision["reasons"], *(r for r, _n in limits)])),
            "notes": [*decision["notes"], *(note for _r, note in limits)]}


def iam_facts(params: dict, instance: str | None, cluster: str | None, db_user: str,
              principal_arn: str | None) -> dict:
    """The database's IAM flag and endpoint, the connect ARN for db_user, and, given a
    principal, whether its policies allow rds-db:connect on that ARN."""
    db = describe_database(params, instance, cluster)
    arn = connect_arn(db["region"], db["account"], db["resource_id"], db_user,
                      partition=db["partition"])
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
    except (botocore_exceptions().BotoCoreError, botocore_exceptions().ClientError) as err:
        code = error_code(err) or type(err).__name__
        raise AwsError(f"{purpose} for {instance or cluster} failed: {code}") from None
