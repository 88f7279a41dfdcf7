"""The discover runbook (playbook credops.pgauth.discover) on the lab: the issue's scenario.

Six real copies of the role's current password (Secrets Manager JSON, Vault KV v2 under a
subtree, an SSM parameter, a dotenv DATABASE_URL, a Spring .properties, an ECS task
definition), two stale copies of an old one (Vault, YAML) and twenty unrelated secrets
(other roles, other hosts, random tokens, broken JSON) in the same scopes.  discover must
list the six as current and the two as stale, nothing else, and never show a value; the
vars.yml it writes goes straight to diagnose and rotate.
"""
from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import hvac
import psycopg2
import pytest
import yaml
from labfixtures import connect, create_admin_role, lab_client, lab_store_options
from psycopg2 import sql
from runbooks import assert_no_leak, playbook_command, read_report, run_playbook


class VarsLoader(yaml.SafeLoader):
    """vars.yml writes every string !unsafe (ansible never templates it): plain strings here."""


VarsLoader.add_constructor("!unsafe", yaml.SafeLoader.construct_yaml_str)


def load_vars(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=VarsLoader)


def token() -> str:
    return "Dz" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


@pytest.fixture
def world(lab, tmp_path):
    """The role, its copies and the unrelated secrets; dropped afterwards."""
    tag = secrets.token_hex(3)
    role, current, old = f"disc_{tag}", token(), token()
    host, port = lab["PGAUTH_LAB_PGHOST"], int(lab["PGAUTH_LAB_PGPORT"])
    admin = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"])
    admin.autocommit = True
    cur = admin.cursor()
    verifier = psycopg2.extensions.encrypt_password(current, role, admin, "scram-sha-256")
    cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                   sql.Literal(verifier)))
    unrelated: list[str] = []

    def other() -> str:
        unrelated.append(token())
        return unrelated[-1]

    def rds_json(user, password, on_host=host, on_port=port):
        return json.dumps({"username": user, "password": password, "host": on_host,
                           "port": on_port, "dbname": "postgres", "engine": "postgres"})

    sm, ssm, ecs = (lab_client(lab, name) for name in ("secretsmanager", "ssm", "ecs"))
    prefix = f"disc-{tag}/"
    sm.create_secret(Name=f"{prefix}app", SecretString=rds_json(role, current))
    sm.create_secret(Name=f"{prefix}billing", SecretString=rds_json("billing", other()))
    sm.create_secret(Name=f"{prefix}app-replica",
                     SecretString=rds_json(role, other(), on_host="replica.internal"))
    sm.create_secret(Name=f"{prefix}app-5433", SecretString=rds_json(role, other(), on_port=5433))
    sm.create_secret(Name=f"{prefix}api-token", SecretString=other())
    sm.create_secret(Name=f"{prefix}broken", SecretString='{"password": "' + other())
    sm.create_secret(Name=f"other-{tag}/app", SecretString=rds_json(role, old))  # not in scope

    path = f"/disc-{tag}"
    ssm.put_parameter(Name=f"{path}/app/password", Value=current, Type="SecureString")
    ssm.put_parameter(Name=f"{path}/billing/password", Value=other(), Type="SecureString")
    ssm.put_parameter(Name=f"{path}/app/api_key", Value=other(), Type="String")
    ssm.put_parameter(Name=f"{path}/billing/dsn", Type="SecureString",
                      Value=f"postgresql://billing:{other()}@billing.internal/billing")
    ssm.put_parameter(Name=f"{path}/search/json", Type="SecureString",
                      Value=rds_json("search", other()))

    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    kv = vault.secrets.kv.v2
    base = f"disc-{tag}"
    kv.create_or_update_secret(f"{base}/team/app/db", {
        "username": role, "password": current, "host": host, "port": str(port),
        "dbname": "postgres"}, mount_point="secret")
    kv.create_or_update_secret(f"{base}/legacy/db", {
        "username": role, "password": old, "host": host}, mount_point="secret")
    kv.create_or_update_secret(f"{base}/team/billing/db", {
        "username": "billing", "password": other()}, mount_point="secret")
    kv.create_or_update_secret(f"{base}/team/api", {"api_token": other()}, mount_point="secret")
    kv.create_or_update_secret(f"{base}/team/search", {
        "url": f"postgresql://search:{other()}@search.internal:5432/search"},
        mount_point="secret")
    kv.create_or_update_secret(f"{base}/deep/a/b/c/d/e/f", {
        "username": role, "password": other()}, mount_point="secret")  # below max_depth

    # not under pytest-of-root: the lab's Vault token is "root", and ansible masks every
    # no_log value in a module's result (the stores' paths would read pytest-of-********)
    files = Path(tempfile.mkdtemp(prefix="pgauth-discover-")) / "srv"
    (files / "app").mkdir(parents=True)
    (files / "app" / ".env").write_text(
        f"APP_ENV=prod\nDATABASE_URL=postgresql://{role}:{current}@{host}:{port}/postgres\n")
    (files / "app" / "application.properties").write_text(
        f"spring.datasource.url=jdbc:postgresql://{host}:{port}/postgres\n"
        f"spring.datasource.username={role}\nspring.datasource.password={current}\n")
    (files / "legacy").mkdir()
    (files / "legacy" / "config.yaml").write_text(
        f"database:\n  user: {role}\n  password: {old}\n  host: {host}\n  port: {port}\n")
    (files / "billing").mkdir()
    (files / "billing" / ".env").write_text(
        f"DATABASE_URL=postgresql://billing:{other()}@{host}:{port}/billing\n"
        f"STRIPE_TOKEN={other()}\n")
    (files / "billing" / "app.properties").write_text(
        f"db.username=billing\ndb.password={other()}\n")
    (files / "billing" / "broken.json").write_text('{"password": "' + other())
    (files / "billing" / "config.yaml").write_text(f"cache:\n  password: {other()}\n")

    family = f"disc-{tag}-api"
    ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "api", "image": "app/api:1", "memory": 256,
        "environment": [{"name": "DB_PASSWORD", "value": current},
                        {"name": "LOG_LEVEL", "value": "info"}]}])
    ecs.register_task_definition(family=f"disc-{tag}-worker", containerDefinitions=[{
        "name": "worker", "image": "app/worker:1", "memory": 256,
        "environment": [{"name": "DB_PASSWORD", "value": other()},
                        {"name": "DATABASE_URL",
                         "value": f"postgresql://worker:{other()}@worker.internal/w"}]}])
    cluster = ecs.create_cluster(clusterName=f"disc-{tag}")["cluster"]["clusterName"]
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=family, desiredCount=0)
    ecs.create_service(cluster=cluster, serviceName="worker",
                       taskDefinition=f"disc-{tag}-worker", desiredCount=0)
    assert len(unrelated) == 20

    target = {"role": role, "host": host, "port": port, "dbname": "postgres",
              "sslmode": "verify-full", "sslrootcert": lab["PGAUTH_LAB_SSLROOTCERT"]}
    scopes = [
        {"type": "aws_secretsmanager", "name_prefixes": [prefix]},
        {"type": "aws_ssm", "paths": [path]},
        {"type": "vault_kv2", "mount_point": "secret", "path": base, "max_depth": 4},
        {"type": "file", "globs": [str(files / "**" / "*"), str(files / "**" / ".env")]},
        {"type": "aws_ecs_task_definition", "family_prefixes": [f"disc-{tag}-"],
         "clusters": [cluster]},
    ]
    yield {"role": role, "current": current, "old": old, "unrelated": unrelated,
           "target": target, "scopes": scopes, "prefix": prefix, "path": path, "base": base,
           "files": files, "family": family, "cluster": cluster}
    for name in [f"{prefix}{n}" for n in ("app", "billing", "app-replica", "app-5433",
                                          "api-token", "broken")] + [f"other-{tag}/app"]:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    admin.close()
    shutil.rmtree(files.parent, ignore_errors=True)


