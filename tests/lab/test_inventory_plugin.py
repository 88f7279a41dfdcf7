"""The credops.pgauth.rds_targets inventory plugin on the lab's moto: five databases (one
without IAM authentication, one Aurora cluster with a member instance), the secrets of their
roles and unrelated ones; ansible-inventory --graph and --list show exactly the expected
hosts and groups and no secret; a cached second run makes no AWS call; diagnose runs over the
inventory, on the hosts that compose points at the lab's PostgreSQL.

Every name carries a per-run suffix and the source filters on a tag holding it, so the RDS
state other tests leave in moto does not matter."""
from __future__ import annotations

import json
import os
import secrets as random
import subprocess
import time
import uuid

import psycopg2
import pytest
import yaml
from labfixtures import BUILD, connect, create_admin_role, lab_client, scenario
from psycopg2 import sql
from runbooks import BIN, assert_no_leak, read_report, run_playbook

WEST = "us-west-2"  # the second region (the lab's is us-east-1)


def _password() -> str:
    return "Inv-" + random.token_urlsafe(18)


def _drop_roles(lab: dict, roles: list[str]) -> None:
    conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGSOCKET"], port=lab["PGAUTH_LAB_PGPORT"],
                            user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        for role in roles:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    conn.close()


def _login_role(lab: dict, role: str, password: str) -> None:
    conn = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"])
    conn.autocommit = True
    with conn.cursor() as cur:
        verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)))
    conn.close()


