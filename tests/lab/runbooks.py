"""Running the collection's playbooks against the lab, and checking what they leave behind:
shared by the runbook tests (and the benchmarks)."""
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
import yaml
from labfixtures import BUILD, lab_client, lab_store_options

BIN = Path(sys.executable).parent
TOKEN_PARTS = re.compile(r"X-Amz-Signature=|X-Amz-Credential=")


def read_report(path: Path) -> dict:
    """A diagnose, verify or rotate report, checked against the invariant (DESIGN §5): a
    healthy verdict only when every store yielded a credential and every login worked."""
    report = json.loads(Path(path).read_text())
    if report.get("verdict") != "healthy":
        return report
    facts = report.get("facts") or {}
    failed = [probe.get("store") for probe in facts.get("probes") or [] if not probe.get("ok")]
    empty = [store.get("store") for store in facts.get("stores") or []
             if not store.get("readable", True) or not store.get("exists", True)]
    broken = [check.get("check") for check in report.get("checks") or [] if not check.get("ok")
              and check.get("severity") in ("critical", "warning")]
    assert not (failed or empty or broken), (
        f"{path}: verdict healthy, but failed logins {failed}, stores without a credential "
        f"{empty}, failed checks {broken}")
    return report


def vars_for(meta: dict, lab: dict, report_dir: Path) -> dict:
    return {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"],
            "pgauth_admin": {"user": lab["PGAUTH_LAB_ADMIN_USER"],
                             "password": lab["PGAUTH_LAB_ADMIN_PASSWORD"]},
            "pgauth_logs": meta["logs"], "pgauth_report_dir": str(report_dir),
            # the pooler of pooler_auth_stale; [] for the other scenarios
            "pgauth_consumers": meta.get("consumers") or []}


def playbook_command(lab: dict, tmp_path: Path, variables: dict, *args: str,
                     inventory: str | None = None, playbook: str = "diagnose",
                     env: dict | None = None) -> tuple[list[str], dict]:
    """The ansible-playbook command line and environment for one of our playbooks."""
    vars_file = tmp_path / f"{playbook}-vars.yml"
    vars_file.write_text(yaml.safe_dump(variables))
    env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_SHOW_CUSTOM_STATS": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", **(env or {})}
    command = [str(BIN / "ansible-playbook"), f"credops.pgauth.{playbook}", "-e",
               f"@{vars_file}", *args]
    if inventory:
        command += ["-i", inventory]
    return command, env


def run_playbook(lab: dict, tmp_path: Path, variables: dict, *args: str,
                 inventory: str | None = None, playbook: str = "diagnose",
                 env: dict | None = None) -> subprocess.CompletedProcess:
    command, env = playbook_command(lab, tmp_path, variables, *args, inventory=inventory,
                                    playbook=playbook, env=env)
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
            try:
                found.add(json.loads(value).get("password") or "")
            except (ValueError, AttributeError):  # a test broke it on purpose
                found.add(value)
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


def read_stores(meta: dict, lab: dict, stage: str = "current") -> dict:
    """Each store's credential (None when it has none), read with the collection's code."""
    from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
    options = lab_store_options(lab)
    found = {}
    for spec in meta["stores"]:
        cred, _stored = Store(spec, options).read(stage)
        found[spec["name"]] = cred
    return found


def logs_in(lab: dict, user: str, password: str, dbname: str = "appdb") -> bool:
    import psycopg2
    try:
        psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]),
                         user=user, password=password, dbname=dbname, sslmode="verify-full",
                         sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"], connect_timeout=5).close()
    except psycopg2.OperationalError:
        return False
    return True
