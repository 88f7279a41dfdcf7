"""rotate, one target, 3 stores: wall and CPU time of one rotation.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/rotate_wall.py [--runs 5]

The lab's `healthy` scenario with its first three stores (Secrets Manager JSON as the
primary, Vault KV v2 JSON, a YAML config).  Each run rotates `app_user` with
`ansible-playbook credops.pgauth.rotate` (single_user, then alternating_users), and the
manual order from bench/naive_rotation.yml for comparison (ALTER ROLE, then each store as its
own task: no staging, no test login, no report).  Prints the medians and writes
bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import labctl, playbook_env, save, timed  # noqa: E402

STORES = 3


def one_run(how: str, work: Path, env: dict) -> tuple[float, float]:
    labctl("scenario", "healthy")
    meta = json.loads(Path(os.environ["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
    variables = {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"][:STORES],
                 "pgauth_report_dir": str(work / "reports")}
    if how == "naive":
        variables["naive_password"] = "bench-" + secrets.token_urlsafe(24)
        playbook = str(REPO / "bench" / "naive_rotation.yml")
    else:
        variables["pgauth_strategy"] = how
        playbook = "credops.pgauth.rotate"
    vars_file = work / "rotate-vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    try:
        return timed([str(REPO / ".venv" / "bin" / "ansible-playbook"), playbook, "-e",
                      f"@{vars_file}"], env)
    finally:
        vars_file.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = REPO / ".lab" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    env = playbook_env()
    rows = {}
    for how in ("single_user", "alternating_users", "naive"):
        samples = [one_run(how, work, env) for _run in range(args.runs)]
        rows[how] = {"wall_s": round(statistics.median(s[0] for s in samples), 2),
                     "cpu_s": round(statistics.median(s[1] for s in samples), 2),
                     "wall_all_s": [round(s[0], 2) for s in samples], "runs": args.runs}
    print(f"{'rotation (3 stores)':<20} {'wall (median)':>14} {'cpu (median)':>13}  all runs")
    for how, row in rows.items():
        print(f"{how:<20} {row['wall_s']:>12} s {row['cpu_s']:>11} s  {row['wall_all_s']}")
    save("rotate_wall", {"stores": STORES, "results": rows})


if __name__ == "__main__":
    main()
