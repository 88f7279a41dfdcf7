"""The rds_targets inventory's mapping, as tables: RDS describe items and secrets in, hosts out.
(The plugin itself, which imports ansible, is tested in tests/unit/plugins/inventory.)"""
from __future__ import annotations

import json

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds as m

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


def secret(name, username, *, host=None, port=None, dbname=None, password=True, tags=None,
           created=None):
    return {"name": name, "arn": f"arn:aws:secretsmanager:{REGION}:1:secret:{name}-AbCdEf",
            "tags": tags or {}, "fields": {"username": username, "host": host, "port": port,
                                           "dbname": dbname, "has_password": password},
            "created": created}


def hosts(instances=(), clusters=(), secrets=(), filters=None, template=m.DEFAULT_HOSTNAME_TEMPLATE,
          include_clusters=True, master_extra_stores=False, warnings=None):
    records = m.databases(list(instances), list(clusters), REGION, filters or {}, include_clusters)
    return {h["name"]: h["vars"] for h in m.build_hosts(records, list(secrets), CONNECT,
                                                        m.DEFAULT_SECRET_TAG, template,
                                                        master_extra_stores, warnings)}


def store_names(found):
    return {name: [s["secret_id"].split(":secret:")[1].removesuffix("-AbCdEf")
                   for s in v["pgauth_stores"]] for name, v in found.items()}


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
    ("a tagged master secret without host: not matched (a tag never suffices)",
     {"instances": [instance("a", managed=False)],
      "secrets": [secret("t", "master", tags={m.DEFAULT_SECRET_TAG: "a"})]},
     {}),
    ("the master user gets the managed secret only (no master_extra_stores)",
     {"instances": [instance("a")],
      "secrets": [secret("z-by-host", "master", host=HOST_A),
                  secret("y-tagged", "master", host=HOST_A,
                         tags={m.DEFAULT_SECRET_TAG: "a"})]},
     {"a-master": ["rds!db-a"]}),
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
    assert store_names(found) == expected, case
    for host in found.values():
        assert all(store == {"name": store["name"], "type": "aws_secretsmanager",
                             "secret_id": store["secret_id"], "format": "json",
                             "region": REGION} for store in host["pgauth_stores"])


TAG_A = {m.DEFAULT_SECRET_TAG: "a"}


@pytest.mark.parametrize(("case", "kwargs", "expected", "warned"), [
    # review finding 1: a secret tagged with a database's id was a store of any role on it
    ("an attacker's tagged master secret with another host is not a store",
     {"instances": [instance("a")],
      "secrets": [secret("aaa-x", "master", host="evil", tags=TAG_A)]},
     {"a-master": ["rds!db-a"]}, []),
    ("a tagged secret with another host makes no host for its role",
     {"instances": [instance("a")],
      "secrets": [secret("aaa-x", "app", host="evil", tags=TAG_A)]},
     {"a-master": ["rds!db-a"]}, []),
    ("a tagged secret with no host is not matched",
     {"instances": [instance("a")], "secrets": [secret("aaa-x", "app", tags=TAG_A)]},
     {"a-master": ["rds!db-a"]}, []),
    ("a tagged secret with the endpoint but another port is not matched",
     {"instances": [instance("a")],
      "secrets": [secret("aaa-x", "app", host=HOST_A, port=6432, tags=TAG_A)]},
     {"a-master": ["rds!db-a"]}, []),
    ("a tagged secret with the endpoint is matched",
     {"instances": [instance("a")],
      "secrets": [secret("t", "app", host=HOST_A, port=5432, tags=TAG_A)]},
     {"a-master": ["rds!db-a"], "a-app": ["t"]}, []),
    ("a secret tagged for another database is not matched, though its host is this one",
     {"instances": [instance("a")],
      "secrets": [secret("t", "app", host=HOST_A, tags={m.DEFAULT_SECRET_TAG: "b"})]},
     {"a-master": ["rds!db-a"]}, []),
    ("the master user: only the managed secret, even with the endpoint in the secret",
     {"instances": [instance("a")],
      "secrets": [secret("aaa-x", "master", host=HOST_A, tags=TAG_A, created=1.0)]},
     {"a-master": ["rds!db-a"]}, []),
    ("an unmanaged master gets no host from a secret without master_extra_stores",
     {"instances": [instance("a", managed=False)],
      "secrets": [secret("m", "master", host=HOST_A)]},
     {}, []),
    ("master_extra_stores: the managed secret first, then the others oldest first",
     {"instances": [instance("a")], "master_extra_stores": True,
      "secrets": [secret("aaa-new", "master", host=HOST_A, created=200.0),
                  secret("zzz-old", "master", host=HOST_A, created=100.0)]},
     {"a-master": ["rds!db-a", "zzz-old", "aaa-new"]}, ["zzz-old", "aaa-new"]),
    ("master_extra_stores: an unmanaged master's secret is its store",
     {"instances": [instance("a", managed=False)], "master_extra_stores": True,
      "secrets": [secret("m", "master", host=HOST_A)]},
     {"a-master": ["m"]}, []),
    ("a newer secret named to sort first does not become the primary",
     {"instances": [instance("a")],
      "secrets": [secret("prod/db/app", "app", host=HOST_A, created=100.0),
                  secret("aaa-x", "app", host=HOST_A, tags=TAG_A, created=900.0)]},
     {"a-master": ["rds!db-a"], "a-app": ["prod/db/app", "aaa-x"]},
     ["prod/db/app", "aaa-x"]),
    ("a tag gives no precedence over the creation date",
     {"instances": [instance("a")],
      "secrets": [secret("old-by-host", "app", host=HOST_A, created=1.0),
                  secret("new-tagged", "app", host=HOST_A, tags=TAG_A, created=2.0)]},
     {"a-master": ["rds!db-a"], "a-app": ["old-by-host", "new-tagged"]},
     ["old-by-host", "new-tagged"]),
    ("a secret without a creation date comes after the dated ones",
     {"instances": [instance("a")],
      "secrets": [secret("aaa-undated", "app", host=HOST_A),
                  secret("zzz-dated", "app", host=HOST_A, created=5.0)]},
     {"a-master": ["rds!db-a"], "a-app": ["zzz-dated", "aaa-undated"]},
     ["zzz-dated", "aaa-undated"]),
    ("one matching secret: no warning",
     {"instances": [instance("a")], "secrets": [secret("s", "app", host=HOST_A)]},
     {"a-master": ["rds!db-a"], "a-app": ["s"]}, []),
])
def test_who_can_add_a_store(case, kwargs, expected, warned):
    warnings: list[str] = []
    assert store_names(hosts(**kwargs, warnings=warnings)) == expected, case
    if warned:
        assert len(warnings) == 1, warnings
        assert ", ".join(repr(name) for name in warned) in warnings[0], warnings
        assert "review" in warnings[0]
    else:
        assert warnings == [], warnings


