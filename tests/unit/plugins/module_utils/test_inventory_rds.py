"""The rds_targets inventory's mapping, as tables: RDS describe items and secrets in, hosts out."""
from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.credops.pgauth.plugins.inventory import rds_targets
from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds as m
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import AWS_OPTIONS

REGION = "eu-west-1"
CONNECT = {"sslmode": "verify-full", "dbname": "postgres"}


def instance(ident, *, engine="postgres", iam=True, managed=True, tags=None, cluster=None,
             dbname=None, port=5432):
    item = {"DBInstanceIdentifier": ident, "DBInstanceArn": f"arn:aws:rds:{REGION}:1:db:{ident}",
            "Engine": engine, "EngineVersion": "16.3", "DBInstanceStatus": "available",
            "Endpoint": {"Address": f"{ident}.x.{REGION}.rds.amazonaws.com", "Port": port},
            "MasterUsername": "master", "IAMDatabaseAuthenticationEnabled": iam,
            "TagList": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    if managed:
        item["MasterUserSecret"] = {"SecretArn": f"arn:sm:{REGION}:1:secret:rds!db-{ident}"}
    if cluster:
        item["DBClusterIdentifier"] = cluster
    if dbname:
        item["DBName"] = dbname
    return item


def cluster(ident, *, iam=True, managed=False):
    item = {"DBClusterIdentifier": ident, "DBClusterArn": f"arn:aws:rds:{REGION}:1:cluster:{ident}",
            "Engine": "aurora-postgresql", "Status": "available", "Port": 5432,
            "Endpoint": f"{ident}.cluster-x.{REGION}.rds.amazonaws.com", "DatabaseName": "cdb",
            "MasterUsername": "cmaster", "IAMDatabaseAuthenticationEnabled": iam, "TagList": []}
    if managed:
        item["MasterUserSecret"] = {"SecretArn": f"arn:sm:{REGION}:1:secret:rds!cluster-{ident}"}
    return item


def secret(name, username, *, host=None, port=None, dbname=None, password=True, tags=None):
    return {"name": name, "arn": f"arn:aws:secretsmanager:{REGION}:1:secret:{name}-AbCdEf",
            "tags": tags or {}, "fields": {"username": username, "host": host, "port": port,
                                           "dbname": dbname, "has_password": password}}


def hosts(instances=(), clusters=(), secrets=(), filters=None, template=m.DEFAULT_HOSTNAME_TEMPLATE,
          include_clusters=True):
    records = m.databases(list(instances), list(clusters), REGION, filters or {}, include_clusters)
    return {h["name"]: h["vars"] for h in m.build_hosts(records, list(secrets), CONNECT,
                                                        m.DEFAULT_SECRET_TAG, template)}


HOST_A = f"a.x.{REGION}.rds.amazonaws.com"


@pytest.mark.parametrize(("case", "kwargs", "expected"), [
    ("managed master only", {"instances": [instance("a")]}, {"a-master": ["rds!db-a"]}),
    ("no managed secret, no role secret: no host",
     {"instances": [instance("a", managed=False)]}, {}),
    ("a role secret by host", {"instances": [instance("a")],
                               "secrets": [secret("app/a", "app", host=HOST_A)]},
     {"a-master": ["rds!db-a"], "a-app": ["app/a"]}),
    ("host compared without case and trailing dot",
     {"instances": [instance("a")], "secrets": [secret("s", "app", host=HOST_A.upper() + ".")]},
     {"a-master": ["rds!db-a"], "a-app": ["s"]}),
    ("another port: not this database",
     {"instances": [instance("a")], "secrets": [secret("s", "app", host=HOST_A, port=6432)]},
     {"a-master": ["rds!db-a"]}),
    ("a secret for another host makes no host",
     {"instances": [instance("a")], "secrets": [secret("s", "app", host="b.example")]},
     {"a-master": ["rds!db-a"]}),
    ("a tagged master secret without host",
     {"instances": [instance("a", managed=False)],
      "secrets": [secret("t", "master", tags={m.DEFAULT_SECRET_TAG: "a"})]},
     {"a-master": ["t"]}),
    ("two secrets of one role: one host, the managed one first, tagged before host",
     {"instances": [instance("a")],
      "secrets": [secret("z-by-host", "master", host=HOST_A),
                  secret("y-tagged", "master", tags={m.DEFAULT_SECRET_TAG: "a"})]},
     {"a-master": ["rds!db-a", "y-tagged", "z-by-host"]}),
    ("an Aurora member instance gets no host; the cluster does",
     {"instances": [instance("m1", engine="aurora-postgresql", cluster="c", managed=False)],
      "clusters": [cluster("c", managed=True)]},
     {"c-cmaster": ["rds!cluster-c"]}),
    ("clusters off", {"clusters": [cluster("c", managed=True)], "include_clusters": False}, {}),
    ("a MySQL instance is left out", {"instances": [instance("my", engine="mysql")]}, {}),
    ("engine filter", {"instances": [instance("a"), instance("b", engine="aurora-postgresql")],
                       "filters": {"engine": ["aurora-postgresql"]}}, {"b-master": ["rds!db-b"]}),
    ("tag filter: value", {"instances": [instance("a", tags={"env": "prod"}),
                                         instance("b", tags={"env": "dev"})],
                           "filters": {"tags": {"env": "prod"}}}, {"a-master": ["rds!db-a"]}),
    ("tag filter: list and any", {"instances": [instance("a", tags={"env": "prod", "t": "1"}),
                                                instance("b", tags={"env": "dev"}),
                                                instance("c", tags={"env": "qa", "t": ""})],
                                  "filters": {"tags": {"env": ["prod", "qa"], "t": "*"}}},
     {"a-master": ["rds!db-a"], "c-master": ["rds!db-c"]}),
])
def test_hosts_and_their_stores(case, kwargs, expected):
    found = hosts(**kwargs)
    assert {name: [s["secret_id"].split(":secret:")[1].removesuffix("-AbCdEf")
                   for s in v["pgauth_stores"]] for name, v in found.items()} == expected, case
    for host in found.values():
        assert all(store == {"name": store["name"], "type": "aws_secretsmanager",
                             "secret_id": store["secret_id"], "format": "json",
                             "region": REGION} for store in host["pgauth_stores"])


@pytest.mark.parametrize(("iam", "password", "auth"), [
    (True, True, "password"), (True, False, "iam"), (False, False, "password"),
    (False, True, "password")])
def test_auth_is_iam_only_with_iam_on_and_no_stored_password(iam, password, auth):
    found = hosts(instances=[instance("a", iam=iam, managed=False)],
                  secrets=[secret("s", "app", host=HOST_A, password=password)])
    assert found["a-app"]["pgauth_target"]["auth"] == auth


def test_target_fields():
    found = hosts(instances=[instance("a", dbname="appdb")],
                  secrets=[secret("s", "app", host=HOST_A, dbname="other")],
                  clusters=[cluster("c", managed=True)])
    assert found["a-app"]["pgauth_target"] == {
        "host": HOST_A, "port": 5432, "dbname": "other", "role": "app", "auth": "password",
        "sslmode": "verify-full", "rds_instance_id": "a", "region": REGION}
    assert found["a-master"]["pgauth_target"]["dbname"] == "appdb"  # RDS's DBName
    assert found["c-cmaster"]["pgauth_target"]["rds_cluster_id"] == "c"
    assert found["c-cmaster"]["pgauth_target"]["dbname"] == "cdb"
    assert found["c-cmaster"]["pgauth_rds"]["kind"] == "cluster"


@pytest.mark.parametrize(("template", "name"), [
    ("{db_identifier}-{role}", "a-app_user"),
    ("{region}/{db_identifier}:{role}", "eu-west-1_a_app_user"),
    ("{kind}.{engine}.{dbname}.{role}", "instance.postgres.postgres.app_user"),
    ("DB {db_identifier} ROLE {role}", "db_a_role_app_user"),
])
def test_hostname_template(template, name):
    values = {"db_identifier": "a", "role": "app_user", "region": REGION, "engine": "postgres",
              "kind": "instance", "dbname": "postgres"}
    assert m.render_hostname(template, values) == name


@pytest.mark.parametrize(("template", "message"), [
    ("{password}", "uses 'password'"), ("{{ role }}", "only {name} fields"),
    ("{}", "only {name} fields"), ("!!!", "empty name")])
def test_bad_hostname_templates(template, message):
    with pytest.raises(m.InventoryError, match=message):
        m.render_hostname(template, {"role": "x"})


def test_two_hosts_with_one_name_are_an_error():
    with pytest.raises(m.InventoryError, match=r"two hosts are named 'x'.*\{region\}"):
        hosts(instances=[instance("a"), instance("b")], template="x")


def test_one_name_in_two_regions_is_an_error():
    def host(name, region):
        return {"name": name, "vars": {"pgauth_target": {"region": region}}}

    merged = m.merge_regions([[host("b", "eu-west-1")], [host("a", "us-east-1")]])
    assert [h["name"] for h in merged] == ["a", "b"]
    with pytest.raises(m.InventoryError, match=r"'a' is found in eu-west-1 and us-east-1.*"
                                               r"\{region\}"):
        m.merge_regions([[host("a", "eu-west-1")], [host("a", "us-east-1")]])


@pytest.mark.parametrize(("value", "expected"), [
    (json.dumps({"username": "u", "password": "p", "host": "h", "port": "5432",
                 "dbname": "d"}),
     {"username": "u", "host": "h", "port": 5432, "dbname": "d", "has_password": True}),
    (json.dumps({"username": "u", "host": "h"}),
     {"username": "u", "host": "h", "port": None, "dbname": None, "has_password": False}),
    (json.dumps({"username": "u", "password": "", "host": 5}),
     {"username": "u", "host": None, "port": None, "dbname": None, "has_password": False}),
])
def test_rds_secret_fields_keep_the_address_and_drop_the_password(value, expected):
    assert m.rds_secret_fields("s", value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ('{"username": "u", "password": "Sekr3t-value', "is not valid JSON"),
    ('["Sekr3t-value"]', "not an object"), ('{"password": "Sekr3t-value"}', "no 'username'"),
    ('{"username": "u", "password": "Sekr3t-value", "port": "x"}', "'port' that is not"),
    (None, "binary secret")])
