"""The four runbooks as AWX runs them: through ansible-runner (the engine of AWX's jobs, on
an execution node) with a private data dir laid out the way AWX lays it out, and checked for
what AWX would see - the status and rc, the play stats (set_stats) that a workflow branches
on, the job event stream - and a leak scan over everything the run left outside env/.

AWX's layout, reproduced here (docs/awx.md):
    project/<runbook>.yml    the one-line playbook per job template
    inventory/hosts          an executable script printing the inventory as JSON
    env/extravars            the survey's answers (and the job template's extra variables)
    env/envvars              the credentials, as the credential types' env injectors set them
    env/settings             runner settings (timeouts)
The credentials reach the run only through env/envvars: the test removes them from its own
environment while a job runs, so a run that found them there instead would fail.  diagnose
and verify run at verbosity 0, rotate at -vvv, remediate (diagnose, rotate, verify in one
play) at -vvvv; verify once through the `ansible-runner run` command line, as AWX's receptor
worker starts it.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import ansible_runner
import hvac
import pytest
from labfixtures import BUILD, scenario
from runbooks import TOKEN_PARTS, lab_secrets, logs_in, read_stores, vars_for

BIN = Path(sys.executable).parent
HOST = "app-db"
# what the credential types of docs/awx.md inject: AWS (built-in type, plus the endpoint and
# region a custom type adds for the lab's moto), Vault/OpenBao, the PostgreSQL admin
INJECTED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL",
            "VAULT_ADDR", "VAULT_TOKEN", "PGUSER", "PGPASSWORD")
# the injected values that are secret: each may appear only in env/ and in runner's own
# artifacts/<ident>/command (its record of the environment it started ansible with)
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN", "PGPASSWORD")


def injected_env(lab: dict) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": lab["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": lab["AWS_SECRET_ACCESS_KEY"],
            "AWS_REGION": lab["AWS_REGION"], "AWS_ENDPOINT_URL": lab["AWS_ENDPOINT_URL"],
            "VAULT_ADDR": lab["VAULT_ADDR"], "VAULT_TOKEN": lab["JOB_VAULT_TOKEN"],
            "PGUSER": lab["PGAUTH_LAB_ADMIN_USER"], "PGPASSWORD": lab["PGAUTH_LAB_ADMIN_PASSWORD"]}


def survey_answers(runbook: str, answers: dict) -> dict:
    """The extra variables AWX adds from the job template's survey (the shipped spec): the
    operator's answers, else each question's default; multiplechoice answers are strings."""
    spec = json.loads((BUILD / "ansible_collections" / "credops" / "pgauth" / "extensions" /
                       "awx" / "surveys" / f"{runbook}.json").read_text())["spec"]
    unknown = set(answers) - {question["variable"] for question in spec}
    assert not unknown, f"not questions of the {runbook} survey: {unknown}"
    found = {}
    for question in spec:
        value = answers.get(question["variable"], question.get("default"))
        if value in (None, ""):  # unanswered, no default: AWX passes nothing
            continue
        found[question["variable"]] = int(value) if question["type"] == "integer" else value
    return found


def private_data_dir(root: Path, lab: dict, meta: dict, runbook: str, answers: dict) -> Path:
    """A private data dir as AWX writes it for one job of the runbook's job template."""
    pdd = root / f"{runbook}-job"
    for sub in ("project", "inventory", "env"):
        (pdd / sub).mkdir(parents=True)
    (pdd / "project" / f"{runbook}.yml").write_text(
        f"---\n- ansible.builtin.import_playbook: credops.pgauth.{runbook}\n")
    # the target, its stores and consumers are host variables of group pgauth_targets, as an
    # inventory (or the rds_targets inventory source) gives them, the shared settings group
    # variables (docs/awx.md); the admin logs in through PGUSER/PGPASSWORD, pgauth_admin left
    # empty.  No secret is in the inventory.
    shared = vars_for(meta, lab, root / "reports")
    host = {key: shared.pop(key) for key in ("pgauth_target", "pgauth_stores",
                                             "pgauth_consumers")}
    del shared["pgauth_admin"]
    inventory = {"all": {"children": ["pgauth_targets", "ungrouped"]},
                 "pgauth_targets": {"hosts": [HOST], "vars": shared},
                 "_meta": {"hostvars": {HOST: host}}}
    script = pdd / "inventory" / "hosts"
    script.write_text(f"#! {sys.executable}\nprint({json.dumps(json.dumps(inventory))})\n")
    script.chmod(0o700)
    # extra variables: the survey's answers (what the job template adds on top)
    (pdd / "env" / "extravars").write_text(json.dumps(survey_answers(runbook, answers)))
    (pdd / "env" / "envvars").write_text(json.dumps({
        **injected_env(lab), "ANSIBLE_COLLECTIONS_PATH": str(BUILD),
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}))
    (pdd / "env" / "settings").write_text(json.dumps({"job_timeout": 600, "idle_timeout": 300,
                                                      "pexpect_timeout": 5}))
    for path in (pdd / "env").iterdir():
        path.chmod(0o600)
    return pdd


