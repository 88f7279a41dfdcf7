"""discover's time per 100 candidate values: Secrets Manager secrets and .env files.

    eval "$(tests/lab/labctl env)"; .venv/bin/python bench/discover.py [--sizes 0,100,500]

For each size N, N candidate values on the lab: N/2 Secrets Manager secrets (RDS-style JSON;
one in ten a copy of the role's password, the rest other roles') under one name prefix and
N/2 dotenv files with a DATABASE_URL (the same mix), then one run of the discover playbook
over both scopes (the verifier method: no logins).  Prints wall and CPU of the run and the
marginal wall per 100 values against size 0 (the playbook's fixed cost); writes
bench/results/latest.json.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import psycopg2
import yaml
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import playbook_env, save, timed  # noqa: E402


def populate(size: int, role: str, password: str, work: Path, tag: str) -> list[str]:
    env = os.environ
    host, port = env["PGAUTH_LAB_PGHOST"], int(env["PGAUTH_LAB_PGPORT"])
    sm = boto3.client("secretsmanager")
    names = []
    for index in range(size // 2):
        copy = index % 10 == 0
        user = role if copy else f"other_{index}"
        value = password if copy else secrets.token_urlsafe(18)
        name = f"bench-discover-{tag}/{index:04d}"
        sm.create_secret(Name=name, SecretString=json.dumps({
            "username": user, "password": value, "host": host, "port": port,
            "dbname": "postgres"}))
        names.append(name)
    for index in range(size - size // 2):
        copy = index % 10 == 0
        user = role if copy else f"other_{index}"
        value = password if copy else secrets.token_urlsafe(18)
        folder = work / f"app{index:04d}"
        folder.mkdir()
        (folder / ".env").write_text(
            f"DATABASE_URL=postgresql://{user}:{value}@{host}:{port}/postgres\n")
    return names


def run(size: int, conn) -> dict:
    env = os.environ
    tag = secrets.token_hex(3)
    role, password = f"bench_disc_{tag}", "bench-" + secrets.token_urlsafe(18)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role),
            sql.Literal(encrypt_password(password, role, conn, "scram-sha-256"))))
    work = Path(tempfile.mkdtemp(prefix="pgauth-bench-discover-"))
    (work / "srv").mkdir()
    names = populate(size, role, password, work / "srv", tag)
    variables = {
        "pgauth_target": {"role": role, "host": env["PGAUTH_LAB_PGHOST"],
                          "port": int(env["PGAUTH_LAB_PGPORT"]), "dbname": "postgres",
                          "sslmode": "verify-full",
                          "sslrootcert": env["PGAUTH_LAB_SSLROOTCERT"]},
        "pgauth_discover_scopes": [
            {"type": "aws_secretsmanager", "name_prefixes": [f"bench-discover-{tag}/"],
             "max_candidates": 10000, "timeout": 600},
            {"type": "file", "globs": [str(work / "srv" / "*" / ".env")],
             "max_candidates": 10000, "timeout": 600}],
        "pgauth_report_dir": str(work / "reports")}
    vars_file = work / "vars.yml"
    vars_file.write_text(yaml.safe_dump(variables))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "credops.pgauth.discover",
               "-e", f"@{vars_file}"]
    wall, cpu = timed(command, playbook_env())
    report = json.loads((work / "reports" / "localhost" / "discover.json").read_text())
    sm = boto3.client("secretsmanager")
    for name in names:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    subprocess.run(["rm", "-rf", str(work)], check=False)
    found = sum(1 for item in report["copies"] if item["status"] == "current")
    return {"size": size, "wall": round(wall, 2), "cpu": round(cpu, 2), "current": found,
            "counts": report["counts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,100,500")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    env = os.environ
    conn = psycopg2.connect(host=env["PGAUTH_LAB_PGSOCKET"], port=env["PGAUTH_LAB_PGPORT"],
                            user="postgres", dbname="postgres")
    conn.autocommit = True
    rows = [run(size, conn) for size in sizes]
    conn.close()
    base = next((row["wall"] for row in rows if row["size"] == 0), 0.0)
    print("| values | wall | CPU | current found | wall per 100 values (marginal) |")
    print("|---|---|---|---|---|")
    for row in rows:
        per100 = (row["wall"] - base) / row["size"] * 100 if row["size"] else None
        row["per_100"] = round(per100, 2) if per100 is not None else None
        print(f"| {row['size']} | {row['wall']} s | {row['cpu']} s | {row['current']} | "
              f"{'' if per100 is None else f'{per100:.2f} s'} |")
    save("discover", {"rows": rows})


if __name__ == "__main__":
    main()
