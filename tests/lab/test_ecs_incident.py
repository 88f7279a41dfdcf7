"""The ECS placeholder incident (issue 19), on the lab: a task definition whose environment
holds RDS_PASSWORD=DB for the RDS master user.  diagnose names the placeholder first and the
plaintext variable beside it; rotate (rds_api) changes the master password and brings the
task definition and an SSM copy to it; the new password logs in to the lab PostgreSQL.

And remediate with pgauth_move_plaintext_to: the variable moved into a Secrets Manager secret."""
from __future__ import annotations

import json
import secrets as random

from labfixtures import create_admin_role, lab_client, scenario
from runbooks import assert_no_leak, logs_in, read_report, read_stores, run_playbook, vars_for
from test_rotate_runbook import make_ops_master, rotate_vars


def _task_definition(lab: dict, family: str, value: str) -> None:
    lab_client(lab, "ecs").register_task_definition(
        family=family, executionRoleArn="arn:aws:iam::123456789012:role/ops-exec",
        containerDefinitions=[{"name": "api", "image": "ops/api:7", "memory": 256,
                               "environment": [{"name": "RDS_PASSWORD", "value": value},
                                               {"name": "RDS_USER", "value": "ops_master"}]}])


def test_ecs_placeholder_is_named_first_and_rotation_reaches_the_task_definition(lab, tmp_path):
    first = "ops-" + random.token_urlsafe(18)
    family = "ops-api-" + random.token_hex(4)
    parameter = f"/ops/{family}/password"
    with scenario("healthy") as meta:
        stores = make_ops_master(lab, tmp_path, first)
        _task_definition(lab, family, "DB")
        lab_client(lab, "ssm").put_parameter(Name=parameter, Type="SecureString", Value=first)
        ecs_store = {"name": "ecs-api", "type": "aws_ecs_task_definition", "family": family,
                     "container": "api", "variable": "RDS_PASSWORD"}
        ssm_store = {"name": "ssm-ops", "type": "aws_ssm", "parameter": parameter}
        target = {**meta["target"], "role": "ops_master", "dbname": "postgres",
                  "rds_instance_id": "lab-ops-db"}
        all_stores = [stores[0], ecs_store, ssm_store]
        diagnosed = run_playbook(lab, tmp_path, {
            **vars_for({**meta, "target": target, "stores": all_stores}, lab,
                       tmp_path / "before")})
        assert diagnosed.returncode == 0, diagnosed.stdout[-3000:]
        found = read_report(tmp_path / "before" / "localhost" / "diagnose.json")["findings"]
        ids = [finding["id"] for finding in found]
        assert ids[0] == "store_placeholder_password", ids
        assert found[0]["evidence"]["store"] == "ecs-api"
        plaintext = [f for f in found if f["id"] == "store_plaintext_env"]
        assert [f["evidence"]["store"] for f in plaintext] == ["ecs-api"]
        assert "ecs:DescribeTaskDefinition" in plaintext[0]["evidence"]["where"]

        rotate_with = {**rotate_vars({**meta, "stores": all_stores}, lab, tmp_path),
                       "pgauth_target": target, "pgauth_stores": all_stores,
                       "pgauth_admin": {"store": stores[0]}, "pgauth_rotate_via": "rds_api"}
        # the fix diagnose names: the primary's password logs in, so the stores that differ
        # (the placeholder) are brought in line - a new revision of the task definition
        converged = run_playbook(lab, tmp_path, rotate_with, playbook="rotate")
        assert converged.returncode == 0, converged.stdout[-3000:]
        assert read_stores({"stores": all_stores}, lab)["ecs-api"].password == first
        # then a new password: the plaintext copy was readable by whoever may describe it
        done = run_playbook(lab, tmp_path, {**rotate_with, "pgauth_force": True},
                            playbook="rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        creds = read_stores({"stores": all_stores}, lab)
        new = creds["aws-ops"].password
        assert new != first and creds["ecs-api"].password == creds["ssm-ops"].password == new
        assert logs_in(lab, "ops_master", new, dbname="postgres")
        assert not logs_in(lab, "ops_master", first, dbname="postgres")
        revisions = lab_client(lab, "ecs").list_task_definitions(familyPrefix=family)[
            "taskDefinitionArns"]
        assert len(revisions) == 3  # one per write; the old ones kept for rollback
    assert_no_leak({"diagnose": diagnosed.stdout + diagnosed.stderr,
                    "rotate": done.stdout + done.stderr + converged.stdout,
                    "report": (tmp_path / "before" / "localhost" / "diagnose.json").read_text()},
                   {new, first})


def _exec_role(lab: dict) -> str:
    name = "ops-exec-" + random.token_hex(4)
    return lab_client(lab, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))["Role"]["Arn"]


