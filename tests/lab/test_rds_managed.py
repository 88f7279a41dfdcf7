"""RDS-managed master passwords (ManageMasterUserPassword) on the lab: the secret RDS owns is
read as a store, rotated only through RDS (RotateMasterUserPassword), and the other stores are
brought in line with it.  The lab's moto makes and applies the password as RDS does."""
from __future__ import annotations

import contextlib
import json
import secrets as random
import uuid

import pytest
from labfixtures import create_admin_role, lab_client, lab_store_options, scenario
from runbooks import assert_no_leak, logs_in, read_report, read_stores, run_playbook, vars_for
from test_rotate_runbook import rotate_vars

from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError


def _managed_master(lab: dict, tmp_path) -> tuple[str, str, str, list[dict]]:
    """(role, instance, the managed secret's ARN, the other stores: a YAML config and an SSM
    parameter, holding the password the role had before RDS took it over)."""
    role, instance = f"mm_{uuid.uuid4().hex[:6]}", f"lab-mm-{uuid.uuid4().hex[:6]}"
    before = "old-" + random.token_urlsafe(16)
    create_admin_role(lab, role, before)
    made = lab_client(lab, "rds").create_db_instance(
        DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername=role, ManageMasterUserPassword=True,
        Port=int(lab["PGAUTH_LAB_PGPORT"]))["DBInstance"]
    arn = made["MasterUserSecret"]["SecretArn"]
    config = tmp_path / "app.yml"
    config.write_text("# the app's config\ndb:\n  user: " + role + "\n  password: '" + before
                      + "'\n  pool: 5\n")
    parameter = f"/mm/{uuid.uuid4().hex[:8]}"
    lab_client(lab, "ssm").put_parameter(Name=parameter, Type="SecureString", Value=before)
    return role, instance, arn, [
        {"name": "app-config", "type": "file", "path": str(config), "format": "yaml",
         "key": "db", "value_format": "json"},
        {"name": "ssm-copy", "type": "aws_ssm", "parameter": parameter}]


def _versions(lab: dict, arn: str) -> list[str]:
    return [v["VersionId"] for v in lab_client(lab, "secretsmanager").list_secret_version_ids(
        SecretId=arn)["Versions"]]


def test_rds_managed_rotation_goes_through_rds_and_reaches_every_store(lab, tmp_path):
    with scenario("healthy") as meta:
        role, instance, arn, stores = _managed_master(lab, tmp_path)
        managed = json.loads(lab_client(lab, "secretsmanager").get_secret_value(
            SecretId=arn)["SecretString"])
        assert managed["username"] == role and logs_in(lab, role, managed["password"],
                                                       dbname="postgres")
        target = {**meta["target"], "role": role, "dbname": "postgres",
                  "rds_instance_id": instance}
        variables = {**rotate_vars({**meta, "stores": stores}, lab, tmp_path),
                     "pgauth_target": target, "pgauth_stores": stores,
                     "pgauth_rotate_via": "rds_managed"}
        versions_before = _versions(lab, arn)
        checked = run_playbook(lab, tmp_path, variables, "--check", playbook="rotate")
        assert checked.returncode == 0, checked.stdout[-3000:]
        assert _versions(lab, arn) == versions_before  # check mode asked RDS for nothing
        done = run_playbook(lab, tmp_path, variables, playbook="rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        now = json.loads(lab_client(lab, "secretsmanager").get_secret_value(
            SecretId=arn)["SecretString"])["password"]
        creds = read_stores({"stores": stores}, lab)
        report = json.loads((tmp_path / "reports" / "localhost" / "rotate.json").read_text())
        again = run_playbook(lab, tmp_path, {**variables, "pgauth_rotation_min_age": "1h"},
                             playbook="rotate")
        again_report = json.loads(
            (tmp_path / "reports" / "localhost" / "rotate.json").read_text())
    assert now != managed["password"] and len(_versions(lab, arn)) == len(versions_before) + 1
    assert creds["app-config"].password == creds["ssm-copy"].password == now
    assert logs_in(lab, role, now, dbname="postgres")
    assert not logs_in(lab, role, managed["password"], dbname="postgres")
    assert report["outcome"] == "rotated", report
    assert [s["step"] for s in report["steps"]][:1] == ["rotate_in_rds"]
    assert "pool: 5" in (tmp_path / "app.yml").read_text()  # the rest of the file kept
    assert again.returncode == 0 and again_report["outcome"] == "not_due", again_report
    assert len(_versions(lab, arn)) == len(versions_before) + 1  # min_age: RDS not asked
    assert_no_leak({"rotate": done.stdout + done.stderr + checked.stdout,
                    "report": json.dumps(report)}, {now, managed["password"]})


