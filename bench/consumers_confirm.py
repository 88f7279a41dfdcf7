"""rotate with the lab's PgBouncer as a consumer: the time from promote to the last consumer
confirmed, and the rotation's wall time.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/consumers_confirm.py [--runs 5]

The lab's `pooler_auth_stale` scenario (the app's stores point at PgBouncer), brought in line
by one rotate run, then `--runs` rotations per strategy (single_user, alternating_users)
with the pgbouncer consumer.  From each rotate.json: `consumers_seconds` (first refresh,
right after promote, to the last confirmation: write the auth_file, RELOAD and RECONNECT, a
login through the pooler on a new server connection) and the refresh and confirm steps.
Prints the medians and writes bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import labctl, playbook_env, save  # noqa: E402


def rotate(meta: dict, work: Path, env: dict, strategy: str) -> tuple[float, dict]:
    variables = {"pgauth_target": meta["target"], "pgauth_stores": meta["stores"],
                 "pgauth_consumers": meta["consumers"], "pgauth_strategy": strategy,
                 "pgauth_report_dir": str(work / "reports"),
                 "pgauth_admin": {"user": os.environ["PGAUTH_LAB_ADMIN_USER"],
                                  "password": os.environ["PGAUTH_LAB_ADMIN_PASSWORD"]}}
    vars_file = work / "consumers-vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    started = time.monotonic()
    try:
        done = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"),
                               "credops.pgauth.rotate", "-e", f"@{vars_file}"], env=env,
                              capture_output=True, text=True, check=False)
    finally:
        vars_file.unlink()
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"rotate failed:\n{done.stdout[-2000:]}")
    return wall, json.loads((work / "reports" / "localhost" / "rotate.json").read_text())


def step_seconds(report: dict, prefix: str) -> float:
    return sum(step["seconds"] for step in report["steps"] if step["step"].startswith(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(os.environ.get("PGAUTH_LAB_DIR", REPO / ".lab")) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    env = playbook_env()
    rows = {}
    for strategy in ("single_user", "alternating_users"):
        labctl("scenario", "pooler_auth_stale")
        meta = json.loads(Path(os.environ["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
        rotate(meta, work, env, "single_user")  # the pooler in line (consumers_refreshed)
        samples = []
        for _run in range(args.runs):
            wall, report = rotate(meta, work, env, strategy)
            assert report["outcome"] == "rotated", report["outcome"]
            assert all(line["confirmed"] for line in report["consumers"]), report["consumers"]
            samples.append((wall, report["consumers_seconds"], step_seconds(report, "refresh:"),
                            step_seconds(report, "confirm:")))
        rows[strategy] = {
            "promote_to_confirmed_s": round(statistics.median(s[1] for s in samples), 3),
            "refresh_s": round(statistics.median(s[2] for s in samples), 3),
            "confirm_s": round(statistics.median(s[3] for s in samples), 3),
            "rotation_wall_s": round(statistics.median(s[0] for s in samples), 2),
            "promote_to_confirmed_all_s": [round(s[1], 3) for s in samples],
            "runs": args.runs}
    print(f"{'strategy':<18} {'promote->confirmed':>19} {'refresh':>8} {'confirm':>8} "
          f"{'rotation wall':>14}  all runs (promote->confirmed)")
    for strategy, row in rows.items():
        print(f"{strategy:<18} {row['promote_to_confirmed_s']:>17} s {row['refresh_s']:>6} s "
              f"{row['confirm_s']:>6} s {row['rotation_wall_s']:>12} s  "
              f"{row['promote_to_confirmed_all_s']}")
    save("consumers_confirm", {"consumer": "pgbouncer", "results": rows})


if __name__ == "__main__":
    main()