def test_broken_secrets_are_named_without_their_value(value, message):
    with pytest.raises(m.BrokenSecret, match=message) as err:
        m.rds_secret_fields("prod/app", value)
    assert "prod/app" in str(err.value) and "Sekr3t" not in str(err.value)


@pytest.mark.parametrize(("entry", "prefixes", "wanted"), [
    ({"Name": "prod/db/app"}, ["prod/db/"], True),
    ({"Name": "prod/web/key"}, ["prod/db/"], False),
    ({"Name": "prod/web/key", "Tags": [{"Key": m.DEFAULT_SECRET_TAG, "Value": "a"}]},
     ["prod/db/"], True),
    ({"Name": "anything"}, [], True),
    ({"Name": "rds!db-123"}, [], False),
    ({"Name": "x", "OwningService": "rds"}, [], False),
])
def test_which_secrets_are_read(entry, prefixes, wanted):
    assert m.wanted_secret(entry, prefixes, m.DEFAULT_SECRET_TAG) is wanted


def test_the_plugin_documents_the_collections_aws_options():
    """The inventory source takes the modules' AWS option names, aliases and AWS_* fallbacks
    (an inventory plugin documents env itself; the modules' doc fragment cannot)."""
    options = yaml.safe_load(rds_targets.DOCUMENTATION)["options"]
    for name, spec in AWS_OPTIONS.items():
        assert name in options, name
        assert options[name].get("aliases", []) == spec.get("aliases", []), name
        env = [e["name"] for e in options[name].get("env", [])]
        assert env[:len(spec.get("env", []))] == spec.get("env", []), name
        assert options[name]["type"] == spec["type"], name
    assert options["hostname_template"]["default"] == m.DEFAULT_HOSTNAME_TEMPLATE
    assert options["secret_tag"]["default"] == m.DEFAULT_SECRET_TAG
    assert options["filters"]["suboptions"]["engine"]["default"] == list(m.POSTGRES_ENGINES)


