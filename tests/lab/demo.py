"""`make demo`: the classic outage, then diagnose -> rotate -> verify on the lab.

The lab is in the password_mismatch scenario: app_user's password in Secrets Manager, Vault,
the app's config file and its DATABASE_URL is not the database's.  The demo shows the error
the app sees, then runs the three runbooks with one vars file and prints what each says.
No password is printed; the admin logs in through PGUSER/PGPASSWORD, not the vars file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import yaml

REPO = Path(__file__).resolve().parents[2]
env = os.environ
meta = json.loads(Path(env["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
target = meta["target"]
aws_store = meta["stores"][0]
demo_dir = Path(env["PGAUTH_LAB_DIR"]) / "demo"
reports = demo_dir / "reports"


def banner(text: str) -> None:
    print(f"\n=== {text}")


def app_login() -> None:
    """What the application sees: its credential from Secrets Manager, then psql."""
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=aws_store["secret_id"])["SecretString"])
    login_env = dict(env, PGHOST=str(secret["host"]), PGPORT=str(secret["port"]),
                     PGUSER=secret["username"], PGDATABASE=secret["dbname"],
                     PGPASSWORD=secret["password"], PGSSLMODE="verify-full",
                     PGSSLROOTCERT=target["sslrootcert"], PGCONNECT_TIMEOUT="5")
    print(f"$ psql -c 'SELECT 1'     # as the app: {secret['username']}@{secret['host']}:"
          f"{secret['port']}/{secret['dbname']}, password from {aws_store['secret_id']}")
    if shutil.which("psql"):
        done = subprocess.run(["psql", "-X", "-At", "-c", "SELECT 1"], env=login_env,
                              capture_output=True, text=True, check=False)
        print((done.stdout + done.stderr).rstrip())


def summary_of(output: str) -> list[str]:
    """The lines of the runbook's Summary task (a JSON list in the default callback)."""
    match = re.search(r'TASK \[credops\.pgauth\.\w+ : Summary\].*?"msg": (\[.*?\n    \])',
                      output, re.S)
    return json.loads(match.group(1)) if match else []


def runbook(name: str, vars_file: Path) -> bool:
    command = ["ansible-playbook", f"credops.pgauth.{name}", "-e", f"@{vars_file}"]
    print(f"$ {' '.join(command).replace(str(REPO) + '/', '')}")
    started = time.monotonic()
    done = subprocess.run([str(REPO / ".venv" / "bin" / command[0]), *command[1:]],
                          env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build"),
                                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
                                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                                   PGUSER=env["PGAUTH_LAB_ADMIN_USER"],
                                   PGPASSWORD=env["PGAUTH_LAB_ADMIN_PASSWORD"]),
                          capture_output=True, text=True, check=False)
    for line in summary_of(done.stdout) or done.stdout.splitlines()[-15:]:
        print("  " + line.replace(str(reports) + "/", "reports/"))
    print(f"  ({time.monotonic() - started:.1f} s, exit {done.returncode})")
    return done.returncode == 0


def main() -> int:
    demo_dir.mkdir(parents=True, exist_ok=True)
    vars_file = demo_dir / "vars.yml"
    vars_file.write_text(yaml.safe_dump({
        "pgauth_target": target, "pgauth_stores": meta["stores"], "pgauth_logs": meta["logs"],
        "pgauth_report_dir": str(reports)}, sort_keys=False))
    banner(f"the outage ({meta['scenario']}): {meta['description']}")
    app_login()
    banner(f"1. diagnose (read-only); vars: {vars_file}")
    runbook("diagnose", vars_file)
    banner("2. rotate: single_user across Secrets Manager, Vault, the config file and the "
           "DATABASE_URL")
    rotated = runbook("rotate", vars_file)
    banner("3. verify")
    verified = runbook("verify", vars_file)
    banner("the app logs in again")
    app_login()
    banner(f"reports: {reports}/localhost/{{diagnose,rotate,verify}}.{{json,md}}")
    return 0 if rotated and verified else 1


if __name__ == "__main__":
    sys.exit(main())
