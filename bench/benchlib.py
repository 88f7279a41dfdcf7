"""What the benchmarks share: the machine they ran on, the lab, timing a command, and
bench/results/latest.json (one key per benchmark, rewritten by each run)."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "latest.json"


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def labctl(*args: str) -> None:
    subprocess.run([str(REPO / "tests" / "lab" / "labctl"), *args], check=True,
                   capture_output=True)


def playbook_env(ours: bool = True) -> dict:
    """The environment an ansible-playbook run gets: the lab's admin as PGUSER/PGPASSWORD,
    no localhost warnings, and (ours) this collection from .build, or from PGAUTH_BUILD (an
    older commit's copy, to compare with it)."""
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               PGUSER=os.environ["PGAUTH_LAB_ADMIN_USER"],
               PGPASSWORD=os.environ["PGAUTH_LAB_ADMIN_PASSWORD"])
    if ours:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.environ.get("PGAUTH_BUILD") or str(REPO / ".build")
    return env


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of command and its children; exits when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{command[1]} failed:\n{done.stdout[-2500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def save(key: str, payload: dict) -> None:
    """Adds this benchmark's numbers, with the machine and the time, to latest.json."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[key] = {"machine": machine(),
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    **payload}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")
