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


@pytest.mark.parametrize("name", sorted(RUNS))
def test_nothing_secret_is_left_anywhere(lab, tmp_path, name):
    scenario_name, playbooks, needs_iam = RUNS[name]
    if needs_iam and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
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
            if playbook != "verify" or name != "verify-broken":
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
    for where, text in texts.items():
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, f"{len(leaked)} secret(s) in {where}"
        assert not TOKEN_PARTS.search(text), f"an IAM token appears in {where}"
    if "rotate" in name:
        # the ALTER ROLE was logged, as a verifier: the scan did see the statement
        assert "SCRAM-SHA-256$" in texts["the server log"] or "iam" in name
    if needs_iam:
        assert texts["the IAM verifier log"], "no IAM login was verified: nothing was scanned"
