"""discover's vars.yml: a store name found in a scanned store is never templated when the
operator runs a playbook with -e @vars.yml (every string is written !unsafe)."""
from __future__ import annotations

import os
import subprocess
import sys

import yaml

from ansible_collections.credops.pgauth.plugins.action.report import render_vars_file


def test_vars_file_strings_are_not_templated_by_ansible(tmp_path):
    marker = tmp_path / "pwned"
    hostile = "/srv/x/{{ lookup('pipe', 'touch " + str(marker) + "') }}.env"
    text = render_vars_file({
        "pgauth_target": {"role": "app_user", "host": "db", "port": 5432},
        "pgauth_stores": [{"name": f"file:{hostile}[DB_PASSWORD]", "type": "file",
                           "path": hostile, "format": "dotenv",
                           "keys": {"password": "DB_PASSWORD"}}],
        "pgauth_consumers": []})
    # still plain YAML data for anything else that reads it
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!unsafe", yaml.SafeLoader.construct_yaml_str)
    loaded = yaml.load(text, Loader=loader)
    assert loaded["pgauth_target"]["port"] == 5432
    assert loaded["pgauth_stores"][0]["keys"] == {"password": "DB_PASSWORD"}
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(text)
    playbook = tmp_path / "pb.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug: {msg: \"P={{ pgauth_stores[0].path }}\"}\n"
        "    - ansible.builtin.debug: {msg: \"N={{ pgauth_stores[0] | to_json }}\"}\n")
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([binary, "-i", "localhost,", str(playbook), "-e", f"@{vars_file}"],
                         capture_output=True, text=True, check=False, timeout=120,
                         env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert not marker.exists()
    assert "lookup('pipe', 'touch" in run.stdout  # shown as the literal name