def test_the_managed_secret_is_never_written_directly(lab, tmp_path):
    with scenario("healthy"):
        _role, _instance, arn, _stores = _managed_master(lab, tmp_path)
        versions = _versions(lab, arn)
        store = Store({"name": "managed", "type": "aws_secretsmanager", "secret_id": arn},
                      lab_store_options(lab))
        with pytest.raises(StoreError, match=r"owned by rds .*rotate_via rds_managed"):
            store.write(store.plan_write({"password": "Mine-Pw-12345"}))
        assert _versions(lab, arn) == versions


def test_rds_managed_refuses_a_database_that_does_not_manage_its_password(lab, tmp_path):
    with scenario("healthy") as meta:
        instance = f"lab-plain-{uuid.uuid4().hex[:6]}"
        with contextlib.suppress(Exception):
            lab_client(lab, "rds").create_db_instance(
                DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
                AllocatedStorage=20, MasterUsername="app_user",
                MasterUserPassword="Plain-Pw-12345", Port=int(lab["PGAUTH_LAB_PGPORT"]))
        before = read_stores(meta, lab)
        failed = run_playbook(lab, tmp_path, {
            **rotate_vars(meta, lab, tmp_path), "pgauth_rotate_via": "rds_managed",
            "pgauth_target": {**meta["target"], "rds_instance_id": instance}},
            playbook="rotate")
        after = read_stores(meta, lab)
    assert failed.returncode != 0
    assert "ManageMasterUserPassword is off" in failed.stdout, failed.stdout[-2000:]
    assert {k: v.password for k, v in before.items()} == {k: v.password for k, v in after.items()}


def test_diagnose_reads_the_managed_secret_as_a_store(lab, tmp_path):
    """The managed secret is found from MasterUserSecret: diagnose reads it without being
    told, and the stale copies are named against it."""
    with scenario("healthy") as meta:
        role, instance, _arn, stores = _managed_master(lab, tmp_path)
        target = {**meta["target"], "role": role, "dbname": "postgres",
                  "rds_instance_id": instance}
        diagnosed = run_playbook(lab, tmp_path, {
            **vars_for({**meta, "target": target, "stores": stores}, lab, tmp_path / "d")})
        assert diagnosed.returncode == 0, diagnosed.stdout[-3000:]
        found = read_report(tmp_path / "d" / "localhost" / "diagnose.json")
    ids = [finding["id"] for finding in found["findings"]]
    assert ids[0] == "stores_disagree", ids
    evidence = found["findings"][0]["evidence"]
    # the managed secret logs in; the copies from before RDS took over are stale
    assert evidence["working"] == ["rds-managed-secret"], evidence
    assert sorted(evidence["stale"]) == ["app-config", "ssm-copy"], evidence
    fix = found["findings"][0]["fix"]
    assert fix["extra_vars"]["pgauth_rotate_via"] == "rds_managed", fix
    assert "rotation_conflict" not in ids  # RDS is the rotator the fix asks
    fixed = run_playbook(lab, tmp_path, {
        **rotate_vars({**meta, "stores": stores}, lab, tmp_path), "pgauth_target": target,
        "pgauth_stores": stores, **fix["extra_vars"]}, playbook="rotate")
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert len({cred.password for cred in read_stores({"stores": stores}, lab).values()}) == 1