CURRENT_STORES = {"sm:{prefix}app", "ssm:{path}/app/password",
                  "vault:secret/{base}/team/app/db", "file:{files}/app/.env[DATABASE_URL]",
                  ("file:{files}/app/application.properties[spring.datasource.password,"
                   "spring.datasource.username,spring.datasource.url]"),
                  "ecs:{family}/api/DB_PASSWORD"}
STALE_STORES = {"vault:secret/{base}/legacy/db",
                ("file:{files}/legacy/config.yaml[database.password,database.user,"
                 "database.host,database.port]")}


def names(template: set[str], world: dict) -> set[str]:
    return {name.format(**world) for name in template}


def admin_vars(lab: dict) -> dict:
    return {"pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                             "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]}}


def discover(lab, tmp_path, world, *args, admin=None, reports="reports"):
    variables = {"pgauth_target": world["target"], "pgauth_discover_scopes": world["scopes"],
                 "pgauth_report_dir": str(tmp_path / reports), **(admin or admin_vars(lab))}
    done = run_playbook(lab, tmp_path, variables, "-vvv", *args, playbook="discover")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = tmp_path / reports / "localhost"
    return done, read_report(out / "discover.json"), out


def listed(report: dict, status: str) -> set[str]:
    return {item["store"]["name"] for item in report["copies"] if item["status"] == status}


