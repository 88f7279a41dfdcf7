"""The AWS places a credential lives besides Secrets Manager, against the lab's moto:
Parameter Store, ECS task definitions (plaintext and referenced), Lambda environments."""
from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from labfixtures import lab_client, lab_store_options

from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import describe
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    StoreNotFound,
)

SECRET = "Sx-9!a'b\"c\\d e$f%g&h:i/j@k"  # every character a value must survive


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def options(lab):
    return lab_store_options(lab)


# -- Parameter Store -------------------------------------------------------------------------

def test_ssm_write_is_idempotent_versions_count_and_previous_is_labelled(options, lab):
    name = f"/{unique('app')}/db/password"
    store = Store({"name": "ssm", "type": "aws_ssm", "parameter": name}, options)
    assert not store.exists() and store.read() == (None, None)
    first = store.write(store.plan_write({"password": "First-Pw-123"}))
    second = store.write(store.plan_write({"password": SECRET}))
    assert (first, second) == ("1", "2")
    assert not store.plan_write({"password": SECRET}).changed
    ssm = lab_client(lab, "ssm")
    got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert got["Type"] == "SecureString" and got["Value"] == SECRET and got["Version"] == 2
    previous = ssm.get_parameter(Name=f"{name}:pgauth-previous", WithDecryption=True)
    assert previous["Parameter"]["Value"] == "First-Pw-123"
    assert store.read()[0].password == SECRET and not store.supports_pending


def test_ssm_json_format_by_arn_keeps_the_other_keys(options, lab):
    name = f"/{unique('app')}/db"
    ssm = lab_client(lab, "ssm")
    ssm.put_parameter(Name=name, Type="String", Value=json.dumps(
        {"username": "app_user", "password": "Old-Pw-1234", "host": "db", "note": "keep"}))
    arn = f"arn:aws:ssm:us-east-1:123456789012:parameter{name}"
    store = Store({"name": "ssm-json", "type": "aws_ssm", "parameter": arn, "format": "json"},
                  options)
    store.write(store.plan_write({"password": SECRET}))
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert got["Type"] == "String"  # the parameter's type is kept
    assert json.loads(got["Value"]) == {"username": "app_user", "password": SECRET,
                                        "host": "db", "note": "keep"}


def test_ssm_bad_input_names_the_parameter_and_writes_nothing(options, lab):
    ssm = lab_client(lab, "ssm")
    name = f"/{unique('list')}"
    ssm.put_parameter(Name=name, Type="StringList", Value="a,b")
    store = Store({"name": "ssm-list", "type": "aws_ssm", "parameter": name}, options)
    with pytest.raises(StoreError, match=r"store 'ssm-list' \(aws_ssm /list-.*StringList"):
        store.read()
    with pytest.raises(StoreError, match="StringList"):
        store.plan_write({"password": "Some-Pw-123"})
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1
    with pytest.raises(StoreError, match="parameter is required"):
        Store({"name": "ssm-none", "type": "aws_ssm"}, options)


# -- ECS task definitions --------------------------------------------------------------------

