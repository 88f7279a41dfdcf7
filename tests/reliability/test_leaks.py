"""Leak scan: every playbook at -vvvv with ANSIBLE_LOG_PATH set, then a grep of everything it
left - the output, the Ansible log, every report file, the PostgreSQL server log written
during the run (log_statement=all) and the IAM verifier's log - for every password the
lab held before or after the run and for any IAM token."""
from __future__ import annotations

from pathlib import Path

import pytest
from labfixtures import scenario
from runbooks import TOKEN_PARTS, lab_secrets, run_playbook, vars_for

# (scenario, [(playbook, extra vars)], needs the IAM emulation)
RUNS = {
    "diagnose-broken": ("password_mismatch", [("diagnose", {})], False),
    "diagnose-iam-token-stale": ("iam_token_stale", [("diagnose", {})], True),
    "rotate-single-user-then-verify": ("healthy", [("rotate", {}), ("verify", {})], False),
    "rotate-alternating-twice": ("healthy", [
        ("rotate", {"pgauth_strategy": "alternating_users"}),
        ("rotate", {"pgauth_strategy": "alternating_users"})], False),
    "rotate-iam-then-verify": ("healthy", [("rotate", {"pgauth_strategy": "iam"}),
                                           ("verify", {"pgauth_app_auth": "iam"})], True),
    "remediate": ("password_mismatch", [("remediate", {"pgauth_apply": True})], False),
    "verify-broken": ("stores_disagree", [("verify", {})], False),
}


def tail_from(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with path.open(errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


def leaks(texts: dict[str, str], secrets: set[str]) -> list[str]:
    """Where a secret or a token was found."""
    found = []
    for where, text in texts.items():
        found += [f"a secret in {where}" for secret in secrets if secret in text]
        if TOKEN_PARTS.search(text):
            found.append(f"an IAM token in {where}")
    return found


def run_and_collect(lab: dict, tmp_path: Path, scenario_name: str, playbooks: list,
                    expect_failure: bool = False) -> tuple[dict, set]:
    """Runs the playbooks at -vvvv on one scenario; returns every text they left, and every
    secret the lab held before or after."""
    server_log, iam_log = Path(lab["PGAUTH_LAB_PGLOG"]), Path(lab["PGAUTH_LAB_IAM_LOG"])
    ansible_log = tmp_path / "ansible.log"
    texts: dict[str, str] = {}
    with scenario(scenario_name) as meta:
        secrets = lab_secrets(lab)
        offsets = {path: path.stat().st_size if path.exists() else 0
                   for path in (server_log, iam_log)}
        for index, (playbook, extra) in enumerate(playbooks):
            variables = {**vars_for(meta, lab, tmp_path / "reports"), **extra}
            if playbook != "diagnose":
                variables.pop("pgauth_logs")
            done = run_playbook(lab, tmp_path, variables, "-vvvv", playbook=playbook,
                                env={"ANSIBLE_LOG_PATH": str(ansible_log)})
            if not expect_failure:
                assert done.returncode == 0, f"{playbook}: {done.stdout[-3000:]}"
            texts[f"{playbook} #{index} output"] = done.stdout + done.stderr
            secrets |= lab_secrets(lab)  # the new passwords, too
        texts["the server log"] = tail_from(server_log, offsets[server_log])
        texts["the IAM verifier log"] = tail_from(iam_log, offsets[iam_log])
    texts["ANSIBLE_LOG_PATH"] = ansible_log.read_text()
    for report in sorted((tmp_path / "reports").rglob("*")):
        if report.is_file():
            texts[f"report {report.relative_to(tmp_path)}"] = report.read_text()
    assert lab["PGAUTH_LAB_ADMIN_PASSWORD"] in secrets and texts["ANSIBLE_LOG_PATH"], \
        "nothing to scan: the test is broken"
    assert any(name.startswith("report ") for name in texts)
    return texts, secrets


@pytest.mark.parametrize("name", sorted(RUNS))
def test_nothing_secret_is_left_anywhere(lab, tmp_path, name):
    scenario_name, playbooks, needs_iam = RUNS[name]
    if needs_iam and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    texts, secrets = run_and_collect(lab, tmp_path, scenario_name, playbooks,
                                     expect_failure=name == "verify-broken")
    assert not leaks(texts, secrets)
    if "rotate" in name:
        # the scan did see the rotation's statements, and the ALTER ROLE was not logged with
        # its verifier: statement logging is off while one is sent
        assert 'SET "log_statement"' in texts["the server log"] or "iam" in name
        assert "SCRAM-SHA-256$" not in texts["the server log"]
    if needs_iam:
        assert texts["the IAM verifier log"], "no IAM login was verified: nothing was scanned"


def test_the_scan_finds_a_planted_leak(lab, tmp_path):
    """The scan can fail: a hook that prints the new password (what a careless
    pgauth_after_promote_tasks file could do) is caught in the output and the Ansible log."""
    hook = tmp_path / "careless_hook.yml"
    hook.write_text("- name: Print what should never be printed\n  ansible.builtin.debug:\n"
                    "    msg: \"{{ lookup('credops.pgauth.secret_value', pgauth_stores[0], "
                    "field='password') }}\"\n")
    texts, secrets = run_and_collect(lab, tmp_path, "healthy", [
        ("rotate", {"pgauth_after_promote_tasks": str(hook)})])
    found = leaks(texts, secrets)
    assert "a secret in rotate #0 output" in found and "a secret in ANSIBLE_LOG_PATH" in found