def secrets_of(world: dict) -> set[str]:
    return {world["current"], world["old"], *world["unrelated"]}


def test_discover_finds_the_copies_and_vars_yml_feeds_diagnose_and_rotate(lab, tmp_path,
                                                                          world):
    checked, check_report, _check_dir = discover(lab, tmp_path, world, "--check", reports="check")
    done, report, out = discover(lab, tmp_path, world)
    for run in (check_report, report):
        assert run["method"] == "verifier" and run["logins"] == 0
        assert listed(run, "current") == names(CURRENT_STORES, world)
        assert listed(run, "stale") == names(STALE_STORES, world)
        assert listed(run, "unknown") == set()
        assert not run["errors"], run["errors"]
        assert run["counts"]["unrelated"] >= 15
        assert run["skipped"] >= 2  # the broken JSON secret and broken.json
    assert [line for line in done.stdout.splitlines() if "values looked at" in line]
    # idempotent: the same file, nothing changed
    again, _again_report, _again_dir = discover(lab, tmp_path, world)
    for run in (checked, done, again):
        assert "changed=0" in run.stdout and "failed=0" in run.stdout
    vars_file = out / "vars.yml"
    assert vars_file.stat().st_mode & 0o777 == 0o600
    generated = load_vars(vars_file)
    assert generated == load_vars(tmp_path / "check" / "localhost" / "vars.yml")
    stores = generated["pgauth_stores"]
    assert stores[0]["name"] == f"{world['prefix']}app".join(("sm:", ""))  # the primary rule
    assert {store["name"] for store in stores} == names(CURRENT_STORES | STALE_STORES, world)
    assert generated["pgauth_consumers"] == [{
        "name": f"ecs:{world['cluster']}/api", "type": "aws_ecs_service",
        "cluster": world["cluster"], "service": "api"}]
    assert generated["pgauth_target"]["role"] == world["role"]
    texts = {"discover -vvv": done.stdout + done.stderr,
             "discover --check": checked.stdout + checked.stderr,
             **{path.name: path.read_text() for path in out.iterdir()}}
    assert_no_leak(texts, secrets_of(world))

    # diagnose with it: exactly the two stale copies are mismatched
    variables = {**generated, **admin_vars(lab), "pgauth_report_dir": str(tmp_path / "diag")}
    diag = run_playbook(lab, tmp_path, variables, playbook="diagnose")
    assert diag.returncode == 0, diag.stdout[-3000:]
    diagnosed = read_report(tmp_path / "diag" / "localhost" / "diagnose.json")
    ids = {finding["id"] for finding in diagnosed["findings"]}
    folded = {item["id"] for finding in diagnosed["findings"]
              for item in finding.get("folded") or []}
    assert "store_password_mismatch" in ids | folded, diagnosed["findings"]
    disagree = [finding for finding in diagnosed["findings"] if finding["id"] == "stores_disagree"]
    assert set(disagree[0]["evidence"]["stale"]) == names(STALE_STORES, world)
    others = ids - {
        "store_password_mismatch", "stores_disagree", "store_plaintext_env"}
    assert not others, diagnosed["findings"]
    probes = {probe["store"]: probe["ok"] for probe in diagnosed["facts"]["probes"]}
    assert {name for name, ok in probes.items() if not ok} == names(STALE_STORES, world)

    # rotate with it, forced (a stale copy was just found): one run gives all eight a new
    # password; unforced, rotate would only bring the stale copies in line (converged)
    from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

    def passwords() -> set[str]:
        return {Store(store, lab_store_options(lab)).read()[0].password for store in stores}

    variables = {**generated, **admin_vars(lab), "pgauth_report_dir": str(tmp_path / "rot"),
                 "pgauth_force": True}
    rot = run_playbook(lab, tmp_path, variables, playbook="rotate")
    assert rot.returncode == 0, rot.stdout[-4000:]
    outputs = rot.stdout + rot.stderr
    rotated = json.loads((tmp_path / "rot" / "localhost" / "rotate.json").read_text())
    assert rotated["outcome"] == "rotated", rotated.get("steps")
    held = passwords()
    assert len(held) == 1, "the stores disagree after rotate"
    new = held.pop()
    assert new not in (world["current"], world["old"])
    connect(lab, world["role"], new).close()
    assert_no_leak({"rotate": outputs}, secrets_of(world) | {new})
    verify = run_playbook(lab, tmp_path, {**variables, "pgauth_report_dir": str(tmp_path / "ver")},
                          playbook="verify")
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_without_pg_authid_only_the_role_s_candidates_log_in(lab, tmp_path, world):
    """A CREATEROLE admin (RDS's master user) cannot read pg_authid: one login per
    candidate that names the role, none with another secret's value."""
    admin_role, admin_password = f"disc_admin_{secrets.token_hex(3)}", token()
    create_admin_role(lab, admin_role, admin_password)
    log = Path(lab["PGAUTH_LAB_PGLOG"])
    start = log.stat().st_size
    try:
        done, report, out = discover(lab, tmp_path, world, admin={
            "pgauth_admin": {"user": admin_role, "password": admin_password}})
        with log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode("utf-8", "replace")
    finally:
        conn = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"])
        conn.autocommit = True
        conn.cursor().execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(admin_role)))
        conn.close()
    assert report["method"] == "login"
    # the address-matching ones: 4 current (SM, Vault, dotenv, properties), 2 stale; the
    # SSM and ECS copies carry no username, so they are not sent anywhere
    assert listed(report, "current") == names(CURRENT_STORES, world) - {
        name.format(**world) for name in ("ssm:{path}/app/password",
                                          "ecs:{family}/api/DB_PASSWORD")}
    assert listed(report, "stale") == names(STALE_STORES, world)
    assert report["logins"] == 2  # one per distinct password: current and old
    failed = [line for line in text.splitlines() if "password authentication failed" in line]
    assert len(failed) == 1 and f'user "{world["role"]}"' in failed[0], failed
    tried_as = {line.split('user=')[1].split()[0] for line in text.splitlines()
                if "connection authenticated" in line or "connection authorized" in line
                if "user=" in line}
    assert tried_as <= {world["role"], admin_role}, tried_as
    assert_no_leak({"discover": done.stdout + done.stderr, "pg log": text,
                    **{path.name: path.read_text() for path in out.iterdir()}},
                   secrets_of(world))