def _register(lab, family: str, environment: list, secrets: list | None = None) -> dict:
    ecs = lab_client(lab, "ecs")
    return ecs.register_task_definition(
        family=family, executionRoleArn="arn:aws:iam::123456789012:role/app-exec",
        networkMode="bridge", cpu="256", memory="512", tags=[{"key": "team", "value": "db"}],
        volumes=[{"name": "data", "host": {"sourcePath": "/srv/data"}}],
        containerDefinitions=[
            {"name": "web", "image": "nginx:1", "memory": 128, "essential": True,
             "portMappings": [{"containerPort": 80, "hostPort": 8080}],
             "environment": environment, "secrets": secrets or [],
             "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]},
            {"name": "sidecar", "image": "busybox", "memory": 64,
             "environment": [{"name": "RDS_PASSWORD", "value": "not-this-one"}]}])


def _comparable(task: dict) -> dict:
    return {key: value for key, value in task.items()
            if key not in ("taskDefinitionArn", "revision", "registeredAt", "registeredBy")}


def test_ecs_plaintext_variable_write_registers_a_faithful_revision(options, lab):
    family = unique("app")
    _register(lab, family, [{"name": "RDS_PASSWORD", "value": "DB"},
                            {"name": "OTHER", "value": "1"}])
    spec = {"name": "ecs-env", "type": "aws_ecs_task_definition", "family": family,
            "container": "web", "variable": "RDS_PASSWORD"}
    store = Store(spec, options)
    info = describe(store, "current", None, False)
    assert info["placeholder"] and "ecs:DescribeTaskDefinition" in info["plaintext_exposure"]
    assert info["version"] == f"{family}:1"
    ecs = lab_client(lab, "ecs")
    before = ecs.describe_task_definition(taskDefinition=f"{family}:1",
                                          include=["TAGS"])
    assert store.write(store.plan_write({"password": SECRET})) == f"{family}:2"
    assert not Store(spec, options).plan_write({"password": SECRET}).changed  # idempotent
    after = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert after["taskDefinition"]["revision"] == 2 and after["tags"] == before["tags"]
    expected = _comparable(before["taskDefinition"])
    expected["containerDefinitions"][0]["environment"][0]["value"] = SECRET
    assert _comparable(after["taskDefinition"]) == expected  # only that value changed
    old = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert old["status"] == "ACTIVE"  # kept for rollback


def test_ecs_secrets_entry_is_followed_to_the_secret_it_references(options, lab):
    family, secret_name = unique("app"), unique("prod/app_user")
    sm = lab_client(lab, "secretsmanager")
    arn = sm.create_secret(Name=secret_name, SecretString=json.dumps(
        {"username": "app_user", "password": "Old-Pw-1234"}))["ARN"]
    parameter = f"/{unique('p')}"
    lab_client(lab, "ssm").put_parameter(Name=parameter, Type="SecureString",
                                         Value="Ssm-Pw-12345")
    _register(lab, family, [], [{"name": "DB_PASSWORD", "valueFrom": f"{arn}:password::"},
                                {"name": "DB_SECRET", "valueFrom": arn},
                                {"name": "SSM_PASSWORD", "valueFrom": parameter}])
    via_key = Store({"name": "ecs-key", "type": "aws_ecs_task_definition", "family": family,
                     "container": "web", "variable": "DB_PASSWORD"}, options)
    assert via_key.supports_pending and via_key.plaintext_exposure() is None
    assert via_key.read()[0].password == "Old-Pw-1234"
    via_key.write(via_key.plan_write({"password": SECRET}))
    assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"] == SECRET
    assert lab_client(lab, "ecs").describe_task_definition(
        taskDefinition=family)["taskDefinition"]["revision"] == 1  # no new revision
    via_ssm = Store({"name": "ecs-ssm", "type": "aws_ecs_task_definition", "family": family,
                     "container": "web", "variable": "SSM_PASSWORD"}, options)
    assert via_ssm.read()[0].password == "Ssm-Pw-12345" and not via_ssm.supports_pending


@pytest.mark.parametrize("change, error", [
    ({"family": "no-such-family"}, r"no ACTIVE revision"),
    ({"container": "db"}, r"has no container 'db' \(it has web, sidecar\)"),
    ({"variable": "NOPE"}, r"no variable NOPE in environment or secrets"),
    ({"variable": "MISSING_SECRET"}, r"valueFrom names arn:.*:secret:gone-\w+, which does"),
    ({"variable": "PINNED"}, r"pins a version stage"),
])
def test_ecs_bad_input_names_what_is_missing_and_registers_nothing(options, lab, change, error):
    family, gone = unique("app"), unique("gone")
    _register(lab, family, [{"name": "RDS_PASSWORD", "value": "DB"}], [
        {"name": "MISSING_SECRET",
         "valueFrom": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{gone}"},
        {"name": "PINNED", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:"
                                        "secret:x-AbCdEf:password:AWSPREVIOUS:"}])
    spec = {"name": "ecs-bad", "type": "aws_ecs_task_definition", "family": family,
            "container": "web", "variable": "RDS_PASSWORD", **change}
    with pytest.raises(StoreError, match=r"store 'ecs-bad' \(aws_ecs_task_definition") as err:
        store = Store(spec, options)
        store.write(store.plan_write({"password": SECRET}))
    assert SECRET not in str(err.value)
    if change.get("variable") == "MISSING_SECRET":
        assert isinstance(err.value, StoreNotFound)
    assert lab_client(lab, "ecs").describe_task_definition(
        taskDefinition=family)["taskDefinition"]["revision"] == 1
    names = [s["Name"] for s in lab_client(lab, "secretsmanager").list_secrets()["SecretList"]]
    assert not [name for name in names if gone in name]  # no secret made by the attempt


def test_a_secret_addressed_by_arn_is_never_created(options, lab):
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{unique('absent')}"
    store = Store({"name": "by-arn", "type": "aws_secretsmanager", "secret_id": arn}, options)
    with pytest.raises(StoreNotFound, match="created by name, not by ARN"):
        store.write(store.plan_write({"username": "u", "password": SECRET}))
    names = [s["Name"] for s in lab_client(lab, "secretsmanager").list_secrets()["SecretList"]]
    assert arn not in names


# -- Lambda ----------------------------------------------------------------------------------

def _function(lab, variables: dict) -> str:
    iam = lab_client(lab, "iam")
    role = unique("lambda-role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]
    }))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    name = unique("fn")
    lab_client(lab, "lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=arn, Handler="app.handler",
        Code={"ZipFile": code.getvalue()}, Environment={"Variables": variables})
    return name


