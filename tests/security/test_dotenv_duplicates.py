"""Security review item 11 (dotenv part): a variable defined twice in a .env.  Bash and
python-dotenv use the last definition; reading and writing the first would check and rotate
a value the application never reads.  The file is broken, so it is refused everywhere: the
real modules run against such a file (and diagnose, with the lab's server)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from labfixtures import BUILD

BIN = Path(sys.executable).parent
FIRST, LAST = "First-Passw0rd-81", "Last-Passw0rd-82"
DOTENV = ("# app settings\n"
          "APP_NAME=demo\n"
          f"DATABASE_URL=postgresql://app_user:{FIRST}@127.0.0.1:5432/appdb\n"
          "PGAPPNAME=demo\n"
          "\n"
          "# added later by hand, below the original\n"
          f"export DATABASE_URL='postgresql://app_user:{LAST}@127.0.0.1:5432/appdb'\n")
REASON = ("DATABASE_URL is defined 2 times (lines 3 and 7); bash and python-dotenv use the last "
          "one: remove the duplicates")


def ansible_env() -> dict:
    # the lab's Vault token ("root") would be masked in every message: file stores need none
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("VAULT_", "AWS_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(BUILD), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return env


def run_module(module: str, args: dict, cwd: Path) -> tuple[dict, str]:
    """One ad-hoc run at -vvv (module arguments and results all printed): the result, and
    everything printed."""
    command = [str(BIN / "ansible"), "localhost", "-c", "local", "-vvv", "-e",
               f"ansible_python_interpreter={sys.executable}", "-m", f"credops.pgauth.{module}",
               "-a", json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, env=ansible_env(), cwd=cwd,
                          check=False)
    output = done.stdout + done.stderr
    _head, sep, body = done.stdout.rpartition("localhost | ")
    assert sep, output
    status, _sep, result = body.partition(" => ")
    return {**json.loads(result), "failed": status.startswith(("FAILED", "UNREACHABLE"))}, output


def store(path: Path) -> dict:
    return {"name": "app-env", "type": "file", "path": str(path), "format": "dotenv",
            "key": "DATABASE_URL"}


def state(path: Path) -> tuple[str, int, list[str]]:
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
            sorted(os.listdir(path.parent)))


def test_info_names_the_store_and_the_lines_never_the_values(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text(DOTENV)

    result, output = run_module("secret_value_info", {"store": store(env_file)}, tmp_path)

    assert result["failed"], f"a duplicated DATABASE_URL was read: {output}"
    assert result["msg"].startswith("store 'app-env'")
    assert REASON in result["msg"]
    assert FIRST not in output and LAST not in output


def test_write_refuses_and_leaves_the_file_byte_identical(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text(DOTENV)
    before = state(env_file)

    for args in ({"value": "N3w-Passw0rd-83"}, {"generate": {"length": 24}}):
        result, output = run_module("secret_value", {"store": {**store(env_file), "backup": True},
                                                     **args}, tmp_path)
        assert result["failed"], f"the file was written: {output}"
        assert REASON in result["msg"]
        assert state(env_file) == before, "the file, its mtime or its directory changed"
        assert FIRST not in output and LAST not in output and "N3w-Passw0rd-83" not in output


def test_diagnose_reports_the_store_unreadable_with_the_reason(tmp_path, lab, temp_role):
    """pg_auth_facts then the findings filter, as the diagnose runbook runs them, on the
    lab's server: the store is a store_unreadable finding with the reason."""
    role = temp_role("pgauth_sec_dotenv_dup", password="Unrelated-Passw0rd-84")
    env_file = tmp_path / "app.env"
    env_file.write_text(DOTENV)
    findings_file = tmp_path / "findings.json"
    playbook = tmp_path / "diagnose.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Gather", "register": "facts", "credops.pgauth.pg_auth_facts": {
                "login_host": lab["PGAUTH_LAB_PGHOST"], "login_port": int(lab["PGAUTH_LAB_PGPORT"]),
                "login_user": lab["PGAUTH_LAB_ADMIN_USER"],
                "login_password": lab["PGAUTH_LAB_ADMIN_PASSWORD"],
                "ssl_mode": "verify-full", "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"],
                "role": role, "dbname": "postgres", "stores": [store(env_file)]}},
            {"name": "Findings", "ansible.builtin.copy": {
                "dest": str(findings_file),
                "content": "{{ {'target': {'role': '" + role + "', 'auth': 'password'}}"
                           " | combine(facts) | credops.pgauth.findings | to_json }}"}},
        ]}]))
    done = subprocess.run([str(BIN / "ansible-playbook"), "-c", "local", "-i", "localhost,",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
                          capture_output=True, text=True, env=ansible_env(), cwd=tmp_path,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    findings = json.loads(findings_file.read_text())
    unreadable = [found for found in findings if found["id"] == "store_unreadable"]
    assert unreadable, f"no store_unreadable finding: {[found['id'] for found in findings]}"
    assert unreadable[0]["evidence"]["store"] == "app-env"
    assert REASON in unreadable[0]["evidence"]["error"]
    assert FIRST not in output + findings_file.read_text()
    assert LAST not in output + findings_file.read_text()