def test_a_scope_that_cannot_be_listed_is_an_error_entry(lab, tmp_path, world):
    world = {**world, "scopes": [{"type": "vault_kv2", "mount_point": "no-such-mount",
                                  "path": "x"}, *world["scopes"][:1]]}
    command, env = playbook_command(lab, tmp_path, {
        "pgauth_target": world["target"], "pgauth_discover_scopes": world["scopes"],
        "pgauth_report_dir": str(tmp_path / "r"), **admin_vars(lab)}, playbook="discover")
    done = subprocess.run(command, env={**env, "VAULT_TOKEN": "not-a-token"},
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    report = read_report(tmp_path / "r" / "localhost" / "discover.json")
    assert len(report["errors"]) == 1 and report["errors"][0].startswith("scope 1 (vault_kv2)")
    assert listed(report, "current") == {f"sm:{world['prefix']}app"}


def _function(lab: dict, name: str, variables: dict) -> None:
    iam = lab_client(lab, "iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    lab_client(lab, "lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=arn, Handler="app.handler",
        Code={"ZipFile": code.getvalue()}, Environment={"Variables": variables})


def test_lambda_environments(lab, tmp_path, world):
    prefix = f"disc-{secrets.token_hex(3)}-"
    other = token()
    _function(lab, f"{prefix}api", {"DB_PASSWORD": world["current"], "DB_USER": world["role"],
                                    "LOG_LEVEL": "info"})
    _function(lab, f"{prefix}worker", {"DB_PASSWORD": other, "LOG_LEVEL": "info"})
    _function(lab, f"unscoped-{prefix}api", {"DB_PASSWORD": world["current"]})
    world = {**world, "scopes": [{"type": "aws_lambda_environment",
                                  "function_prefixes": [prefix]}]}
    done, report, out = discover(lab, tmp_path, world)
    assert listed(report, "current") == {f"lambda:{prefix}api/DB_PASSWORD"}
    assert report["counts"]["unrelated"] == 1 and not report["errors"]
    stores = load_vars(out / "vars.yml")["pgauth_stores"]
    assert stores == [{"type": "aws_lambda_environment", "function": f"{prefix}api",
                       "variable": "DB_PASSWORD", "format": "password",
                       "name": f"lambda:{prefix}api/DB_PASSWORD"}]
    assert_no_leak({"discover": done.stdout + done.stderr,
                    **{path.name: path.read_text() for path in out.iterdir()}},
                   {world["current"], other})
