"""diagnose over a fleet: 1, 10 and 50 targets (or --sizes 1,10,50,200), one inventory host
each, forks 10.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/fleet.py [--sizes 1,10,50,200]
        [--extras on|off]

Each target is its own login role on the lab server (fleet_001, ...) with a password held
by a Secrets Manager secret and a YAML config file, plus the server log: two stores, a login
per store, the role's facts and the log scan per host.  Prints wall time, CPU time and peak
RSS of the run (ansible-playbook and its children) per size, the CPU per target and the load
average the machine had (a shared machine: the CPU time, user+sys of the whole process tree,
moves little with the load; the wall time does); writes bench/results/latest.json.  The roles,
secrets and files are made before the clock starts (200 take a few seconds).  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psycopg2
import yaml
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import labctl, playbook_env, save  # noqa: E402


def make_targets(count: int, work: Path) -> dict:
    """Roles, secrets and config files for count targets; the inventory's host vars."""
    env = os.environ
    conn = psycopg2.connect(host=env["PGAUTH_LAB_PGSOCKET"], port=env["PGAUTH_LAB_PGPORT"],
                            user="postgres", dbname="postgres")
    conn.autocommit = True
    sm = boto3.client("secretsmanager")
    hosts = {}
    for index in range(1, count + 1):
        role = f"fleet_{index:03d}"
        password = "fleet-" + secrets.token_urlsafe(18)
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role),
                sql.Literal(encrypt_password(password, role, conn, "scram-sha-256"))))
        cred = {"username": role, "password": password, "host": env["PGAUTH_LAB_PGHOST"],
                "port": int(env["PGAUTH_LAB_PGPORT"]), "dbname": "postgres"}
        sm.create_secret(Name=f"fleet/{role}", SecretString=json.dumps(cred))
        config = work / f"{role}.yml"
        config.write_text(yaml.safe_dump({"database": cred}))
        hosts[f"db-{index:03d}"] = {
            "pgauth_target": {"host": cred["host"], "port": cred["port"], "dbname": "postgres",
                              "role": role, "sslmode": "verify-full",
                              "sslrootcert": env["PGAUTH_LAB_SSLROOTCERT"]},
            "pgauth_stores": [
                {"name": "aws", "type": "aws_secretsmanager", "secret_id": f"fleet/{role}"},
                {"name": "config", "type": "file", "path": str(config), "format": "yaml",
                 "key": "database", "value_format": "json"}]}
    conn.close()
    return hosts


def run(size: int, forks: int, work: Path, extras: bool) -> dict:
    labctl("scenario", "healthy")  # a clean lab: no roles or secrets of an earlier size
    hosts = make_targets(size, work)
    inventory = work / f"fleet-{size}.yml"
    inventory.write_text(yaml.safe_dump({"pgauth_targets": {"hosts": hosts}}))
    shared = work / "fleet-vars.json"
    shared.write_text(json.dumps({
        "pgauth_logs": {"files": [os.environ["PGAUTH_LAB_PGLOG"]], "since": "15m"},
        "pgauth_report_dir": str(work / "reports"),
        # --extras: the metrics file per host and the fleet report (issue 21); off: neither
        "pgauth_fleet_report": extras,
        **({"pgauth_metrics_file": str(work / "metrics") + "/"} if extras else {})}))
    env = playbook_env()
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"),
                           "credops.pgauth.diagnose", "-i", str(inventory), "-e", f"@{shared}",
                           "--forks", str(forks)], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"diagnose over {size} targets failed:\n{done.stdout[-2500:]}")
    healthy = sum(json.loads((work / "reports" / host / "diagnose.json").read_text())["verdict"]
                  == "healthy" for host in hosts)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"targets": size, "forks": forks, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "cpu_per_target_s": round(cpu / size, 2),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1), "healthy_reports": healthy,
            "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--extras", choices=["on", "off"], default="on",
                        help="metrics files and the fleet report (default on, as the roles)")
    args = parser.parse_args()
    work = REPO / ".lab" / "bench" / "fleet"
    work.mkdir(parents=True, exist_ok=True)
    rows = [run(int(size), args.forks, work, args.extras == "on")
            for size in args.sizes.split(",")]
    print(f"{'targets':>8} {'wall (s)':>9} {'cpu (s)':>8} {'cpu/target':>11} "
          f"{'peak RSS (MB)':>14} {'healthy':>8} {'load 1m':>12}")
    for row in rows:
        print(f"{row['targets']:>8} {row['wall_s']:>9} {row['cpu_s']:>8} "
              f"{row['cpu_per_target_s']:>11} {row['peak_rss_mb']:>14} "
              f"{row['healthy_reports']:>8} {row['load_before']:>5} -> {row['load_after']:<5}")
    save("fleet", {"forks": args.forks, "extras": args.extras, "results": rows})
    labctl("reset")


if __name__ == "__main__":
    main()