def test_lambda_variable_write_keeps_every_other_variable(options, lab):
    name = _function(lab, {"DB_PASSWORD": "Old-Pw-1234", "DB_HOST": "db", "LOG": "debug"})
    spec = {"name": "fn", "type": "aws_lambda_environment", "function": name,
            "variable": "DB_PASSWORD"}
    store = Store(spec, options)
    info = describe(store, "current", None, False)
    assert info["credential"]["password_set"] and "GetFunctionConfiguration" in \
        info["plaintext_exposure"]
    store.write(store.plan_write({"password": SECRET}))
    assert not Store(spec, options).plan_write({"password": SECRET}).changed
    variables = lab_client(lab, "lambda").get_function_configuration(
        FunctionName=name)["Environment"]["Variables"]
    assert variables == {"DB_PASSWORD": SECRET, "DB_HOST": "db", "LOG": "debug"}


def test_lambda_without_the_variable_is_a_clear_error_and_nothing_is_written(options, lab):
    name = _function(lab, {"DB_HOST": "db"})
    store = Store({"name": "fn-bad", "type": "aws_lambda_environment", "function": name,
                   "variable": "DB_PASSWORD"}, options)
    with pytest.raises(StoreError, match=r"store 'fn-bad'.*no environment variable "
                                         r"DB_PASSWORD \(it has DB_HOST\)"):
        store.read()
    with pytest.raises(StoreError, match="no environment variable DB_PASSWORD"):
        store.plan_write({"password": "Some-Pw-123"})
    assert lab_client(lab, "lambda").get_function_configuration(
        FunctionName=name)["Environment"]["Variables"] == {"DB_HOST": "db"}
    with pytest.raises(StoreError, match=r"store 'fn-gone'.*no such function"):
        Store({"name": "fn-gone", "type": "aws_lambda_environment", "function": "gone",
               "variable": "X"}, options).read()