@pytest.fixture(scope="module")
def fleet(lab):
    """The databases and secrets of one run: {"u", "meta", "passwords", "expected", ...}."""
    u = uuid.uuid4().hex[:6]
    rds, sm = lab_client(lab, "rds"), lab_client(lab, "secretsmanager")
    west = {**lab, "AWS_REGION": WEST}
    rds_west, sm_west = lab_client(west, "rds"), lab_client(west, "secretsmanager")
    pgport = int(lab["PGAUTH_LAB_PGPORT"])
    tag = [{"Key": "invtest", "Value": u}]
    roles = {"master": f"mm_{u}", "app": f"app_{u}", "stale": f"stale_{u}"}
    passwords = {"master_before": _password(), "app": _password(), "stale_db": _password(),
                 "stale_store": _password(), "pg2": _password(), "unrelated": _password(),
                 "broken": _password()}
    with scenario("healthy") as meta:
        create_admin_role(lab, roles["master"], passwords["master_before"])
        _login_role(lab, roles["app"], passwords["app"])
        _login_role(lab, roles["stale"], passwords["stale_db"])

        def instance(ident, api=rds, **kwargs):
            return api.create_db_instance(
                DBInstanceIdentifier=ident, DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                **{"Engine": "postgres", "Tags": tag, **kwargs})["DBInstance"]

        # 1. the lab's PostgreSQL behind it (the lab's moto sets the managed password there)
        pg1 = instance(f"inv-{u}-pg1", MasterUsername=roles["master"], Port=pgport,
                       ManageMasterUserPassword=True, EnableIAMDatabaseAuthentication=True,
                       Tags=[*tag, {"Key": "lab", "Value": "pg"}])
        # 2. no IAM, no managed secret: its master secret gets a host only with
        # master_extra_stores
        pg2 = instance(f"inv-{u}-pg2", MasterUsername=f"m2_{u}",
                       MasterUserPassword=passwords["pg2"], EnableIAMDatabaseAuthentication=False,
                       Tags=[*tag, {"Key": "env", "Value": "dev"}])
        # 3. IAM on; a role whose secret holds no password is an IAM user
        pg3 = instance(f"inv-{u}-pg3", MasterUsername="m3", MasterUserPassword=_password(),
                       EnableIAMDatabaseAuthentication=True)
        # 4. in a second region: a managed master only
        pg4 = instance(f"inv-{u}-pg4", api=rds_west, MasterUsername="m4",
                       ManageMasterUserPassword=True, EnableIAMDatabaseAuthentication=True,
                       DBName="ledger")
        # 5. an Aurora cluster, with a member instance that must get no host of its own
        rds.create_db_cluster(DBClusterIdentifier=f"inv-{u}-aur", Engine="aurora-postgresql",
                              MasterUsername=f"am_{u}", ManageMasterUserPassword=True,
                              EnableIAMDatabaseAuthentication=True, DatabaseName="aurdb",
                              Tags=tag)
        instance(f"inv-{u}-aur-1", Engine="aurora-postgresql", DBClusterIdentifier=f"inv-{u}-aur")
        # and a MySQL instance with the tag: not PostgreSQL, no host
        instance(f"inv-{u}-my", Engine="mysql", MasterUsername="root",
                 MasterUserPassword=_password())
        pg1_host, pg3_host = pg1["Endpoint"]["Address"], pg3["Endpoint"]["Address"]
        pg2_host = pg2["Endpoint"]["Address"]
        pg4_host = pg4["Endpoint"]["Address"]

        def rds_secret(name, value, tags=(), api=sm):
            return api.create_secret(Name=f"inv-{u}/{name}", SecretString=value,
                                     Tags=list(tags))["ARN"]

        def rds_json(username, password, host, port=5432, dbname="postgres"):
            value = {"engine": "postgres", "username": username, "host": host, "port": port,
                     "dbname": dbname}
            if password is not None:
                value["password"] = password
            return json.dumps(value)

        # pg1's role secrets address pg1's endpoint (and are tagged with its identifier: a
        # tag alone no longer suffices); test_diagnose_over_the_inventory points them at
        # the lab's PostgreSQL once the inventory is cached (moto's endpoint does not resolve)
        pg1_tag = [{"Key": "pgauth:db-identifier", "Value": f"inv-{u}-pg1"}]
        app_arn = rds_secret("pg1-app", rds_json(roles["app"], passwords["app"], pg1_host,
                                                 pgport), pg1_tag)
        stale_arn = rds_secret("pg1-stale", rds_json(roles["stale"], passwords["stale_store"],
                                                     pg1_host, pgport), pg1_tag)
        # review finding 1: an outsider's secrets, tagged pg1, named to sort first: one for
        # the master user on another host, one for the master user on pg1's endpoint (not a
        # store unless master_extra_stores), one with no host at all
        rds_secret("aaa-evil-host", rds_json(roles["master"], passwords["unrelated"],
                                             "evil.example", pgport), pg1_tag)
        rds_secret("aaa-master", rds_json(roles["master"], passwords["unrelated"], pg1_host,
                                          pgport), pg1_tag)
        rds_secret("aaa-nohost", json.dumps({"username": roles["app"],
                                             "password": passwords["unrelated"]}), pg1_tag)
        # tagged but outside the prefixes: never read
        sm.create_secret(Name=f"outside-tagged-{u}", Tags=pg1_tag,
                         SecretString=rds_json(f"outtag_{u}", "x", pg1_host, pgport))
        # a role found by its host (and port) alone
        rds_secret("pg4-report", rds_json(f"report_{u}", passwords["unrelated"], pg4_host,
                                          dbname="ledger"), api=sm_west)
        # a newer secret of the same role, named to sort first: it comes second (creation
        # date, oldest first), with a warning naming both
        time.sleep(1.1)
        rds_secret("aaa-report-newer", rds_json(f"report_{u}", passwords["unrelated"],
                                                pg4_host, dbname="ledger"), api=sm_west)
        # the same address in the first region: a secret is matched in its own region only
        rds_secret("pg4-wrong-region", rds_json(f"nothere_{u}", passwords["unrelated"],
                                                pg4_host, dbname="ledger"))
        rds_secret("pg2-master", rds_json(f"m2_{u}", passwords["pg2"], pg2_host),
                   [{"Key": "pgauth:db-identifier", "Value": f"inv-{u}-pg2"}])
        rds_secret("pg3-iam", rds_json(f"iam_{u}", None, pg3_host))
        # unrelated: another host, another port, not JSON, broken JSON, a tag for another db
        rds_secret("unrelated", rds_json("other", passwords["unrelated"], "db.example.org"))
        rds_secret("other-port", rds_json("pooled", passwords["unrelated"], pg3_host, 6432))
        rds_secret("plain", passwords["unrelated"])
        rds_secret("broken", '{"username": "x", "password": "' + passwords["broken"])
        rds_secret("elsewhere", json.dumps({"username": "z", "password": passwords["unrelated"]}),
                   [{"Key": "pgauth:db-identifier", "Value": f"no-such-db-{u}"}])
        # outside the prefixes: never read, though it addresses pg1
        sm.create_secret(Name=f"outside-{u}", SecretString=rds_json("outsider", "x", pg1_host))
        managed = {}
        for api, secrets_api in ((rds, sm), (rds_west, sm_west)):
            for record in api.describe_db_instances()["DBInstances"]:
                if record["DBInstanceIdentifier"].startswith(f"inv-{u}-") \
                        and record.get("MasterUserSecret"):
                    arn = record["MasterUserSecret"]["SecretArn"]
                    managed[record["DBInstanceIdentifier"]] = arn
                    passwords[arn] = json.loads(secrets_api.get_secret_value(
                        SecretId=arn)["SecretString"])["password"]
        cluster_arn = rds.describe_db_clusters(DBClusterIdentifier=f"inv-{u}-aur")[
            "DBClusters"][0]["MasterUserSecret"]["SecretArn"]
        yield {"u": u, "meta": meta, "passwords": passwords, "roles": roles,
               "managed": managed, "cluster_secret": cluster_arn, "pgport": pgport,
               "pg1_host": pg1_host, "role_secrets": {"app": app_arn, "stale": stale_arn},
               "rds_json": rds_json, "sm": sm}
    _drop_roles(lab, list(roles.values()))