def test_the_ambiguity_warning_names_secrets_only():
    warnings: list[str] = []
    hosts(instances=[instance("a")], warnings=warnings,
          secrets=[secret("s1", "app", host=HOST_A, created=1.0),
                   secret("s2", "app", host=HOST_A, created=2.0)])
    assert warnings == [
        ("rds_targets: role 'app' of a is in 2 secrets, ordered oldest first: 's1', 's2'; "
         "review them (any of them becomes a store the runbooks write)")]
    assert "arn:" not in warnings[0]


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
    # a tag does not bypass the prefixes (review finding 1)
    ({"Name": "prod/web/key", "Tags": [{"Key": m.DEFAULT_SECRET_TAG, "Value": "a"}]},
     ["prod/db/"], False),
    ({"Name": "aaa-x", "Tags": [{"Key": m.DEFAULT_SECRET_TAG, "Value": "prod-db"}]},
     ["prod/db/"], False),
    ({"Name": "anything"}, [], True),
    ({"Name": "rds!db-123"}, [], False),
    ({"Name": "x", "OwningService": "rds"}, [], False),
])
def test_which_secrets_are_read(entry, prefixes, wanted):
    assert m.wanted_secret(entry, prefixes, m.DEFAULT_SECRET_TAG) is wanted


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


# review finding 2: a cache another local user can write is not read; a tampered record is
# dropped

def _built(connect=None):
    connect = CONNECT if connect is None else connect
    records = m.databases([instance("a")], [], REGION, {}, True)
    return m.build_hosts(records, [secret("s", "app", host=HOST_A)], connect,
                         m.DEFAULT_SECRET_TAG, m.DEFAULT_HOSTNAME_TEMPLATE)


def _tampered(change):
    hosts = json.loads(json.dumps(_built()))
    change(hosts[0]["vars"])
    return hosts


@pytest.mark.parametrize(("case", "change", "problem"), [
    ("another host", lambda v: v["pgauth_target"].update(host="evil"), "differs"),
    ("another port", lambda v: v["pgauth_target"].update(port=6543), "differs"),
    ("a weaker sslmode", lambda v: v["pgauth_target"].update(sslmode="disable"), "differs"),
    ("an sslrootcert", lambda v: v["pgauth_target"].update(sslrootcert="/tmp/evil-ca.pem"),
     "differs"),
    ("an unknown target key", lambda v: v["pgauth_target"].update(sslcert="/tmp/x"),
     "differs"),
    ("an unknown variable", lambda v: v.update(ansible_host="evil"), "unknown"),
    ("an unknown pgauth_rds key", lambda v: v["pgauth_rds"].update(x=1), "pgauth_rds"),
    ("a store of another type",
     lambda v: v["pgauth_stores"][0].update(type="command"), "pgauth_stores"),
    ("an unknown store key",
     lambda v: v["pgauth_stores"][0].update(read=["sh"]), "pgauth_stores"),
    ("iam on a database without IAM",
     lambda v: (v["pgauth_rds"].update(iam=False), v["pgauth_target"].update(auth="iam")),
     "pgauth_target"),
])
def test_a_tampered_cached_record_is_dropped(case, change, problem):
    kept, warnings = m.validate_cached(_tampered(change), CONNECT)
    names = [h["name"] for h in _built()]
    assert [h["name"] for h in kept] == names[1:], case
    assert len(warnings) == 1 and f"cached host {names[0]!r} dropped" in warnings[0], warnings
    assert problem in warnings[0], warnings
    assert "evil" not in warnings[0]


def test_the_plugins_own_records_pass_and_a_changed_connect_drops_them():
    built = json.loads(json.dumps(_built()))
    assert m.validate_cached(built, CONNECT) == (built, [])
    kept, warnings = m.validate_cached(built, {**CONNECT, "sslrootcert": "/etc/ssl/rds.pem"})
    assert kept == [] and len(warnings) == len(built)
    assert m.validate_cached({"not": "a list"}, CONNECT)[0] is None