def test_moving_plaintext_stops_before_registering_when_the_role_may_not_read(options, lab):
    from ansible_collections.credops.pgauth.plugins.module_utils.plaintext_move import (
        move_plaintext,
    )
    family, secret = unique("mv"), unique("prod/mv")
    role = lab_client(lab, "iam").create_role(
        RoleName=unique("mv-exec"), AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}))["Role"]["Arn"]
    lab_client(lab, "ecs").register_task_definition(
        family=family, executionRoleArn=role, containerDefinitions=[
            {"name": "web", "image": "nginx", "memory": 64,
             "environment": [{"name": "RDS_PASSWORD", "value": "Plain-Pw-123"}]}])
    ecs = {"name": "ecs-mv", "type": "aws_ecs_task_definition", "family": family,
           "container": "web", "variable": "RDS_PASSWORD"}
    target = {"name": "aws-mv", "type": "aws_secretsmanager", "secret_id": secret}
    planned = move_plaintext([ecs], target, options, True, False, {"username": "app_user"})
    assert planned["changed"] and planned["created"]
    assert not Store(target, options).exists()  # check mode made nothing
    with pytest.raises(StoreError, match=r"store 'ecs-mv'.*may not "
                                         r"secretsmanager:GetSecretValue.*nothing was registered"):
        move_plaintext([ecs], target, options, False, False, {"username": "app_user"})
    assert lab_client(lab, "ecs").describe_task_definition(
        taskDefinition=family)["taskDefinition"]["revision"] == 1
    done = move_plaintext([ecs], target, options, False, True, {"username": "app_user"})
    again = move_plaintext([ecs], target, options, False, True, {"username": "app_user"})
    assert done["moved"][0]["granted_policy"].startswith("pgauth-read-")
    assert done["stores"][0] is target and again == {**again, "changed": False, "moved": []}
    assert Store(ecs, options).read()[0].password == "Plain-Pw-123"  # now via the secret


def test_rotations_reach_parameter_store_and_lambda(lab, tmp_path):
    """Both strategies with an SSM parameter and a Lambda variable among the stores (RDS-style
    JSON in both: alternating_users switches the user inside)."""
    import secrets as random

    from labfixtures import scenario
    from runbooks import logs_in, read_stores
    from test_rotate_runbook import rotate
    with scenario("healthy") as meta:
        primary = lab_client(lab, "secretsmanager").get_secret_value(
            SecretId=meta["stores"][0]["secret_id"])["SecretString"]
        parameter = f"/rot/{random.token_hex(4)}"
        lab_client(lab, "ssm").put_parameter(Name=parameter, Type="SecureString", Value=primary)
        function = _function(lab, {"DATABASE_CREDENTIALS": primary, "OTHER": "x"})
        stores = [*meta["stores"],
                  {"name": "ssm-app", "type": "aws_ssm", "parameter": parameter,
                   "format": "json"},
                  {"name": "fn-app", "type": "aws_lambda_environment", "function": function,
                   "variable": "DATABASE_CREDENTIALS", "format": "json"}]
        meta = {**meta, "stores": stores}
        seen = []
        for strategy in ("single_user", "alternating_users"):
            (tmp_path / strategy).mkdir()
            done = rotate(lab, tmp_path / strategy, meta, pgauth_strategy=strategy)
            assert done.returncode == 0, done.stdout[-3000:]
            creds = read_stores(meta, lab)
            assert len({(c.username, c.password) for c in creds.values()}) == 1, strategy
            cred = creds["fn-app"]
            assert logs_in(lab, cred.username, cred.password)
            seen.append((cred.username, cred.password))
    assert seen[0] != seen[1] and seen[1][0] == "app_user_clone"
    variables = lab_client(lab, "lambda").get_function_configuration(
        FunctionName=function)["Environment"]["Variables"]
    assert variables["OTHER"] == "x"


# -- what the security review of issue 19 found -------------------------------------------

def test_a_value_from_in_another_account_is_never_followed(options, lab):
    family = unique("xacct")
    _register(lab, family, [], [
        {"name": "SM_OTHER", "valueFrom": "arn:aws:secretsmanager:us-east-1:999999999999:"
                                          "secret:theirs-AbCdEf:password::"},
        {"name": "SSM_OTHER", "valueFrom": "arn:aws:ssm:us-east-1:999999999999:parameter/p"}])
    for variable in ("SM_OTHER", "SSM_OTHER"):
        spec = {"name": "xacct", "type": "aws_ecs_task_definition", "family": family,
                "container": "web", "variable": variable}
        with pytest.raises(StoreError, match=r"account 999999999999, not the one"):
            Store(spec, options).read()