def _source(lab: dict, fleet: dict, path, **extra) -> str:
    u = fleet["u"]
    lab_pg = {"host": lab["PGAUTH_LAB_PGHOST"], "port": fleet["pgport"],
              "sslrootcert": lab["PGAUTH_LAB_SSLROOTCERT"]}
    source = {
        "plugin": "credops.pgauth.rds_targets",
        "regions": [lab["AWS_REGION"], WEST],
        "filters": {"tags": {"invtest": u}},
        "secret_prefixes": [f"inv-{u}/"],
        "keyed_groups": [{"key": "pgauth_rds.engine", "prefix": "engine"},
                         {"key": "pgauth_target.auth", "prefix": "auth"},
                         {"key": "pgauth_rds.kind", "prefix": "kind"},
                         {"key": "pgauth_rds.region", "prefix": "region"}],
        "groups": {"lab_pg": "pgauth_rds.tags.lab | default('') == 'pg'"},
        # the fake endpoints do not resolve: pg1's hosts are pointed at the lab's PostgreSQL
        "compose": {"pgauth_target": "pgauth_target | combine(" + json.dumps(lab_pg)
                    + ") if pgauth_rds.tags.lab | default('') == 'pg' else pgauth_target"},
        "strict": True,
        **extra}
    file = path / "fleet.rds_targets.yml"
    file.write_text(yaml.safe_dump(source))
    return str(file)


def _inventory(lab: dict, source: str, *args: str, env: dict | None = None):
    env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", **(env or {})}
    started = time.monotonic()
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", source, *args],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    return done, time.monotonic() - started


def _expected(fleet: dict) -> dict[str, list[str]]:
    u, roles = fleet["u"], fleet["roles"]
    return {f"inv-{u}-pg1-{roles['master']}": [fleet["managed"][f"inv-{u}-pg1"]],
            f"inv-{u}-pg1-{roles['app']}": [f"inv-{u}/pg1-app"],
            f"inv-{u}-pg1-{roles['stale']}": [f"inv-{u}/pg1-stale"],
            f"inv-{u}-pg3-iam_{u}": [f"inv-{u}/pg3-iam"],
            f"inv-{u}-pg4-m4": [fleet["managed"][f"inv-{u}-pg4"]],
            f"inv-{u}-pg4-report_{u}": [f"inv-{u}/pg4-report", f"inv-{u}/aaa-report-newer"],
            f"inv-{u}-aur-am_{u}": [fleet["cluster_secret"]]}


def _store_names(hostvars: dict) -> list[str]:
    # a managed secret by its ARN, the others by name (their ARN ends in a random suffix)
    return [store["secret_id"] if "secret:rds!" in store["secret_id"] else store["name"]
            for store in hostvars["pgauth_stores"]]


