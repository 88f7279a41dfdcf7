"""The ECS placeholder incident (issue 19), on the lab: a task definition whose environment
holds RDS_PASSWORD=DB for the RDS master user.  diagnose names the placeholder first and the
plaintext variable beside it; rotate (rds_api) changes the master password and brings the
task definition and an SSM copy to it; the new password logs in to the lab PostgreSQL.

Not here yet (issue 19 item 3): moving the plaintext variable into a secret reference."""
from __future__ import annotations

import secrets as random

from labfixtures import lab_client, scenario
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