@contextlib.contextmanager
def without_credentials():
    """The job's environment must come from env/envvars, as on an execution node: none of
    the credentials, nor the lab's own settings, in the environment ansible-runner inherits
    (and copies into artifacts/<ident>/command)."""
    saved = {key: os.environ.pop(key) for key in list(os.environ)
             if key in INJECTED or key.startswith(("AWS_", "VAULT_", "BAO_", "PG", "PASSWORD_"))}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_job(pdd: Path, runbook: str, verbosity: int = 0, cli: bool = False) -> Path:
    """One job; returns artifacts/<ident>/."""
    ident = f"{runbook}-1"
    with without_credentials():
        if cli:  # as AWX's receptor worker starts it: the ansible-runner command line
            argv = [str(BIN / "ansible-runner"), "run", str(pdd), "-p", f"{runbook}.yml",
                    "--ident", ident]
            if verbosity:
                argv.append("-" + "v" * verbosity)
            subprocess.run(argv, check=False, capture_output=True, timeout=600,
                           env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
        else:
            runner = ansible_runner.run(private_data_dir=str(pdd), playbook=f"{runbook}.yml",
                                        ident=ident, verbosity=verbosity, quiet=True)
    artifacts = pdd / "artifacts" / ident
    assert (artifacts / "status").is_file(), f"{runbook}: runner left no status"
    if not cli:  # the API's answer is what the artifacts say
        assert (runner.status, runner.rc) == outcome(artifacts)
        assert HOST in runner.stats["processed"], runner.stats
    return artifacts


def events(artifacts: Path) -> list[dict]:
    found = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    return sorted(found, key=lambda event: event["counter"])


def play_stats(artifacts: Path) -> dict:
    """The set_stats data as AWX stores it: the playbook_on_stats event's artifact_data."""
    final = [event for event in events(artifacts) if event["event"] == "playbook_on_stats"]
    assert len(final) == 1, "no playbook_on_stats event"
    return final[0]["event_data"].get("artifact_data") or {}


def outcome(artifacts: Path) -> tuple[str, int]:
    return (artifacts / "status").read_text().strip(), int((artifacts / "rc").read_text())


def leaks(pdd: Path, secrets: set[str]) -> list[str]:
    """Every file the job left under the private data dir, env/ excepted (AWX's own inputs,
    removed with the dir), read in full: where a secret or an IAM token appears.  Runner's
    artifacts/<ident>/command records the environment it started ansible with: there the
    injected secrets may appear as the values of their own variables, nowhere else."""
    found = []
    for path in sorted(pdd.rglob("*")):
        relative = path.relative_to(pdd)
        if not path.is_file() or relative.parts[0] == "env":
            continue
        text = path.read_text(errors="replace")
        if path.name == "command" and relative.parts[0] == "artifacts":
            record = json.loads(text)
            env = {key: value for key, value in record["env"].items() if key not in SECRET_ENV}
            text = json.dumps({"command": record["command"], "cwd": record["cwd"], "env": env})
        found += [f"a secret in {relative}" for secret in secrets if secret in text]
        if TOKEN_PARTS.search(text):
            found.append(f"an IAM token in {relative}")
    return found


def scanned(pdd: Path) -> int:
    return sum(1 for path in pdd.rglob("*") if path.is_file()
               and path.relative_to(pdd).parts[0] != "env")


@pytest.fixture(scope="module")
def job_lab(lab):
    """The lab's settings with a Vault token of the job's own: the lab's dev token is "root",
    a word any output holds; a child token with the same policy is a secret to look for."""
    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    token = vault.auth.token.create(policies=["root"], ttl="30m")["auth"]["client_token"]
    yield {**lab, "JOB_VAULT_TOKEN": token}
    with contextlib.suppress(hvac.exceptions.VaultError):
        vault.auth.token.revoke(token)


def credentials(lab: dict) -> set[str]:
    return {lab["PGAUTH_LAB_ADMIN_PASSWORD"], lab["AWS_SECRET_ACCESS_KEY"],
            lab["JOB_VAULT_TOKEN"]}


@pytest.fixture(scope="module")
def jobs(job_lab, tmp_path_factory) -> dict:
    """The lab setup of the module: each scenario once, its jobs run in order."""
    lab = job_lab
    root = tmp_path_factory.mktemp("awx")
    done = {}
    with scenario("password_mismatch") as meta:
        secrets = lab_secrets(lab) | credentials(lab)
        for runbook, extra, verbosity in (("diagnose", {}, 0),
                                          ("remediate", {"pgauth_apply": "true"}, 4)):
            pdd = private_data_dir(root / "mismatch", lab, meta, runbook, extra)
            done[runbook] = {"pdd": pdd, "artifacts": run_job(pdd, runbook, verbosity)}
        secrets |= lab_secrets(lab)
        creds = list(read_stores(meta, lab).values())
        done["remediate"]["one_password"] = len({cred.password for cred in creds}) == 1
        done["remediate"]["logs_in"] = logs_in(lab, creds[0].username, creds[0].password)
        done["mismatch_secrets"] = secrets
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        secrets = lab_secrets(lab) | credentials(lab)
        pdd = private_data_dir(root / "healthy", lab, meta, "rotate", {})
        done["rotate"] = {"pdd": pdd, "artifacts": run_job(pdd, "rotate", verbosity=3)}
        new = read_stores(meta, lab)["aws-app"]
        done["rotate"].update(changed=new.password != old.password,
                              new_logs_in=logs_in(lab, new.username, new.password))
        # verify counts failed logins since the rotation (pgauth_logs): the old password is
        # tried after it, not before
        pdd = private_data_dir(root / "healthy", lab, meta, "verify", {})
        done["verify"] = {"pdd": pdd, "artifacts": run_job(pdd, "verify", cli=True)}
        done["rotate"]["old_logs_in"] = logs_in(lab, old.username, old.password)
        done["healthy_secrets"] = secrets | lab_secrets(lab) | {old.password}
    with scenario("stores_disagree") as meta:
        pdd = private_data_dir(root / "disagree", lab, meta, "verify", {})
        done["verify_broken"] = {"pdd": pdd, "artifacts": run_job(pdd, "verify")}
        done["disagree_secrets"] = lab_secrets(lab) | credentials(lab)
    return done


def test_diagnose_job_reports_the_root_cause_in_its_stats(jobs):
    artifacts = jobs["diagnose"]["artifacts"]
    assert outcome(artifacts) == ("successful", 0), (artifacts / "stdout").read_text()[-3000:]
    stats = play_stats(artifacts)
    assert stats["pgauth_diagnose_broken"] == [HOST]
    assert stats["pgauth_diagnose"][HOST]["verdict"] == "broken"
    assert stats["pgauth_diagnose"][HOST]["findings"][0] == "store_password_mismatch"
    report = Path(stats["pgauth_diagnose"][HOST]["report"])
    assert report.is_file() and json.loads(report.read_text())["verdict"] == "broken"
    names = [event["event"] for event in events(artifacts)]
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"
    assert "runner_on_ok" in names and "runner_on_failed" not in names


def test_remediate_job_rotates_and_verifies(jobs):
    artifacts = jobs["remediate"]["artifacts"]
    assert outcome(artifacts) == ("successful", 0), (artifacts / "stdout").read_text()[-3000:]
    stats = play_stats(artifacts)
    # one play, three roles: the stats of each runbook aggregate under its own keys
    assert stats["pgauth_diagnose_broken"] == [HOST]
    assert stats["pgauth_rotate"][HOST]["verdict"] == "healthy"
    assert stats["pgauth_verify_healthy"] == [HOST]
    assert jobs["remediate"]["one_password"] and jobs["remediate"]["logs_in"]


def test_rotate_job_at_vvv_rotates_every_store(jobs):
    job = jobs["rotate"]
    assert outcome(job["artifacts"]) == ("successful", 0), \
        (job["artifacts"] / "stdout").read_text()[-3000:]
    stats = play_stats(job["artifacts"])
    assert stats["pgauth_rotate_healthy"] == [HOST]
    assert stats["pgauth_rotate"][HOST]["verdict"] == "healthy"
    assert job["changed"] and job["new_logs_in"] and not job["old_logs_in"]
    # -vvv reached the event stream: the verbose lines are there to be scanned
    assert any(event["event"] == "verbose" for event in events(job["artifacts"]))


def test_verify_job_through_the_cli_after_the_rotation(jobs):
    artifacts = jobs["verify"]["artifacts"]
    assert outcome(artifacts) == ("successful", 0), (artifacts / "stdout").read_text()[-3000:]
    stats = play_stats(artifacts)
    assert stats["pgauth_verify_healthy"] == [HOST]
    assert stats["pgauth_verify"][HOST]["findings"] == []


def test_verify_job_fails_on_stores_that_disagree(jobs):
    """What makes a workflow's "on failure" edge fire: the job failed, and its stats (set
    before the failing assert) still name the broken host."""
    artifacts = jobs["verify_broken"]["artifacts"]
    status, rc = outcome(artifacts)
    assert status == "failed" and rc != 0
    stats = play_stats(artifacts)
    assert stats["pgauth_verify_broken"] == [HOST]
    failed = [event for event in events(artifacts) if event["event"] == "runner_on_failed"]
    assert failed and "verify failed" in json.dumps(failed[-1]["event_data"]["res"])


@pytest.mark.parametrize("job,secrets", [
    ("diagnose", "mismatch_secrets"), ("remediate", "mismatch_secrets"),
    ("rotate", "healthy_secrets"), ("verify", "healthy_secrets"),
    ("verify_broken", "disagree_secrets")])
def test_no_secret_anywhere_in_the_job_dir(jobs, job_lab, job, secrets):
    """Every password the lab held before and after (the admin's, the app's old and new),
    the Vault token and the AWS secret key: in no artifact, event, stdout or report."""
    found = jobs[secrets]
    assert credentials(job_lab) <= found and len(found) > 4, "the secrets to look for"
    pdd = jobs[job]["pdd"]
    assert scanned(pdd) > 10, "nothing to scan: the test is broken"
    problems = leaks(pdd, found)
    assert not problems, problems
    # the reports the job wrote (outside the private data dir) are scanned too
    report_dir = pdd.parent / "reports"
    reports = [path for path in report_dir.rglob("*") if path.is_file()]
    leaked = [str(path) for path in reports
              if any(secret in path.read_text() for secret in found)]
    assert reports and not leaked, leaked


def test_the_leak_scan_finds_a_secret(jobs, lab, tmp_path):
    """The scan can fail: a secret written into an event file is found."""
    pdd = jobs["diagnose"]["pdd"]
    planted = pdd / "artifacts" / "diagnose-1" / "job_events" / "planted.json"
    planted.write_text(json.dumps({"stdout": lab["PGAUTH_LAB_ADMIN_PASSWORD"]}))
    try:
        assert leaks(pdd, {lab["PGAUTH_LAB_ADMIN_PASSWORD"]}) == [
            "a secret in artifacts/diagnose-1/job_events/planted.json"]
    finally:
        planted.unlink()
    command = json.loads((pdd / "artifacts" / "diagnose-1" / "command").read_text())
    # the credentials did arrive through env/envvars, and never on the command line
    assert command["env"]["PGPASSWORD"] == lab["PGAUTH_LAB_ADMIN_PASSWORD"]
    assert lab["PGAUTH_LAB_ADMIN_PASSWORD"] not in json.dumps(command["command"])