def test_two_variables_of_one_family_are_written_one_after_the_other(options, lab):
    family = unique("two")
    _register(lab, family, [{"name": "DATABASE_URL",
                             "value": "postgresql://app_user:Old-Pw-1234@db/app"},
                            {"name": "DB_PASSWORD", "value": "Old-Pw-1234"}])
    url = Store({"name": "url", "type": "aws_ecs_task_definition", "family": family,
                 "container": "web", "variable": "DATABASE_URL"}, options)
    bare = Store({"name": "bare", "type": "aws_ecs_task_definition", "family": family,
                  "container": "web", "variable": "DB_PASSWORD"}, options)
    assert url.shared_resource() == bare.shared_resource()  # the engine serializes them
    plan_url, plan_bare = url.plan_write({"password": SECRET}), bare.plan_write(
        {"password": SECRET})
    url.write(plan_url)
    # the second was planned on the old revision: refused, not a copy that reverts the first
    with pytest.raises(StoreError, match="was registered after"):
        bare.write(plan_bare)
    bare.write(bare.plan_write({"password": SECRET}))
    task = lab_client(lab, "ecs").describe_task_definition(taskDefinition=family)
    env = {e["name"]: e["value"] for e in task["taskDefinition"]["containerDefinitions"][0][
        "environment"]}
    assert env["DB_PASSWORD"] == SECRET and SECRET.replace("%", "%25") != env["DATABASE_URL"]
    assert Store({"name": "url", "type": "aws_ecs_task_definition", "family": family,
                  "container": "web", "variable": "DATABASE_URL"}, options).read()[
        0].password == SECRET


def test_a_lambda_alias_is_read_and_moved_only_when_it_serves_another_value(options, lab):
    name = _function(lab, {"DB_PASSWORD": "Old-Pw-1234"})
    api = lab_client(lab, "lambda")
    first = api.publish_version(FunctionName=name)["Version"]
    api.create_alias(FunctionName=name, Name="live", FunctionVersion=first)
    spec = {"name": "fn-alias", "type": "aws_lambda_environment", "function": name,
            "variable": "DB_PASSWORD", "alias": "live"}
    store = Store(spec, options)
    assert store.read()[0].password == "Old-Pw-1234"
    store.write(store.plan_write({"password": SECRET}))
    alias = api.get_alias(FunctionName=name, Name="live")
    assert alias["FunctionVersion"] != first
    assert Store(spec, options).read()[0].password == SECRET  # what the alias serves
    assert not Store(spec, options).plan_write({"password": SECRET}).changed


def test_an_ecs_service_is_deployed_again_and_unstable_is_reported(options, lab):
    from ansible_collections.credops.pgauth.plugins.module_utils.consumers import (
        ConsumerContext,
        ConsumerError,
        make_consumers,
    )
    family = unique("svc")
    _register(lab, family, [{"name": "RDS_PASSWORD", "value": "Old-Pw-1234"}])
    ecs = lab_client(lab, "ecs")
    cluster = ecs.create_cluster(clusterName=unique("c"))["cluster"]["clusterName"]
    ecs.create_service(cluster=cluster, serviceName="idle", taskDefinition=family,
                       desiredCount=0)
    ecs.create_service(cluster=cluster, serviceName="busy", taskDefinition=family,
                       desiredCount=2)  # moto starts no task: never stable
    _register(lab, family, [{"name": "RDS_PASSWORD", "value": "New-Pw-1234"}])  # revision 2
    idle, busy, gone = make_consumers([
        {"name": "idle", "type": "aws_ecs_service", "cluster": cluster, "service": "idle"},
        {"name": "busy", "type": "aws_ecs_service", "cluster": cluster, "service": "busy",
         "timeout": 2, "interval": 0.5},
        {"name": "gone", "type": "aws_ecs_service", "cluster": cluster, "service": "nope"}])
    ctx = ConsumerContext(cur=None, params=options, role="app_user", credential=None)
    assert f"{family}:2" in idle.refresh(ctx)
    assert ecs.describe_services(cluster=cluster, services=["idle"])["services"][0][
        "taskDefinition"].endswith(f"{family}:2")
    assert "stable" in idle.confirm(ctx)[0]
    busy.refresh(ctx)
    with pytest.raises(ConsumerError, match=r"consumer 'busy' \(aws_ecs_service\): not stable "
                                            r"yet: .*0 of 2 tasks running"):
        busy.confirm(ctx)
    with pytest.raises(ConsumerError, match=r"no active service 'nope'"):
        gone.refresh(ctx)
