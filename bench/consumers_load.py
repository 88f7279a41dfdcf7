"""Failed logins through PgBouncer during rotations: what 8 clients see, 3 of them through
the pooler, while rotate runs with the pgbouncer consumer.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/consumers_load.py [--runs 3]

The lab's `pooler_auth_stale` scenario (the stores name the pooler's port), the pooler
brought in line by hand (the database's verifier in its auth_file, RELOAD), then for each
strategy `--runs` rotations under one load: 3 workers connect through PgBouncer, 5 straight
to PostgreSQL, each re-reading its store before every login.  Per run: failed logins by
route from the rotation's start until every worker logged in again, the longest failure
window, and the rotation's wall time.  Writes bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests" / "lab"),
                os.environ.get("PGAUTH_BUILD") or str(REPO / ".build")]

from benchlib import labctl, playbook_env, save  # noqa: E402
from consumers_confirm import rotate  # noqa: E402
from lab.loadclient import ClientLoad  # noqa: E402

POOLED, DIRECT = 3, 5


def store_options() -> dict:
    env = os.environ
    return {"region": env["AWS_REGION"], "endpoint_url": env["AWS_ENDPOINT_URL"],
            "access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"],
            "url": env["VAULT_ADDR"], "token": env["VAULT_TOKEN"], "validate_certs": True}


def pooler_in_line(meta: dict) -> None:
    from lab.pgbouncer import PgBouncer
    from lab.postgres import Postgres
    from lab.scenarios_pooler import APP_ROLE, database_verifier
    from lab.settings import Lab
    settings = Lab.from_env()
    pg = Postgres(settings)
    PgBouncer(settings, pg).set_user(APP_ROLE, database_verifier(type("Seed", (), {"pg": pg}),
                                                                 APP_ROLE))
    admin = meta["consumers"][0]["admin"]
    conn = psycopg2.connect(host=os.environ["PGAUTH_LAB_PGHOST"],
                            port=int(os.environ["PGAUTH_LAB_PGBOUNCER_PORT"]),
                            user=admin["user"], password=admin["password"], dbname="pgbouncer")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("RELOAD")
    conn.close()


def load_for(meta: dict) -> ClientLoad:
    host = os.environ["PGAUTH_LAB_PGHOST"]
    pooler = {"name": "pgbouncer", "host": host,
              "port": int(os.environ["PGAUTH_LAB_PGBOUNCER_PORT"])}
    direct = {"name": "direct", "host": host, "port": int(os.environ["PGAUTH_LAB_PGPORT"])}
    target = meta["target"]
    return ClientLoad(meta["stores"], store_options(), {
        "host": target["host"], "port": target["port"], "dbname": target["dbname"],
        "sslmode": "verify-full", "sslrootcert": target["sslrootcert"]},
        workers=POOLED + DIRECT, pause=0.05, routes=[pooler] * POOLED + [direct] * DIRECT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(os.environ.get("PGAUTH_LAB_DIR", REPO / ".lab")) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    env = playbook_env()
    rows = {}
    for strategy in ("single_user", "alternating_users"):
        labctl("scenario", "pooler_auth_stale")
        meta = json.loads(Path(os.environ["PGAUTH_LAB_SCENARIO_FILE"]).read_text())
        pooler_in_line(meta)
        runs = []
        with load_for(meta) as load:
            for _run in range(args.runs):
                load.wait_until_every_worker_logged_in(30)
                load.mark()
                wall, report = rotate(meta, work, env, strategy)
                assert report["outcome"] == "rotated", report["outcome"]
                back = load.wait_until_every_worker_logged_in(30)
                routes = load.by_route()
                runs.append({"wall_s": round(wall, 2), "every_worker_back": back,
                             **{f"failed_{name}": row["failed_since_mark"]
                                for name, row in routes.items()}})
        stats = load.report()
        rows[strategy] = {
            "failed_pgbouncer_per_run": [run["failed_pgbouncer"] for run in runs],
            "failed_direct_per_run": [run["failed_direct"] for run in runs],
            "every_worker_back": all(run["every_worker_back"] for run in runs),
            "longest_window_ms": stats["longest_window_ms"],
            "rotation_wall_s": round(statistics.median(run["wall_s"] for run in runs), 2),
            "logins_ok": stats["logins_ok"], "runs": args.runs}
    print(f"{'strategy':<18} {'failed via pgbouncer':>21} {'failed direct':>14} "
          f"{'longest window':>15} {'rotation wall':>14}")
    for strategy, row in rows.items():
        print(f"{strategy:<18} {row['failed_pgbouncer_per_run']!s:>21} "
              f"{row['failed_direct_per_run']!s:>14} {row['longest_window_ms']:>12} ms "
              f"{row['rotation_wall_s']:>12} s")
    save("consumers_load", {"consumer": "pgbouncer", "workers": {"pgbouncer": POOLED,
                                                                 "direct": DIRECT},
                            "results": rows})


if __name__ == "__main__":
    main()
