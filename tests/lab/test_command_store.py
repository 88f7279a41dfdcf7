"""The `command` store with a real CLI from Debian: pass (password-store), with the throwaway
GPG key and store that `labctl up` makes under the lab dir.

- rotate (single_user, alternating_users) with Secrets Manager as the primary and a pass
  store: `pass show` returns the new password afterwards, and it logs in;
- a write-only store (standing in for `gh secret set`) is written by the rotation and
  listed by verify and diagnose as "write-only, not checked";
- secret_value on a pass store, in check mode and for real, twice;
- bad input: a CLI that hangs, exits non-zero, or prints the password on stderr is a clear
  error naming the store, nothing changes, nothing leaks.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from labfixtures import BUILD, lab_store_options, scenario
from runbooks import assert_no_leak, lab_secrets, logs_in, read_report, read_stores, snapshot
from test_rotate_runbook import report, rotate

BIN = Path(sys.executable).parent
ENTRY = "lab/app_user"


@pytest.fixture
def pass_env(lab):
    if not lab.get("PASSWORD_STORE_DIR"):
        pytest.skip("the lab has no pass store (pass or gpg missing when labctl up ran)")
    env = {"PASSWORD_STORE_DIR": lab["PASSWORD_STORE_DIR"], "GNUPGHOME": lab["GNUPGHOME"]}
    yield env
    subprocess.run(["pass", "rm", "-r", "-f", "lab"], env={**os.environ, **env},
                   capture_output=True, check=False)


def pass_cli(env: dict, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["pass", *args], input=stdin, env={**os.environ, **env}, check=True,
                          capture_output=True, text=True, timeout=60).stdout


def pass_store(env: dict, entry: str = ENTRY, **extra) -> dict:
    return {"name": "pass-app", "type": "command", "read": ["pass", "show", entry],
            "write": ["pass", "insert", "--multiline", "--force", entry], "env": env,
            "timeout": 20, **extra}


def entry_file(env: dict, entry: str = ENTRY) -> Path:
    return Path(env["PASSWORD_STORE_DIR"]) / f"{entry}.gpg"


def with_pass(meta: dict, env: dict, fmt: str) -> dict:
    """The healthy scenario's Secrets Manager store as primary, and a pass entry seeded with
    the same credential (the bare password, or the whole JSON)."""
    aws = next(store for store in meta["stores"] if store["name"] == "aws-app")
    return {**meta, "stores": [aws, pass_store(env, format=fmt)]}


def seed(meta: dict, lab: dict, env: dict, fmt: str) -> None:
    from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
    aws = Store(meta["stores"][0], lab_store_options(lab))
    cred, stored = aws.read()
    value = stored.value if fmt == "json" else cred.password
    pass_cli(env, "insert", "--multiline", "--force", ENTRY, stdin=value)


@pytest.mark.parametrize("strategy, fmt", [("single_user", "password"),
                                           ("alternating_users", "json")])
def test_rotate_with_secrets_manager_and_pass(lab, tmp_path, pass_env, strategy, fmt):
    with scenario("healthy") as healthy:
        meta = with_pass(healthy, pass_env, fmt)
        seed(meta, lab, pass_env, fmt)
        old = read_stores(meta, lab)
        assert old["pass-app"].password == old["aws-app"].password
        done = rotate(lab, tmp_path, meta, "-vvv", pgauth_strategy=strategy)
        assert done.returncode == 0, done.stdout[-3000:]
        new = read_stores(meta, lab)
        shown = pass_cli(pass_env, "show", ENTRY)
        result = report(tmp_path)
        secrets = lab_secrets(lab) | {old["aws-app"].password, new["aws-app"].password}
    if fmt == "json":
        shown_cred = json.loads(shown)
        assert shown_cred["username"] == new["aws-app"].username == "app_user_clone"
        assert shown_cred["password"] == new["aws-app"].password
        password, user = shown_cred["password"], shown_cred["username"]
    else:
        password, user = shown.rstrip("\n"), "app_user"
        assert password == new["aws-app"].password
    assert password != old["aws-app"].password
    assert logs_in(lab, user, password), "the password pass shows does not log in"
    assert result["outcome"] == "rotated"
    steps = [step["step"] for step in result["steps"]]
    # the pass store has no pending stage: written after the database, during promote
    assert steps.index("promote:pass-app") > steps.index("set_database")
    assert result["versions_after"]["pass-app"] is None
    assert_no_leak({"the -vvv output": done.stdout + done.stderr,
                    "rotate.json": json.dumps(result)}, secrets)


def test_a_write_only_store_is_written_by_rotate_and_not_checked_by_verify(lab, tmp_path,
                                                                           pass_env):
    # `gh secret set` cannot be read back: a pass entry written through a write-only store
    # stands in for it, and the test reads the entry itself to see what was written
    blind = {"name": "gh-app", "type": "command", "write_only": True, "format": "json",
             "write": ["pass", "insert", "--multiline", "--force", "lab/gh_copy"],
             "env": pass_env}
    with scenario("healthy") as healthy:
        aws = next(store for store in healthy["stores"] if store["name"] == "aws-app")
        meta = {**healthy, "stores": [aws, blind]}
        done = rotate(lab, tmp_path, meta)
        assert done.returncode == 0, done.stdout[-3000:]
        new = read_stores({"stores": [aws]}, lab)["aws-app"]
        written = json.loads(pass_cli(pass_env, "show", "lab/gh_copy"))
        result = report(tmp_path)
        assert result["versions_before"]["gh-app"] == "write-only, not read back"
        # the whole credential is written (nothing can be merged into what it held)
        assert written["password"] == new.password and written["username"] == "app_user"
        assert written["host"] and written["port"] and written["dbname"]
        checked = run_runbook(lab, tmp_path, meta, "verify")
        diagnosed = run_runbook(lab, tmp_path, meta, "diagnose")
    assert checked["verdict"] == "healthy", checked
    listed = {check["check"]: check for check in checked["checks"]}
    assert listed["write_only:gh-app"]["detail"] == "write-only, not checked"
    assert "store_readable:gh-app" not in listed and "login:gh-app" not in listed
    not_checked = [f for f in diagnosed["findings"] if f["evidence"].get("store") == "gh-app"]
    assert [(f["id"], f["severity"], f["evidence"]["status"]) for f in not_checked] == [
        ("store_unreadable", "info", "write-only, not checked")]
    assert diagnosed["verdict"] == "healthy"


def test_only_write_only_stores_is_never_healthy(lab, tmp_path, pass_env):
    blind = {"name": "gh-app", "type": "command", "write_only": True,
             "write": ["pass", "insert", "--multiline", "--force", "lab/gh_copy"],
             "env": pass_env}
    with scenario("healthy") as healthy:
        meta = {**healthy, "stores": [blind]}
        checked = run_runbook(lab, tmp_path, meta, "verify", expect_ok=False)
        diagnosed = run_runbook(lab, tmp_path, meta, "diagnose")
    assert checked["verdict"] == "broken"
    assert diagnosed["verdict"] != "healthy"


def run_runbook(lab: dict, tmp_path: Path, meta: dict, playbook: str,
                expect_ok: bool = True) -> dict:
    from runbooks import run_playbook, vars_for
    done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"),
                        playbook=playbook)
    if expect_ok:
        assert done.returncode == 0, done.stdout[-3000:]
    return read_report(tmp_path / "reports" / "localhost" / f"{playbook}.json")


def run_tasks(lab: dict, tmp_path: Path, task: dict, *args: str):
    """One module task in a play; its registered result lands in result.json."""
    out = tmp_path / "result.json"
    out.unlink(missing_ok=True)
    tasks = [{**task, "register": "result", "ignore_errors": True},
             {"ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(out),
                                       "mode": "0600"}, "check_mode": False}]
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(path), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    return done, json.loads(out.read_text())


def test_secret_value_on_pass_check_mode_then_real_twice(lab, tmp_path, pass_env):
    pass_cli(pass_env, "insert", "--multiline", "--force", ENTRY, stdin="first-Pw-11")
    store = pass_store(pass_env)
    task = {"credops.pgauth.secret_value": {"store": store, "value": "second-Pw-22"}}
    checked, result = run_tasks(lab, tmp_path, task, "--check", "-vvv")
    assert result["changed"] is True and not result.get("failed"), result
    assert pass_cli(pass_env, "show", ENTRY) == "first-Pw-11"       # check mode wrote nothing
    runs = [run_tasks(lab, tmp_path, task, "-vvv") for _run in range(2)]
    assert [result["changed"] for _done, result in runs] == [True, False]
    assert pass_cli(pass_env, "show", ENTRY) == "second-Pw-22"
    for done in (checked, *(done for done, _result in runs)):
        assert "second-Pw-22" not in done.stdout + done.stderr
        assert "first-Pw-11" not in done.stdout + done.stderr


def test_secret_value_on_a_write_only_store_always_writes(lab, tmp_path, pass_env):
    store = {"name": "gh-app", "type": "command", "write_only": True,
             "write": ["pass", "insert", "--multiline", "--force", "lab/gh_copy"],
             "env": pass_env}
    task = {"credops.pgauth.secret_value": {"store": store, "value": "blind-Pw-33"}}
    _done, checked = run_tasks(lab, tmp_path, task, "--check")
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert not entry_file(pass_env, "lab/gh_copy").exists()
    results = [run_tasks(lab, tmp_path, task)[1] for _run in range(2)]
    assert [result["changed"] for result in results] == [True, True]
    assert pass_cli(pass_env, "show", "lab/gh_copy") == "blind-Pw-33"
    _done, info = run_tasks(lab, tmp_path, {"credops.pgauth.secret_value_info": {"store": store}})
    assert info["failed"] and "gh-app" in info["msg"]
    assert "write-only, not checked" in info["msg"]


BAD_CLIS = {
    "hangs": {"read": ["sleep", "300"], "timeout": 2},
    "exits_non_zero": {"read": ["pass", "show", "lab/no_such_entry"]},
    "password_on_stderr": {"read": ["/bin/sh", "-c", 'pass show "$1" >&2; exit 1', "cli",
                                    ENTRY]},
}


@pytest.mark.parametrize("bad", sorted(BAD_CLIS))
def test_a_bad_cli_is_a_clear_error_that_changes_nothing(lab, tmp_path, pass_env, bad):
    with scenario("healthy") as healthy:
        meta = with_pass(healthy, pass_env, "password")
        seed(meta, lab, pass_env, "password")
        meta["stores"][1].update(BAD_CLIS[bad])
        before, entry_before = snapshot(lab), entry_file(pass_env).read_bytes()
        password = read_stores({"stores": meta["stores"][:1]}, lab)["aws-app"].password
        done = rotate(lab, tmp_path, meta, "-vvv")
        after, entry_after = snapshot(lab), entry_file(pass_env).read_bytes()
        secrets = lab_secrets(lab) | {password}
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "store 'pass-app' (command " in output, output[-3000:]
    expected = {"hangs": "did not finish within 2 s", "exits_non_zero": "exited with status 1",
                "password_on_stderr": "exited with status 1"}[bad]
    assert expected in output, output[-3000:]
    assert before == after and entry_before == entry_after, "something changed"
    assert_no_leak({"the -vvv output": output}, secrets)


def test_a_write_that_fails_during_promote_names_the_store_and_leaks_nothing(lab, tmp_path,
                                                                             pass_env):
    # after the database change nothing can be "unchanged": the run fails naming the store,
    # the primary and the database hold the new credential, and the CLI's stderr - which
    # echoes the value it was given - is redacted
    blind = {"name": "gh-app", "type": "command", "write_only": True,
             "write": ["/bin/sh", "-c", 'echo "refusing $(cat)" >&2; exit 3']}
    with scenario("healthy") as healthy:
        aws = next(store for store in healthy["stores"] if store["name"] == "aws-app")
        meta = {**healthy, "stores": [aws, blind]}
        old = read_stores({"stores": [aws]}, lab)["aws-app"]
        done = rotate(lab, tmp_path, meta, "-vvv")
        new = read_stores({"stores": [aws]}, lab)["aws-app"]
        secrets = lab_secrets(lab) | {old.password, new.password}
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "store 'gh-app' (command /bin/sh): write: command '/bin/sh' exited with status 3" \
        in output, output[-3000:]
    assert "promote failed on some stores" in output
    assert "refusing ********" in output      # stderr is quoted, with the value masked
    assert new.password != old.password and logs_in(lab, new.username, new.password)
    assert_no_leak({"the -vvv output": output}, secrets)
