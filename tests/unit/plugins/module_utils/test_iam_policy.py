"""The local IAM evaluator on a table of identity policies: allowed or denied only where the
answer is exact, undecided (with the reason) everywhere AWS might answer otherwise."""
from __future__ import annotations

import time

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import (
    ALLOWED,
    CONDITION,
    DENIED,
    NOT_ACTION,
    NOT_RESOURCE,
    POLICY_VARIABLE,
    UNDECIDED,
    WILDCARD_ACROSS_SEGMENTS,
    WILDCARD_IN_SERVICE,
    connect_arn,
    evaluate,
    glob_match,
    match_resource,
)

ARN = connect_arn("eu-west-1", "123456789012", "db-ABCDEFGH", "app_user")
OTHER_DB = connect_arn("eu-west-1", "123456789012", "db-ZZZZZZZZ", "app_user")


def allow(resource, action="rds-db:connect", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(resource, action="rds-db:connect", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


CASES = [
    ("exact allow", [allow(ARN)], ALLOWED, []),
    ("wildcard user", [allow(ARN.rsplit("/", 1)[0] + "/*")], ALLOWED, []),
    ("wildcard everything", [allow("*", action="rds-db:*")], ALLOWED, []),
    ("action case-insensitive", [allow(ARN, action="RDS-DB:Connect")], ALLOWED, []),
    ("question mark", [allow(ARN.replace("app_user", "app_use?"))], ALLOWED, []),
    # within one segment '*' spans '/' (the IAM docs say so): exact
    ("star spans a slash in its segment", [allow("arn:aws:rds-db:*:*:dbuser:*/app*")], ALLOWED, []),
    ("every segment starred", [allow("arn:aws:rds-db:*:*:*:*")], ALLOWED, []),
    ("user part is case-sensitive", [allow(ARN.replace("app_user", "App_User"))], DENIED, []),
    ("wrong resource id", [allow(OTHER_DB)], DENIED, []),
    ("other action", [allow(ARN, action="rds:DescribeDBInstances")], DENIED, []),
    ("no policy", [], DENIED, []),
    ("deny wins over allow", [allow("*", action="*"), deny(ARN)], DENIED, []),
    # one '*' for region and account: a match only if '*' crosses a colon
    ("star across segments", [allow("arn:aws:rds-db:*:dbuser:*/app_user")], UNDECIDED,
     [WILDCARD_ACROSS_SEGMENTS]),
    ("trailing star across segments", [allow("arn:aws:rds-db:eu-west-1:*")], UNDECIDED,
     [WILDCARD_ACROSS_SEGMENTS]),
    ("question mark for a colon", [allow(ARN.replace(":dbuser:", ":dbuser?"))], UNDECIDED,
     [WILDCARD_ACROSS_SEGMENTS]),
    ("deny across segments makes an allow undecided",
     [allow(ARN), deny("arn:aws:rds-db:*:dbuser:*")], UNDECIDED, [WILDCARD_ACROSS_SEGMENTS]),
    ("wildcard in the service segment", [allow("arn:aws:rds-*:*:*:dbuser:*/*")], UNDECIDED,
     [WILDCARD_IN_SERVICE]),
    ("action wildcard for the service", [allow(ARN, action="rds*:connect")], UNDECIDED,
     [WILDCARD_IN_SERVICE]),
    ("action without a service", [allow(ARN, action="rds*")], UNDECIDED,
     [WILDCARD_ACROSS_SEGMENTS]),
    ("NotAction allow", [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], UNDECIDED,
     [NOT_ACTION]),
    ("NotAction excludes it", [{"Effect": "Allow", "NotAction": "rds-db:*", "Resource": "*"}],
     DENIED, []),
    ("NotResource allow", [{"Effect": "Allow", "Action": "rds-db:connect",
                            "NotResource": OTHER_DB}], UNDECIDED, [NOT_RESOURCE]),
    ("NotResource deny of another db", [allow(ARN), {"Effect": "Deny", "Action": "*",
                                                     "NotResource": OTHER_DB}], UNDECIDED,
     [NOT_RESOURCE]),
    ("NotResource deny that excludes this db", [allow(ARN), {"Effect": "Deny", "Action": "*",
                                                             "NotResource": ARN}], ALLOWED, []),
    ("conditional allow only", [allow(ARN, Condition={"IpAddress": {"aws:SourceIp": "10/8"}})],
     UNDECIDED, [CONDITION]),
    ("conditional deny beats allow", [allow(ARN), deny(ARN, Condition={"Bool": {"x": "true"}})],
     UNDECIDED, [CONDITION]),
    ("unconditional deny beats conditional", [deny(ARN), allow(ARN, Condition={"a": {}})],
     DENIED, []),
    ("conditional allow of another db", [allow(OTHER_DB, Condition={"a": {}})], DENIED, []),
    ("policy variable", [allow("arn:aws:rds-db:*:*:dbuser:*/${aws:username}")], UNDECIDED,
     [POLICY_VARIABLE]),
    ("policy variable that cannot match", [allow("arn:aws:s3:::${aws:username}")], DENIED, []),
    ("list forms", [{"Effect": "Allow", "Action": ["s3:*", "rds-db:connect"],
                     "Resource": [OTHER_DB, ARN]}], ALLOWED, []),
    ("exact allow next to an open one", [allow(ARN), allow("arn:aws:rds-db:*")], ALLOWED, []),
    ("a statement without Action grants nothing", [{"Effect": "Allow", "Resource": "*"}],
     DENIED, []),
]


@pytest.mark.parametrize(("label", "statements", "want", "reasons"), CASES,
                         ids=[c[0] for c in CASES])
def test_decisions(label, statements, want, reasons):
    decision = evaluate([("p", {"Version": "2012-10-17", "Statement": statements})],
                        "rds-db:connect", ARN)
    assert decision.decision == want, label
    assert decision.reasons == reasons, label
    assert decision.allowed is {ALLOWED: True, DENIED: False, UNDECIDED: None}[want]


def test_only_three_decisions():
    seen = {evaluate([("p", {"Statement": statements})], "rds-db:connect", ARN).decision
            for _label, statements, _want, _reasons in CASES}
    assert seen == {ALLOWED, DENIED, UNDECIDED}


def test_deciding_statements_are_named():
    decision = evaluate([("app-db", {"Statement": [dict(allow(ARN), Sid="AppConnect")]}),
                         ("other", {"Statement": allow(OTHER_DB)})], "rds-db:connect", ARN)
    assert decision.allowed is True
    assert decision.statements == [{"policy": "app-db", "sid": "AppConnect", "effect": "Allow"}]


def test_undecided_statements_carry_their_reasons():
    decision = evaluate([("cond", {"Statement": [allow(ARN, Condition={"a": {}})]}),
                         ("wide", {"Statement": [allow("arn:aws:rds-db:*")]})],
                        "rds-db:connect", ARN)
    assert decision.decision == UNDECIDED
    assert decision.reasons == [CONDITION, WILDCARD_ACROSS_SEGMENTS]
    assert [s["undecided"] for s in decision.statements] == [[CONDITION],
                                                             [WILDCARD_ACROSS_SEGMENTS]]


def test_a_db_user_with_a_colon_matches_exactly():
    arn = connect_arn("eu-west-1", "123456789012", "db-ABCDEFGH", "odd:user")
    assert match_resource(arn, arn) is True
    assert match_resource(arn.replace("odd:user", "*"), arn) == WILDCARD_ACROSS_SEGMENTS


def test_glob_is_linear_time():
    # a regex translation of this backtracks exponentially; the two-pointer match does not
    pattern, text = "*a" * 30 + "b", "a" * 5000
    started = time.monotonic()
    assert not glob_match(pattern, text)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(("pattern", "text", "want"), [
    ("", "", True), ("*", "", True), ("?", "", False), ("a*c", "abc", True),
    ("a*c", "ab", False), ("*/*", "x/y", True), ("a?c", "a/c", True), ("**", "x", True),
    ("A*", "abc", False)])
def test_glob(pattern, text, want):
    assert glob_match(pattern, text) is want


def test_connect_arn_format():
    assert ARN == "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEFGH/app_user"
    assert connect_arn("cn-north-1", "1", "cluster-ABC", "u", partition="aws-cn") == \
        "arn:aws-cn:rds-db:cn-north-1:1:dbuser:cluster-ABC/u"


# --- rds_iam: the principal, the caps on an Allow, the simulator's answer, the listings ------

def _rds_iam():
    pytest.importorskip("botocore")
    from ansible_collections.credops.pgauth.plugins.module_utils import rds_iam
    return rds_iam


@pytest.mark.parametrize(("arn", "want"), [
    ("arn:aws:iam::123456789012:role/app", ("role", "app", "123456789012", False)),
    ("arn:aws:iam::123456789012:role/team/app", ("role", "app", "123456789012", False)),
    ("arn:aws:iam::123456789012:user/division/bob", ("user", "bob", "123456789012", False)),
    ("arn:aws:sts::123456789012:assumed-role/app/i-0abc", ("role", "app", "123456789012", True)),
])
def test_principals(arn, want):
    found = _rds_iam().parse_principal(arn)
    assert (found.kind, found.name, found.account, found.session) == want


@pytest.mark.parametrize("arn", ["arn:aws:iam::1:group/ops", "arn:aws:sts::1:federated-user/x",
                                 "app", "arn:aws:iam::1:role/"])
def test_other_principals_are_refused(arn):
    rds_iam = _rds_iam()
    with pytest.raises(rds_iam.AwsError, match="principal_arn must be"):
        rds_iam.parse_principal(arn)


def test_a_cap_turns_an_allow_undecided_and_leaves_a_deny():
    rds_iam = _rds_iam()
    allowed = {"decision": ALLOWED, "connect_allowed": True, "reasons": [], "notes": []}
    denied = {**allowed, "decision": DENIED, "connect_allowed": False}
    caps = [(rds_iam.SCP, "in an organization")]
    assert rds_iam._limited(allowed, caps)["decision"] == UNDECIDED
    assert rds_iam._limited(allowed, caps)["reasons"] == ["scp"]
    assert rds_iam._limited(allowed, caps)["connect_allowed"] is None
    assert rds_iam._limited(denied, caps) == denied
    assert rds_iam._limited(allowed, []) == allowed


PARAMS = {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9", "access_key": "AKIDEXAMPLE",
          "secret_key": "not-a-secret"}


def _stubbed(rds_iam, monkeypatch, service: str, responses: list):
    """rds_iam.client for `service` answers from botocore's Stubber (nothing leaves)."""
    from botocore.stub import Stubber
    real = rds_iam.client

    def fake(params, name, max_attempts=None, **kwargs):
        made = real(params, name, max_attempts=max_attempts, **kwargs)
        if name == service:
            stub = Stubber(made)
            for method, response in responses:
                if isinstance(response, str):
                    stub.add_client_error(method, service_error_code=response)
                else:
                    stub.add_response(method, response)
            stub.activate()
        return made

    monkeypatch.setattr(rds_iam, "client", fake)


def _simulation(decision: str, missing=(), top_missing=()):
    return {"IsTruncated": False, "EvaluationResults": [{
        "EvalActionName": "rds-db:connect", "EvalResourceName": ARN, "EvalDecision": decision,
        "MissingContextValues": list(top_missing),
        "ResourceSpecificResults": [{"EvalResourceName": ARN, "EvalResourceDecision": decision,
                                     "MissingContextValues": list(missing)}]}]}


@pytest.mark.parametrize(("answer", "want", "reasons"), [
    (_simulation("allowed"), ALLOWED, []),
    (_simulation("explicitDeny"), DENIED, []),
    (_simulation("implicitDeny"), DENIED, []),
    (_simulation("allowed", missing=["aws:SourceVpc"]), UNDECIDED, ["missing_context_values"]),
    (_simulation("implicitDeny", top_missing=["aws:SourceIp"]), UNDECIDED,
     ["missing_context_values"]),
])
def test_the_simulators_answer(monkeypatch, answer, want, reasons):
    rds_iam = _rds_iam()
    _stubbed(rds_iam, monkeypatch, "iam", [("simulate_principal_policy", answer)])
    found = rds_iam._simulate(PARAMS, "arn:aws:iam::123456789012:role/app", ARN)
    assert (found["decision"], found["reasons"]) == (want, reasons)


@pytest.mark.parametrize(("answer", "want"), [
    ("AWSOrganizationsNotInUseException", None),
    ("AccessDeniedException", "could not be read"),
    ({"Organization": {"Id": "o-exampleorgid"}}, "in an AWS Organization")])
def test_scps_are_known_absent_only_outside_an_organization(monkeypatch, answer, want):
    rds_iam = _rds_iam()
    _stubbed(rds_iam, monkeypatch, "organizations", [("describe_organization", answer)])
    found = rds_iam._organization_note(PARAMS)
    assert found is None if want is None else want in found


def test_listings_follow_every_page_and_refuse_an_endless_one():
    rds_iam = _rds_iam()
    pages = {None: {"PolicyNames": ["a"], "IsTruncated": True, "Marker": "2"},
             "2": {"PolicyNames": ["b"], "IsTruncated": False}}

    def list_role_policies(Marker=None, **_kwargs):  # boto3 calls it with Marker=
        return pages[Marker]

    assert rds_iam._all(list_role_policies, "PolicyNames", RoleName="r") == ["a", "b"]

    def no_marker(**_kwargs):
        return {"PolicyNames": ["a"], "IsTruncated": True}

    with pytest.raises(rds_iam.ListingIncomplete):
        rds_iam._all(no_marker, "PolicyNames", RoleName="r")


def test_an_aurora_instance_uses_its_clusters_resource_id(monkeypatch):
    rds_iam = _rds_iam()
    instance = {"DBInstanceIdentifier": "aurora-1", "Engine": "aurora-postgresql",
                "DBClusterIdentifier": "aurora", "DbiResourceId": "db-INSTANCE",
                "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:aurora-1",
                "IAMDatabaseAuthenticationEnabled": False,
                "Endpoint": {"Address": "aurora-1.example", "Port": 5432}}
    cluster = {"DBClusterIdentifier": "aurora", "DbClusterResourceId": "cluster-ABCDEFGH",
               "DBClusterArn": "arn:aws:rds:eu-west-1:123456789012:cluster:aurora",
               "IAMDatabaseAuthenticationEnabled": True, "Engine": "aurora-postgresql"}
    _stubbed(rds_iam, monkeypatch, "rds", [("describe_db_instances", {"DBInstances": [instance]}),
                                           ("describe_db_clusters", {"DBClusters": [cluster]})])
    facts = rds_iam.iam_facts(PARAMS, "aurora-1", None, "app_user", None)
    assert facts["connect_arn"] == ("arn:aws:rds-db:eu-west-1:123456789012:dbuser:"
                                    "cluster-ABCDEFGH/app_user")
    assert facts["iam_enabled"] is True and facts["aurora_cluster"] == "aurora"
