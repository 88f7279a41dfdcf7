"""diagnose, one target, against the same checks composed from the anchor collections.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/diagnose_vs_anchor.py [--runs 5]

The lab in the `healthy` scenario (4 stores, the server log, the RDS instance).  Ours:
`ansible-playbook credops.pgauth.diagnose`.  The anchor: bench/anchor_diagnose.yml (role
facts, each store read, a login per store, the RDS instance, a log grep) with
community.postgresql, amazon.aws and community.hashi_vault from the `ansible` bundle in
.bench-venv (`make bench` creates it).  Prints wall and CPU seconds (the playbook process and
its children) and the ratio; writes bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import labctl, playbook_env, save, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--anchor-venv", default=str(REPO / ".bench-venv"))
    args = parser.parse_args()
    labctl("scenario", "healthy")
    meta = json.loads(Path(os.environ["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
    work = REPO / ".lab" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    vars_file = work / "diagnose-vars.json"
    vars_file.write_text(json.dumps({
        "pgauth_target": meta["target"], "pgauth_stores": meta["stores"],
        "pgauth_logs": {"files": meta["logs"]["files"], "since": "1h"},
        "pgauth_report_dir": str(work / "reports")}))
    env = playbook_env(ours=False)
    ours_cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "credops.pgauth.diagnose",
                "-e", f"@{vars_file}"]
    anchor_cmd = [str(Path(args.anchor_venv) / "bin" / "ansible-playbook"),
                  str(REPO / "bench" / "anchor_diagnose.yml"), "-e", f"@{vars_file}"]
    ours_env = playbook_env()
    rows = {}
    for label, command, run_env in (("credops.pgauth.diagnose", ours_cmd, ours_env),
                                    ("anchor composition", anchor_cmd, env)):
        if not Path(command[0]).exists():
            print(f"{label}: {command[0]} missing (make bench creates .bench-venv)")
            continue
        samples = [timed(command, run_env) for _run in range(args.runs)]
        rows[label] = {"wall_s": round(statistics.median(s[0] for s in samples), 2),
                       "cpu_s": round(statistics.median(s[1] for s in samples), 2),
                       "runs": args.runs}
    for label, row in rows.items():
        print(f"{label:<26} wall {row['wall_s']:>6} s   cpu {row['cpu_s']:>6} s  "
              f"(median of {row['runs']})")
    if len(rows) == 2:
        ours, anchor = rows["credops.pgauth.diagnose"], rows["anchor composition"]
        ratio = round(ours["wall_s"] / anchor["wall_s"], 2)
        print(f"ratio (ours / anchor, wall): {ratio}")
        rows["ratio_wall"] = ratio
    save("diagnose_one_target", {"stores": len(meta["stores"]), "results": rows})


if __name__ == "__main__":
    main()
