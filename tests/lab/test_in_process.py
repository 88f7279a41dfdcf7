"""pg_auth_facts inside the task's worker (plugin_utils/in_process.py) where a module process
would be the same Python, the module anywhere else: the same diagnosis either way, masked
the same way, and the module path taken when the interpreter differs."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from labfixtures import scenario
from runbooks import assert_no_leak, lab_secrets, run_playbook, vars_for

ANSIBALLZ = "AnsiballZ_pg_auth_facts.py"


def _diagnose(lab: dict, tmp_path: Path, meta: dict, name: str, **extra) -> tuple[str, dict]:
    variables = {**vars_for(meta, lab, tmp_path / name), **extra}
    done = run_playbook(lab, tmp_path, variables, "-vvv")
    assert done.returncode == 0, done.stdout[-3000:]
    report = json.loads((tmp_path / name / "localhost" / "diagnose.json").read_text())
    return done.stdout + done.stderr, report


def _essence(report: dict) -> dict:
    """What must not depend on where the facts were gathered (timings and dates do)."""
    facts = report["facts"]
    return {"verdict": report["verdict"],
            "findings": [(item["id"], item["severity"], sorted(item["evidence"]))
                         for item in report["findings"]],
            "probes": sorted((probe["store"], probe["ok"]) for probe in facts["probes"]),
            "stores": sorted(store["store"] for store in facts["stores"])}


def test_facts_run_in_the_worker_and_as_a_module_alike(lab, tmp_path):
    # another path to the same interpreter: the module process is then not this process by
    # the rule (the realpath differs), so the module runs as a module
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    with scenario("password_mismatch") as meta:
        here, in_worker = _diagnose(lab, tmp_path, meta, "worker")
        there, as_module = _diagnose(lab, tmp_path, meta, "module", pgauth_python=str(wrapper))
        secrets = lab_secrets(lab)
    assert ANSIBALLZ not in here, "the facts task started a module process"
    assert ANSIBALLZ in there, "with another interpreter the module must run as a module"
    assert _essence(in_worker) == _essence(as_module)
    assert in_worker["verdict"] == "broken"
    assert_no_leak({"worker -vvv": here, "module -vvv": there}, secrets)


def test_bad_arguments_fail_the_same_in_the_worker(lab, tmp_path):
    """The module's own argument spec, env fallbacks included, checks the task's arguments."""
    with scenario("healthy") as meta:
        variables = {**vars_for(meta, lab, tmp_path / "r"),
                     "pgauth_target": {**meta["target"], "auth": "kerberos"}}
        done = run_playbook(lab, tmp_path, variables, env={"PGCONNECT_TIMEOUT": "3"})
    assert done.returncode != 0
    assert "auth" in done.stdout and "kerberos" in done.stdout, done.stdout[-2000:]
    assert ANSIBALLZ not in done.stdout
    assert os.environ.get("PGAUTH_LAB_ADMIN_PASSWORD", "\0") not in done.stdout