@pytest.mark.parametrize(("code", "message"), [
    ("AccessDenied", "region eu-west-1: access denied for describe_db_instances (AccessDenied)"),
    ("Throttling", "region eu-west-1: describe_db_instances failed: Throttling")])
def test_a_failed_call_names_the_region_and_the_call(code, message):
    """AWS's answer to a call without permission (botocore's Stubber plays AWS: moto grants
    everything)."""
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds_fetch
    from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError

    api = boto3.client("rds", region_name=REGION, aws_access_key_id="k",
                       aws_secret_access_key="s")
    with Stubber(api) as stub:
        stub.add_client_error("describe_db_instances", service_error_code=code)
        with pytest.raises(AwsError) as err:
            inventory_rds_fetch._pages(api, "describe_db_instances", "DBInstances", REGION)
    assert str(err.value) == message


@pytest.mark.parametrize(("name", "accepted"), [
    ("prod.rds_targets.yml", True), ("prod.rds_targets.yaml", True), ("rds_targets.yml", True),
    ("rds_targets.yaml", True), ("prod.aws_rds.yml", False), ("rds_targets.json", False),
    ("myrds_targets.yml", False)])
def test_verify_file(tmp_path, name, accepted):
    source = tmp_path / name
    source.write_text("plugin: credops.pgauth.rds_targets\n")
    assert bool(rds_targets.InventoryModule().verify_file(str(source))) is accepted


def test_a_secret_that_may_not_be_read_is_skipped_with_a_warning_naming_it():
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds_fetch

    api = boto3.client("secretsmanager", region_name=REGION, aws_access_key_id="k",
                       aws_secret_access_key="s")
    warnings: list[str] = []
    entry = {"Name": "prod/db/app", "ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}
    with Stubber(api) as stub:
        stub.add_client_error("get_secret_value", service_error_code="AccessDeniedException")
        stub.add_response("get_secret_value", {"SecretString": "not json Sekr3t",
                                               "Name": "prod/db/app"})
        assert inventory_rds_fetch._secret_fields(api, REGION, entry, warnings.append) is None
        assert inventory_rds_fetch._secret_fields(api, REGION, entry, warnings.append) is None
    assert warnings == [
        ("rds_targets: skipped in eu-west-1: secret 'prod/db/app': access denied for "
         "get_secret_value (AccessDeniedException)"),
        "rds_targets: skipped in eu-west-1: secret 'prod/db/app' is not valid JSON"]
