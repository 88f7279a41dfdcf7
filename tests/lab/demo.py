"""`make demo`: show the lab's password_mismatch outage the way an app sees it.

Reads app_user's credential from Secrets Manager (as the app would), connects
with psql, and prints the real error, then asks credops.pgauth.pg_login_probe
what kind of failure it is.  The password itself is never printed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

env = os.environ
meta = json.loads(Path(env["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
target = meta["target"]
aws_store = next(store for store in meta["stores"] if store["type"] == "aws_secretsmanager")
secret = json.loads(boto3.client("secretsmanager").get_secret_value(
    SecretId=aws_store["secret_id"])["SecretString"])

print(f"== scenario {meta['scenario']}: {meta['description']}")
print(f"== the app reads {aws_store['secret_id']} from Secrets Manager and connects as "
      f"{secret['username']} to {secret['host']}:{secret['port']}/{secret['dbname']}")
login_env = dict(env, PGHOST=str(secret["host"]), PGPORT=str(secret["port"]),
                 PGUSER=secret["username"], PGDATABASE=secret["dbname"],
                 PGPASSWORD=secret["password"], PGSSLMODE="verify-full",
                 PGSSLROOTCERT=target["sslrootcert"], PGCONNECT_TIMEOUT="5")
if shutil.which("psql"):
    print("$ psql -c 'SELECT 1'")
    done = subprocess.run(["psql", "-X", "-c", "SELECT 1"], env=login_env,
                          capture_output=True, text=True, check=False)
    print((done.stdout + done.stderr).rstrip())

print("$ ansible localhost -m credops.pgauth.pg_login_probe   # PG* env as above")
repo = Path(__file__).resolve().parents[2]
ansible = repo / ".venv" / "bin" / "ansible"
done = subprocess.run(
    [str(ansible), "localhost", "-m", "credops.pgauth.pg_login_probe",
     "-e", "ansible_python_interpreter=" + sys.executable],
    env=dict(login_env, ANSIBLE_COLLECTIONS_PATH=str(repo / ".build"),
             ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false"),
    capture_output=True, text=True, check=False)
output = done.stdout + done.stderr
if secret["password"] in output:
    sys.exit("demo: the password leaked into module output")
print(output.rstrip())
print("== next: credops.pgauth.diagnose names the cause, rotate fixes it, verify proves it "
      "(coming in the next issues)")