def _plain(value):
    """ansible-inventory --list marks values from the plugin unsafe: {"__ansible_unsafe": v}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def test_inventory_graph_list_and_no_secret(lab, fleet, tmp_path):
    u = fleet["u"]
    source = _source(lab, fleet, tmp_path)
    graph = _inventory(lab, source, "--graph")[0]
    listed = _inventory(lab, source, "--list")[0]
    assert graph.returncode == 0, graph.stderr[-3000:]
    assert listed.returncode == 0, listed.stderr[-3000:]
    expected = _expected(fleet)
    inventory = _plain(json.loads(listed.stdout))
    hostvars = inventory["_meta"]["hostvars"]
    assert {name: _store_names(v) for name, v in hostvars.items()} == expected
    assert sorted(inventory["pgauth_targets"]["hosts"]) == sorted(expected)
    groups = {name: sorted(group.get("hosts", [])) for name, group in inventory.items()
              if name not in ("_meta", "all")}
    pg1 = sorted(name for name in expected if name.startswith(f"inv-{u}-pg1-"))
    assert groups["lab_pg"] == pg1
    assert groups["engine_aurora_postgresql"] == [f"inv-{u}-aur-am_{u}"]
    assert groups["engine_postgres"] == sorted(set(expected) - {f"inv-{u}-aur-am_{u}"})
    assert groups["auth_iam"] == [f"inv-{u}-pg3-iam_{u}"]
    assert groups["kind_cluster"] == [f"inv-{u}-aur-am_{u}"]
    assert "engine_mysql" not in groups
    # the graph shows the same hosts under pgauth_targets
    for name in expected:
        assert f"|--{name}" in graph.stdout, graph.stdout
    assert "@pgauth_targets:" in graph.stdout and "@lab_pg:" in graph.stdout
    # the variables
    # the ordering warning names the secrets of pg4's report role, oldest first
    assert (f"'inv-{u}/pg4-report', 'inv-{u}/aaa-report-newer'; review them"
            in " ".join(listed.stderr.split())), listed.stderr[-3000:]
    assert "evil.example" not in listed.stdout and f"outtag_{u}" not in listed.stdout
    assert hostvars[f"inv-{u}-pg4-m4"]["pgauth_target"]["dbname"] == "ledger"
    west = [name for name in expected if name.startswith(f"inv-{u}-pg4-")]
    assert groups[f"region_{WEST.replace('-', '_')}"] == sorted(west)
    assert {hostvars[name]["pgauth_target"]["region"] for name in west} == {WEST}
    assert {store["region"] for name in west for store in hostvars[name]["pgauth_stores"]} \
        == {WEST}
    assert hostvars[f"inv-{u}-pg4-report_{u}"]["pgauth_target"]["auth"] == "password"
    aurora = hostvars[f"inv-{u}-aur-am_{u}"]["pgauth_target"]
    assert aurora["rds_cluster_id"] == f"inv-{u}-aur" and aurora["dbname"] == "aurdb"
    assert ".cluster-" in aurora["host"] and "rds_instance_id" not in aurora
    app = hostvars[f"inv-{u}-pg1-{fleet['roles']['app']}"]["pgauth_target"]
    assert (app["host"], app["port"], app["sslmode"]) == (
        lab["PGAUTH_LAB_PGHOST"], fleet["pgport"], "verify-full")  # composed
    assert hostvars[f"inv-{u}-pg1-{fleet['roles']['app']}"]["pgauth_stores"][0] == {
        "name": f"inv-{u}/pg1-app", "type": "aws_secretsmanager", "format": "json",
        "region": lab["AWS_REGION"], "secret_id": hostvars[
            f"inv-{u}-pg1-{fleet['roles']['app']}"]["pgauth_stores"][0]["secret_id"]}
    # a broken secret is named in a warning, never shown
    assert f"inv-{u}/broken" in listed.stderr and f"inv-{u}/plain" in listed.stderr
    secrets = set(fleet["passwords"].values())
    assert_no_leak({"graph": graph.stdout + graph.stderr,
                    "list": listed.stdout + listed.stderr}, secrets)
    assert '"password":' not in json.dumps(hostvars)  # no key of that name anywhere


def test_master_extra_stores(lab, fleet, tmp_path):
    """Opted in, the master user's host gets the other matching secrets after the managed
    one, and an unmanaged master user gets a host; a secret on another host still never."""
    u = fleet["u"]
    listed = _inventory(lab, _source(lab, fleet, tmp_path, master_extra_stores=True),
                        "--list")[0]
    assert listed.returncode == 0, listed.stderr[-3000:]
    hostvars = _plain(json.loads(listed.stdout))["_meta"]["hostvars"]
    expected = {**_expected(fleet),
                f"inv-{u}-pg1-{fleet['roles']['master']}": [
                    fleet["managed"][f"inv-{u}-pg1"], f"inv-{u}/aaa-master"],
                f"inv-{u}-pg2-m2_{u}": [f"inv-{u}/pg2-master"]}
    assert {name: _store_names(v) for name, v in hostvars.items()} == expected
    pg2 = hostvars[f"inv-{u}-pg2-m2_{u}"]
    assert pg2["pgauth_rds"]["iam"] is False and pg2["pgauth_target"]["auth"] == "password"
    assert pg2["pgauth_rds"]["tags"] == {"invtest": u, "env": "dev"}


def test_cache_second_run_makes_no_aws_call(lab, fleet, tmp_path):
    """With a jsonfile cache, a second run answers from the cache: its source names a dead
    endpoint, so any AWS call would fail it; without the cache the same source fails with an
    error naming the region and the call."""
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile",
             "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600}
    source = _source(lab, fleet, tmp_path, **cache)
    first, first_s = _inventory(lab, source, "--list")
    assert first.returncode == 0, first.stderr[-3000:]
    cached_files = list((tmp_path / "cache").iterdir())
    assert cached_files
    assert_no_leak({"cache": "".join(f.read_text() for f in cached_files)},
                   set(fleet["passwords"].values()))
    # the endpoint of every AWS call is now a closed port
    dead = {"endpoint_url": "http://127.0.0.1:9",
            "aws_config": {"connect_timeout": 2, "retries": {"max_attempts": 1}}}
    _source(lab, fleet, tmp_path, **cache, **dead)
    second, second_s = _inventory(lab, source, "--list")
    assert second.returncode == 0, second.stderr[-3000:]
    # the same hosts and values; from the cache every value is marked unsafe (a cached
    # value is never a template), where a fresh run leaves the region from the options as is
    assert _plain(json.loads(second.stdout)) == _plain(json.loads(first.stdout))
    flushed = _inventory(lab, source, "--list", "--flush-cache")[0]
    assert flushed.returncode != 0
    assert (f"region {lab['AWS_REGION']}: cannot reach rds at http://127.0.0.1:9"
            in flushed.stderr), flushed.stderr[-3000:]
    print(f"inventory: first run {first_s:.1f}s, cached {second_s:.1f}s")


def _point_role_secrets(fleet: dict, host: str) -> None:
    for role, arn in fleet["role_secrets"].items():
        password = fleet["passwords"]["app" if role == "app" else "stale_store"]
        fleet["sm"].put_secret_value(SecretId=arn, SecretString=fleet["rds_json"](
            fleet["roles"][role], password, host, fleet["pgport"]))


def test_diagnose_over_the_inventory(lab, fleet, tmp_path):
    # the inventory is built (and cached) while pg1's role secrets address pg1's endpoint;
    # then they are pointed at the lab's PostgreSQL, which diagnose logs in to (a store's
    # host wins in a probe, and moto's endpoint does not resolve)
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile",
             "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600}
    source = _source(lab, fleet, tmp_path, **cache)
    built = _inventory(lab, source, "--list")[0]
    assert built.returncode == 0, built.stderr[-3000:]
    _point_role_secrets(fleet, lab["PGAUTH_LAB_PGHOST"])
    try:
        _run_diagnose(lab, fleet, tmp_path, source)
    finally:
        _point_role_secrets(fleet, fleet["pg1_host"])


def _run_diagnose(lab, fleet, tmp_path, source):
    u, roles, meta = fleet["u"], fleet["roles"], fleet["meta"]
    reports = tmp_path / "reports"
    variables = {"pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                                  "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]},
                 "pgauth_logs": meta["logs"], "pgauth_report_dir": str(reports)}
    done = run_playbook(lab, tmp_path, variables, "--limit", "lab_pg", inventory=source)
    assert done.returncode == 0, done.stdout[-4000:]
    verdicts = {}
    for host in sorted(p.name for p in reports.iterdir() if p.is_dir()):
        report = read_report(reports / host / "diagnose.json")
        verdicts[host] = (report["verdict"], [f["id"] for f in report["findings"]][:1])
    assert verdicts == {
        f"inv-{u}-pg1-{roles['app']}": ("healthy", []),
        f"inv-{u}-pg1-{roles['master']}": ("healthy", []),
        f"inv-{u}-pg1-{roles['stale']}": ("broken", ["store_password_mismatch"]),
    }, verdicts
    assert_no_leak({"diagnose": done.stdout + done.stderr,
                    "reports": "".join(p.read_text() for p in reports.rglob("*.json"))},
                   set(fleet["passwords"].values()))
