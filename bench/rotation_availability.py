"""Rotation availability: what 8 clients see while a credential is rotated on the lab.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/rotation_availability.py [--runs 3]

For each way of rotating, the lab is put into the `healthy` scenario (4 stores), 8 workers
loop read store -> connect -> SELECT 1 -> close (re-reading on failure, spread over the
stores), and the rotation runs:

- alternating_users and single_user: `ansible-playbook credops.pgauth.rotate`;
- naive: the manual runbook order as separate tasks, ALTER ROLE first, then each store
  (bench/naive_rotation.yml, built from this collection's own modules).

Prints failed logins, the longest failure window (a worker's first failed attempt to its next
working login), the longest gap (its last working login to the next), and the rotation's
wall time; writes them to bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests" / "lab"), str(REPO / ".build")]

from benchlib import labctl, playbook_env, save  # noqa: E402
from lab.loadclient import ClientLoad  # noqa: E402

BIN = REPO / ".venv" / "bin"


def store_options() -> dict:
    env = os.environ
    return {"region": env["AWS_REGION"], "endpoint_url": env["AWS_ENDPOINT_URL"],
            "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"],
            "url": env["VAULT_ADDR"], "token": env["VAULT_TOKEN"], "validate_certs": True}


def playbook(name: str, variables: dict, workdir: Path) -> float:
    vars_file = workdir / "vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    env = playbook_env()
    started = time.monotonic()
    done = subprocess.run([str(BIN / "ansible-playbook"), name, "-e", f"@{vars_file}"],
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    vars_file.unlink()
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout[-2000:]}")
    return elapsed


def one_run(how: str, workdir: Path) -> dict:
    labctl("scenario", "healthy")
    meta = json.loads(Path(os.environ["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
    target = meta["target"]
    variables = {"pgauth_target": target, "pgauth_stores": meta["stores"],
                 "pgauth_report_dir": str(workdir / "reports")}
    load = ClientLoad(meta["stores"], store_options(), {
        "host": target["host"], "port": target["port"], "dbname": target["dbname"],
        "sslmode": "verify-full", "sslrootcert": target["sslrootcert"]}, workers=8)
    with load:
        if how == "naive":
            variables["naive_password"] = "bench-" + secrets.token_urlsafe(24)
            seconds = playbook(str(REPO / "bench" / "naive_rotation.yml"), variables, workdir)
        else:
            variables["pgauth_strategy"] = how
            seconds = playbook("credops.pgauth.rotate", variables, workdir)
    return {**load.report(), "rotation_seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = REPO / ".lab" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for how in ("alternating_users", "single_user", "naive"):
        runs = [one_run(how, workdir) for _run in range(args.runs)]
        rows[how] = {
            "runs": args.runs,
            "failed_logins": [run["failed_logins"] for run in runs],
            "longest_gap_ms": [run["longest_gap_ms"] for run in runs],
            "longest_window_ms": [run["longest_window_ms"] for run in runs],
            "logins_ok": [run["logins_ok"] for run in runs],
            "rotation_seconds": [run["rotation_seconds"] for run in runs],
        }
    print(f"{'rotation':<18} {'failed logins':<18} {'longest window (ms)':<28} "
          f"{'longest gap (ms)':<28} {'wall (s)'}")
    for how, row in rows.items():
        print(f"{how:<18} {row['failed_logins']!s:<18} {row['longest_window_ms']!s:<28} "
              f"{row['longest_gap_ms']!s:<28} {row['rotation_seconds']}")
    save("rotation_availability", {"workers": 8, "results": rows})


if __name__ == "__main__":
    main()