def _master(lab: dict, role: str, instance: str, password: str) -> None:
    create_admin_role(lab, role, password)
    lab_client(lab, "rds").create_db_instance(
        DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername=role, MasterUserPassword=password,
        Port=int(lab["PGAUTH_LAB_PGPORT"]))


def test_remediate_moves_the_plaintext_password_into_a_secret(lab, tmp_path):
    """The fix the team made by hand: a generated password in Secrets Manager, the master
    password changed to match through RDS, the variable taken from secrets instead of the
    environment, the execution role allowed to read it."""
    role, instance = "ecsm_" + random.token_hex(3), "lab-ecsm-" + random.token_hex(3)
    family, secret_name = "ecsm-api-" + random.token_hex(3), f"prod/{role}"
    first = "ops-" + random.token_urlsafe(18)
    with scenario("healthy") as meta:
        _master(lab, role, instance, first)
        execution_role = _exec_role(lab)
        lab_client(lab, "ecs").register_task_definition(
            family=family, executionRoleArn=execution_role,
            containerDefinitions=[{"name": "api", "image": "ops/api:7", "memory": 256,
                                   "environment": [{"name": "RDS_PASSWORD", "value": "DB"},
                                                   {"name": "RDS_USER", "value": role}]}])
        ecs = lab_client(lab, "ecs")
        cluster = ecs.create_cluster(clusterName="ops-" + random.token_hex(3))["cluster"][
            "clusterName"]
        # no desired tasks: moto runs none, so only a service of 0 can be stable there
        ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=family,
                           desiredCount=0)
        ecs_store = {"name": "ecs-api", "type": "aws_ecs_task_definition", "family": family,
                     "container": "api", "variable": "RDS_PASSWORD"}
        target = {**meta["target"], "role": role, "dbname": "postgres",
                  "rds_instance_id": instance}
        variables = {**vars_for({**meta, "target": target, "stores": [ecs_store]}, lab,
                                tmp_path / "reports"),
                     "pgauth_consumers": [{"name": "api-service", "type": "aws_ecs_service",
                                           "cluster": cluster, "service": "api",
                                           "timeout": 20}],
                     "pgauth_move_plaintext_to": {"name": "aws-secret",
                                                  "type": "aws_secretsmanager",
                                                  "secret_id": secret_name, "format": "json"},
                     "pgauth_grant_secret_read": True, "pgauth_rotate_via": "rds_api",
                     "pgauth_apply": True}
        done = run_playbook(lab, tmp_path, variables, playbook="remediate")
        assert done.returncode == 0, done.stdout[-4000:]
        secret = json.loads(lab_client(lab, "secretsmanager").get_secret_value(
            SecretId=secret_name)["SecretString"])
        task = lab_client(lab, "ecs").describe_task_definition(
            taskDefinition=family)["taskDefinition"]
        policies = lab_client(lab, "iam").list_role_policies(
            RoleName=execution_role.rsplit("/", 1)[-1])["PolicyNames"]
        verified = read_report(tmp_path / "reports" / "localhost" / "verify.json")
        rotated = read_report(tmp_path / "reports" / "localhost" / "rotate.json")
        service = ecs.describe_services(cluster=cluster, services=["api"])["services"][0]
        works = logs_in(lab, role, secret["password"], dbname="postgres")
        old_works = logs_in(lab, role, first, dbname="postgres")
    container = task["containerDefinitions"][0]
    assert secret["username"] == role and secret["password"] not in ("DB", first)
    assert works and not old_works
    assert [env["name"] for env in container["environment"]] == ["RDS_USER"]  # no plaintext
    arn = lab_client(lab, "secretsmanager").describe_secret(SecretId=secret_name)["ARN"]
    assert container["secrets"] == [{"name": "RDS_PASSWORD", "valueFrom": f"{arn}:password::"}]
    assert [p for p in policies if p.startswith("pgauth-read-")], policies
    assert verified["verdict"] == "healthy", verified
    # the service was deployed again, on the revision that reads the secret
    assert service["taskDefinition"] == task["taskDefinitionArn"]
    line = next(c for c in rotated["consumers"] if c["consumer"] == "api-service")
    assert line["refreshed"] and line["confirmed"], line
    assert "new deployment" in (line.get("detail") or "") or line["refreshed"]
    assert_no_leak({"remediate": done.stdout + done.stderr}, {secret["password"], first})
