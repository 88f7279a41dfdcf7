"""The diagnose runbook (playbook credops.pgauth.diagnose) against every lab scenario.

Each scenario is named after the finding diagnose must put first.  Every run is at -vvv and
is checked for leaks: no password of the lab (admin or any store's), no AWS secret key and no
IAM token may appear in the output, the reports or the server log.  And diagnose is
read-only: the role, every store and the config file are the same after it ran.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import hvac
import pytest
import yaml
from conftest import BUILD, lab_client, run_labctl, scenario

BIN = Path(sys.executable).parent
TOKEN_PARTS = re.compile(r"X-Amz-Signature=|X-Amz-Credential=")
IAM_SCENARIOS = {"iam_role_blocks_password", "iam_role_not_granted", "iam_disabled_on_instance",
                 "iam_tls_missing", "iam_token_stale", "iam_policy_denies_connect"}
SCENARIOS = sorted(line.split()[0] for line in run_labctl("scenarios").stdout.splitlines())


def vars_for(meta: dict, lab: dict, report_dir: Path) -> dict:
    return {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"],
            "pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                             "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]},
            "pgauth_logs": meta["logs"], "pgauth_report_dir": str(report_dir)}


def run_playbook(lab: dict, tmp_path: Path, variables: dict, *args: str,
                 inventory: str | None = None) -> subprocess.CompletedProcess:
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(yaml.safe_dump(variables))
    env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_SHOW_CUSTOM_STATS": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    command = [str(BIN / "ansible-playbook"), "credops.pgauth.diagnose", "-e", f"@{vars_file}",
               *args]
    if inventory:
        command += ["-i", inventory]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          cwd=tmp_path)


def lab_secrets(lab: dict) -> set[str]:
    """Every password the lab holds right now (admin, Secrets Manager, Vault, the env file)
    and the AWS secret key: none may leak."""
    found = {lab["PGAUTH_LAB_ADMIN_PASSWORD"], lab["AWS_SECRET_ACCESS_KEY"]}
    sm = lab_client(lab, "secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            value = sm.get_secret_value(SecretId=secret["ARN"])["SecretString"]
            found.add(json.loads(value).get("password") or "")
    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    data = vault.secrets.kv.v2.read_secret_version(path="lab/app_user", mount_point="secret",
                                                   raise_on_deleted_version=True)
    found.add(data["data"]["data"].get("password") or "")
    app_dir = Path(lab["PGAUTH_LAB_DIR"]) / "app"
    config = yaml.safe_load((app_dir / "config.yml").read_text())
    found.add(str(config["database"].get("password") or ""))
    for line in (app_dir / "app.env").read_text().splitlines():
        if line.startswith("DATABASE_URL="):
            url = line.partition("=")[2]
            found.add(unquote(urlsplit(url).password or ""))
            # an unencoded '@' makes urlsplit cut the password short: take the raw userinfo too
            userinfo = url.partition("://")[2].rpartition("@")[0]
            found.add(unquote(userinfo.partition(":")[2]))
    return {secret for secret in found if len(secret) >= 6}


def snapshot(lab: dict) -> dict:
    """What diagnose must not change: the app role's catalog row, the secrets' versions, the
    env file."""
    query = ("SELECT rolname, rolcanlogin, rolpassword, rolvaliduntil, rolconnlimit "
             "FROM pg_authid WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1")
    psql = ["psql", "-X", "-At", "-h", lab["PGAUTH_LAB_PGSOCKET"], "-p", lab["PGAUTH_LAB_PGPORT"],
            "-U", "postgres", "-d", "postgres", "-c", query]
    roles = subprocess.run(psql, capture_output=True, text=True, check=True).stdout
    sm = lab_client(lab, "secretsmanager")
    versions = {secret["Name"]: secret.get("SecretVersionsToStages")
                for page in sm.get_paginator("list_secrets").paginate()
                for secret in page["SecretList"]}
    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    meta = vault.secrets.kv.v2.read_secret_metadata(path="lab/app_user", mount_point="secret")
    files = {path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
             for path in sorted((Path(lab["PGAUTH_LAB_DIR"]) / "app").iterdir())}
    return {"roles": roles, "aws": versions, "vault": meta["data"]["current_version"],
            "files": files}


def assert_no_leak(texts: dict[str, str], secrets: set[str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a lab secret appears in {where}"
        assert not TOKEN_PARTS.search(text), f"an IAM token appears in {where}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_diagnose_names_the_scenario_first(name, lab, tmp_path):
    if name in IAM_SCENARIOS and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    with scenario(name) as meta:
        secrets = lab_secrets(lab)
        before = snapshot(lab)
        log = Path(lab["PGAUTH_LAB_PGLOG"])
        log_offset = log.stat().st_size
        done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"), "-vvv")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        after = snapshot(lab)
        with log.open(errors="replace") as handle:
            handle.seek(log_offset)
            server_log = handle.read()
    report_json = tmp_path / "reports" / "localhost" / "diagnose.json"
    report = json.loads(report_json.read_text())
    markdown = report_json.with_suffix(".md").read_text()
    assert before == after, "diagnose changed something"
    assert_no_leak({"the -vvv output": done.stdout + done.stderr, "diagnose.json":
                    report_json.read_text(), "diagnose.md": markdown,
                    "the server log": server_log}, secrets)
    ids = [finding["id"] for finding in report["findings"]]
    if not meta["expect"]:
        assert report["verdict"] == "healthy", ids
        assert not [f for f in report["findings"] if f["severity"] in ("critical", "warning")]
    else:
        assert ids and ids[0] == meta["expect"][0], f"{name}: diagnose said {ids}"
        first = report["findings"][0]
        assert first["fix"]["command"] or first["fix"]["manual"]
        assert f"`{first['id']}`" in markdown and first["title"] in markdown
    assert set(report) >= {"runbook", "target", "generated_at", "verdict", "findings"}
    assert report["runbook"] == "diagnose" and not report["errors"], report["errors"]
    summary_head = f"app_user@{meta['target']['host']}:{meta['target']['port']}"
    assert summary_head in done.stdout and report["verdict"].upper() in done.stdout


def test_check_mode_is_the_same_read(lab, tmp_path):
    with scenario("password_mismatch") as meta:
        before = snapshot(lab)
        done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"), "--check")
        assert done.returncode == 0, done.stdout[-3000:]
        assert snapshot(lab) == before
    report = json.loads((tmp_path / "reports" / "localhost" / "diagnose.json").read_text())
    assert report["findings"][0]["id"] == "store_password_mismatch"


def test_a_fleet_is_inventory_and_forks(lab, tmp_path):
    """Two targets in group pgauth_targets, one run: a report each, and the play stats say
    which host is broken (what an AWX workflow branches on)."""
    reports = tmp_path / "reports"
    inventory = tmp_path / "inventory.yml"
    with scenario("healthy") as meta:
        ghost = {**meta["target"], "role": "ghost_user"}
        inventory.write_text(yaml.safe_dump({"pgauth_targets": {"hosts": {
            "app-db": {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"]},
            "ghost-db": {"pgauth_target": ghost, "pgauth_stores": []}}}}))
        # extra vars would override the host vars: the shared file has no target or stores
        variables = vars_for(meta, lab, reports)
        del variables["pgauth_target"], variables["pgauth_stores"]
        done = run_playbook(lab, tmp_path, variables, "--forks", "2", inventory=str(inventory))
    assert done.returncode == 0, done.stdout[-3000:]
    verdicts = {host: json.loads((reports / host / "diagnose.json").read_text())["verdict"]
                for host in ("app-db", "ghost-db")}
    assert verdicts == {"app-db": "healthy", "ghost-db": "broken"}
    stats = done.stdout[done.stdout.index("CUSTOM STATS"):]
    assert re.search(r'"pgauth_diagnose_broken":\s*\[\s*"ghost-db"\s*\]', stats), stats
    assert re.search(r'"pgauth_diagnose_healthy":\s*\[\s*"app-db"\s*\]', stats), stats
