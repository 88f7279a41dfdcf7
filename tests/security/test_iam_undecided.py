"""Security review item 9: the IAM policy evaluator must never say "allowed" where AWS might
deny, and rotate's iam strategy must not switch an application to IAM on anything but a
decided "allowed" (its token test logs in with the controller's identity, not the app's).

The attack, on the lab's moto (real IAM entities, made with boto3): principals whose identity
policy allows rds-db:connect on the exact connect ARN, but whose permissions are taken away
by something a naive evaluation does not see: a permissions boundary, a session policy, a
Deny on the second page of attached policies, a wildcard the evaluator matched across ARN
segments, an inverted NotResource, a Condition, a simulator answer with MissingContextValues.
The old code said "allowed" to each of them (or "undecided" and converted anyway)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from botocore.stub import Stubber
from labfixtures import BUILD, lab_client, lab_store_options
from psycopg2 import sql

CONNECT = "rds-db:connect"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "sts:AssumeRole"}]})
FILLERS = 100  # list_attached_role_policies' default page: the 101st policy is on page 2


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": CONNECT, "Resource": resource, **extra}


class IamEntities:
    """Roles and managed policies made for one test module, removed afterwards."""

    def __init__(self, iam):
        self.iam, self.roles, self.policies = iam, [], []
        self.prefix = f"sec-iam-{uuid.uuid4().hex[:8]}"

    def managed(self, name: str, document: str) -> str:
        arn = self.iam.create_policy(PolicyName=f"{self.prefix}-{name}",
                                     PolicyDocument=document)["Policy"]["Arn"]
        self.policies.append(arn)
        return arn

    def role(self, name: str, inline: str | None = None, boundary: str | None = None,
             attach: tuple[str, ...] = ()) -> str:
        name = f"{self.prefix}-{name}"
        extra = {"PermissionsBoundary": boundary} if boundary else {}
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST,
                                   **extra)["Role"]["Arn"]
        self.roles.append(name)
        if inline:
            self.iam.put_role_policy(RoleName=name, PolicyName="db", PolicyDocument=inline)
        for policy_arn in attach:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        return arn

    def cleanup(self) -> None:
        for name in self.roles:
            # listed in full first: detaching while paging would shift the pages
            attached = [item["PolicyArn"] for page in self.iam.get_paginator(
                "list_attached_role_policies").paginate(RoleName=name)
                for item in page["AttachedPolicies"]]
            for policy_arn in attached:
                self.iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
            for inline in self.iam.list_role_policies(RoleName=name)["PolicyNames"]:
                self.iam.delete_role_policy(RoleName=name, PolicyName=inline)
            if self.iam.get_role(RoleName=name)["Role"].get("PermissionsBoundary"):
                self.iam.delete_role_permissions_boundary(RoleName=name)
            self.iam.delete_role(RoleName=name)
        for arn in self.policies:
            self.iam.delete_policy(PolicyArn=arn)


@pytest.fixture(scope="module")
def db(lab) -> dict:
    rds = lab_client(lab, "rds")
    found = rds.describe_db_instances(
        DBInstanceIdentifier=lab["PGAUTH_LAB_RDS_INSTANCE"])["DBInstances"][0]
    _arn, _partition, _svc, region, account = found["DBInstanceArn"].split(":")[:5]
    return {"region": region, "account": account, "resource_id": found["DbiResourceId"],
            "base": f"arn:aws:rds-db:{region}:{account}:dbuser:{found['DbiResourceId']}"}


@pytest.fixture(scope="module")
def entities(lab):
    made = IamEntities(lab_client(lab, "iam"))
    yield made
    made.cleanup()


def connect_arn(db: dict, user: str) -> str:
    return f"{db['base']}/{user}"


# Each case: a principal whose policies allow the exact connect ARN of USER at first sight.
USER = "sec_app"


def make_principals(lab: dict, made: IamEntities, db: dict) -> dict[str, str]:
    exact = connect_arn(db, USER)
    found = {}
    # a boundary that allows only S3: AWS denies rds-db:connect whatever the role's policy says
    boundary = made.managed("boundary", policy({"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "*"}))
    found["permissions_boundary"] = made.role("boundary", policy(allow(exact)), boundary)
    # one '*' standing for region and account: matches only if '*' crosses a ':'
    found["wildcard_across_segments"] = made.role(
        "wildcard", policy(allow(f"arn:aws:rds-db:*:dbuser:*/{USER}")))
    # an Allow of everything but another database: applies only through the inversion
    found["not_resource"] = made.role("notresource", policy(
        {"Effect": "Allow", "Action": CONNECT, "NotResource": connect_arn(db, "someone_else")}))
    # a Deny meant for every other user, written with a wildcard across segments: if IAM does
    # not let that '*' cross the colons, the Deny applies to USER too
    found["deny_not_resource_across_segments"] = made.role("denynotres", policy(
        allow(exact), {"Effect": "Deny", "Action": CONNECT,
                       "NotResource": f"arn:aws:rds-db:*:dbuser:*/{USER}"}))
    found["condition"] = made.role("condition", policy(
        allow(exact, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    # a real session of an allowed role, with a session policy that grants nothing
    session_role = made.role("session", policy(allow(exact)))
    sts = lab_client(lab, "sts")
    found["session_policy"] = sts.assume_role(
        RoleArn=session_role, RoleSessionName="app", Policy=policy(
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}))[
        "AssumedRoleUser"]["Arn"]
    return found


def run_tasks(lab: dict, tmp_path: Path, tasks: list[dict], variables: dict) -> dict:
    """Runs tasks with the collection copy under test (ansible-playbook, as a user would);
    returns the variable `out` they leave in out.json."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out.json"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        *tasks, {"name": "Keep the results", "ansible.builtin.copy": {
            "dest": str(out), "content": "{{ out | to_json }}", "mode": "0600"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(variables))
    env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "play.yml",
                           "-e", "@vars.yml"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def decisions(lab, entities, db, tmp_path_factory) -> dict[str, dict]:
    """rds_iam_info (the real module) on every principal, in one playbook run."""
    principals = make_principals(lab, entities, db)
    tasks = [{"name": "Decide each principal", "credops.pgauth.rds_iam_info": {
        "db_instance_identifier": lab["PGAUTH_LAB_RDS_INSTANCE"], "db_user": USER,
        "principal_arn": "{{ item.value }}"},
        "loop": "{{ principals | dict2items }}", "register": "decided"},
        {"name": "By case", "ansible.builtin.set_fact": {
            "out": "{{ dict(decided.results | map(attribute='item.key')"
                   " | zip(decided.results)) }}"}}]
    return run_tasks(lab, tmp_path_factory.mktemp("iam-decide"), tasks,
                     {"principals": principals})


UNDECIDED = [
    ("permissions_boundary", "permissions_boundary"),
    ("wildcard_across_segments", "wildcard_across_segments"),
    ("not_resource", "not_resource"),
    ("deny_not_resource_across_segments", "wildcard_across_segments"),
    ("condition", "condition"),
    ("session_policy", "session_policy"),
]


@pytest.mark.parametrize(("case", "reason"), UNDECIDED, ids=[c[0] for c in UNDECIDED])
def test_what_cannot_be_decided_is_undecided(decisions, case, reason):
    result = decisions[case]
    assert result["decision"] == "undecided", (case, result.get("decision"), result.get("notes"))
    assert result["connect_allowed"] is None
    assert reason in result["reasons"], result["reasons"]
    assert result["method"] == "local_evaluation"  # moto has no simulator (500)


def test_a_deny_on_the_second_page_of_attached_policies_decides(lab, entities, db, tmp_path):
    """The role's inline policy allows; 100 attached policies fill the first page of
    list_attached_role_policies (sorted by name), and a Deny is the 101st."""
    exact = connect_arn(db, USER)
    fillers = [entities.managed(f"aa-filler-{index:03d}", policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b{index}/*"}))
        for index in range(FILLERS)]
    deny = entities.managed("zz-deny", policy({"Effect": "Deny", "Action": CONNECT,
                                               "Resource": exact}))
    principal = entities.role("paged", policy(allow(exact)), attach=(*fillers, deny))
    iam = lab_client(lab, "iam")
    first = iam.list_attached_role_policies(RoleName=principal.rsplit("/", 1)[1])
    assert first["IsTruncated"] and deny not in {p["PolicyArn"] for p in first["AttachedPolicies"]}
    result = run_tasks(lab, tmp_path, [{"name": "Decide", "credops.pgauth.rds_iam_info": {
        "db_instance_identifier": lab["PGAUTH_LAB_RDS_INSTANCE"], "db_user": USER,
        "principal_arn": principal}, "register": "out"}], {})
    assert result["decision"] == "denied", (result["decision"], result.get("notes"))
    assert result["connect_allowed"] is False
    assert [s["effect"] for s in result["statements"]] == ["Deny"]
    assert result["statements"][0]["policy"].endswith("zz-deny")


def test_missing_context_values_from_the_simulator_are_undecided(
        lab, entities, db, monkeypatch):
    """Real AWS answers SimulatePrincipalPolicy with EvalDecision "allowed" while the
    conditions on context keys it did not have (aws:SourceVpc) were taken as absent; with
    ResourceArns given, they are listed per resource.  moto has no simulator, so its answer
    is staged here with botocore's Stubber; everything else is moto's real IAM."""
    from ansible_collections.credops.pgauth.plugins.module_utils import rds_iam
    exact = connect_arn(db, USER)
    principal = entities.role("simulated", policy(allow(exact, Condition={
        "StringNotEquals": {"aws:SourceVpc": "vpc-0123456789abcdef0"}})))
    real_client = rds_iam.client

    def simulator_or_real(params, service, max_attempts=None, **kwargs):
        made = real_client(params, service, max_attempts=max_attempts, **kwargs)
        if service != "iam" or max_attempts != 1:
            return made
        stub = Stubber(made)
        matched = [{"SourcePolicyId": "db", "SourcePolicyType": "role"}]
        stub.add_response("simulate_principal_policy", {"IsTruncated": False,
                          "EvaluationResults": [{
                              "EvalActionName": CONNECT, "EvalResourceName": exact,
                              "EvalDecision": "allowed", "MatchedStatements": matched,
                              "MissingContextValues": [],
                              "ResourceSpecificResults": [{
                                  "EvalResourceName": exact, "EvalResourceDecision": "allowed",
                                  "MatchedStatements": matched,
                                  "MissingContextValues": ["aws:SourceVpc"]}]}]})
        stub.activate()
        return made

    monkeypatch.setattr(rds_iam, "client", simulator_or_real)
    facts = rds_iam.iam_facts(lab_store_options(lab), lab["PGAUTH_LAB_RDS_INSTANCE"], None,
                              USER, principal)
    assert facts["decision"] == "undecided", facts
    assert facts["connect_allowed"] is None
    assert facts["reasons"] == ["missing_context_values"]
    assert facts["method"] == "simulate_principal_policy"
    assert any("aws:SourceVpc" in note for note in facts["notes"])


# --- rotate's iam strategy: refuses on undecided, proceeds with force -----------------------

def rotate_iam(lab: dict, tmp_path: Path, role: str, store: dict, principal: str,
               force: bool) -> dict:
    args = {"role": role, "dbname": "postgres", "strategy": "iam", "stores": [store],
            "db_instance_identifier": lab["PGAUTH_LAB_RDS_INSTANCE"],
            "principal_arn": principal, "force": force,
            "login_host": lab["PGAUTH_LAB_PGHOST"], "login_port": int(lab["PGAUTH_LAB_PGPORT"]),
            "login_user": lab["PGAUTH_LAB_ADMIN_USER"],
            "login_password": lab["PGAUTH_LAB_ADMIN_PASSWORD"], "login_db": "postgres",
            "ssl_mode": "verify-full", "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"],
            **{key: value for key, value in lab_store_options(lab).items()
               if key in ("region", "endpoint_url", "access_key", "secret_key")}}
    # no_log: the task's arguments carry the admin password
    return run_tasks(lab, tmp_path, [{"name": "Convert to IAM", "no_log": True,
                                      "credops.pgauth.pg_rotate": args,
                                      "register": "rotated", "ignore_errors": True},
                                     {"name": "What it did", "ansible.builtin.set_fact": {
                                         "out": "{{ rotated | combine({'msg': rotated.msg "
                                                "| default('')}) }}"}}], {})


def in_rds_iam(admin, role: str) -> bool:
    admin.execute(sql.SQL("SELECT pg_has_role({}, 'rds_iam', 'MEMBER')").format(
        sql.Literal(role)))
    return admin.fetchone()[0]


def test_iam_rotation_stops_on_undecided_and_goes_on_with_force(
        iam_lab, admin, temp_role, entities, db, tmp_path):
    role = temp_role(f"sec_iam_{uuid.uuid4().hex[:8]}", password="Sec-iam-Pw-0123456789")
    # AWS would deny this app: its boundary allows only S3.  The old evaluator said allowed.
    boundary = entities.managed("rot-boundary", policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))
    principal = entities.role("rot-app", policy(allow(connect_arn(db, role))), boundary)
    app = tmp_path / "app.json"
    app.write_text(json.dumps({"database": {
        "username": role, "password": "Sec-iam-Pw-0123456789",
        "host": iam_lab["PGAUTH_LAB_PGHOST"], "port": int(iam_lab["PGAUTH_LAB_PGPORT"]),
        "dbname": "postgres"}}, indent=2) + "\n")
    app.chmod(0o600)
    before = app.read_bytes()
    store = {"name": "app-json", "type": "file", "path": str(app), "format": "json",
             "key": "database", "value_format": "json"}

    refused = rotate_iam(iam_lab, tmp_path / "refused", role, store, principal, force=False)
    assert refused.get("failed"), refused
    assert "could not be decided" in refused["msg"] and "permissions_boundary" in refused["msg"]
    assert "pgauth_force" in refused["msg"]
    assert not in_rds_iam(admin, role), "rds_iam was granted although the run refused"
    assert app.read_bytes() == before, "a store changed although the run refused"

    forced = rotate_iam(iam_lab, tmp_path / "forced", role, store, principal, force=True)
    assert not forced.get("failed"), forced.get("msg")
    assert forced["outcome"] == "converted"
    assert any("pgauth_force" in note and "permissions_boundary" in note
               for note in forced["notes"]), forced["notes"]
    assert in_rds_iam(admin, role)
    held = json.loads(app.read_text())["database"]
    assert held["username"] == role and not held.get("password")
