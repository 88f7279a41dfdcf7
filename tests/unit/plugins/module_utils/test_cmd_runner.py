"""The safe runner, with real subprocesses: /bin/sh scripts stand in for the CLI under
test, sleep for a CLI that hangs."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.cmd_runner import (
    CommandError,
    CommandFailed,
    CommandNotFound,
    CommandOutputTooLarge,
    CommandRefused,
    CommandTimeout,
    child_env,
    redact_text,
    run_command,
)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

SECRET = "Tq8#vLm2!pZx9@Rw4$Kd"


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script, "cli-under-test"]


def test_stdin_goes_to_the_command_and_stdout_comes_back():
    result = run_command(sh("tr a-z A-Z"), stdin=b"hello\n")
    assert result.stdout == b"HELLO\n"
    assert result.returncode == 0 and result.stderr == ""


def test_a_large_stdin_and_stdout_do_not_deadlock():
    data = os.urandom(300_000).hex().encode()      # 600 kB each way, past any pipe buffer
    result = run_command(["cat"], stdin=data)
    assert result.stdout == data


def test_no_shell_expansion():
    result = run_command(["echo", "$HOME", "`id`", "; rm -rf /"])
    assert result.stdout == b"$HOME `id` ; rm -rf /\n"


@pytest.mark.parametrize("argv", ["echo hi", [], ["echo", 3], ["ec\0ho"], [""], None])
def test_bad_argv_is_refused_before_anything_runs(argv):
    with pytest.raises(CommandRefused) as err:
        run_command(argv)
    assert err.value.code == "argv"


def test_a_missing_program_is_not_found():
    with pytest.raises(CommandNotFound, match="no-such-cli-here"):
        run_command(["no-such-cli-here", "x"])


def test_non_zero_exit_carries_the_status_and_redacted_stderr():
    with pytest.raises(CommandFailed) as err:
        # the CLI quotes the value it was given on stdin in its complaint
        run_command(sh("printf 'cannot store %s\\n' \"$(cat)\" >&2; exit 3"),
                    stdin=SECRET.encode(), secrets=[SECRET])
    assert err.value.returncode == 3 and err.value.code == "exit"
    assert "status 3" in str(err.value) and "cannot store" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in err.value.stderr
    assert isinstance(err.value, PgauthError)


def test_check_false_returns_the_status():
    result = run_command(sh("exit 4"), check=False)
    assert result.returncode == 4


def test_stderr_loses_the_value_the_command_printed_on_stdout():
    # a read: we do not know the value in advance, but stdout is it
    value = "s3cr3t-Value-from-the-store"
    with pytest.raises(CommandFailed) as err:
        run_command(sh(f"echo {value}; echo 'debug: got {value}' >&2; exit 1"))
    assert value not in str(err.value) and "debug: got" in str(err.value)


@pytest.mark.parametrize("printed", [
    "password=hunter2hunter2", "token: ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "postgresql://app:Xy9_pw-Long@db/app", "AKIAABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
    "got Zq7!mW2#kP9@vR4x while parsing"])
def test_secret_looking_words_are_redacted(printed):
    text = redact_text(f"error: {printed}")
    assert "error:" in text
    for secretish in ("hunter2hunter2", "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "Xy9_pw-Long",
                      "AKIAABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd", "Zq7!mW2#kP9@vR4x"):
        assert secretish not in text


def test_every_form_of_the_secret_is_redacted():
    import base64
    import json
    from urllib.parse import quote
    weird = 'pw "with" quotes/and%'
    forms = [weird, base64.b64encode(weird.encode()).decode(), quote(weird, safe=""),
             json.dumps(weird)[1:-1]]
    text = redact_text(" | ".join(forms), [weird])
    for form in forms:
        assert form not in text


def test_plain_paths_and_sentences_stay_readable():
    text = redact_text("Error: app/db is not in the password store /srv/pass/app.gpg")
    assert text == "Error: app/db is not in the password store /srv/pass/app.gpg"


def test_a_hanging_command_is_killed_with_its_whole_group(tmp_path: Path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as err:
        run_command(sh(f"sleep 300 & echo $! > {pidfile}; wait"), timeout=1)
    assert time.monotonic() - started < 5
    assert err.value.code == "timeout" and "1 s" in str(err.value)
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or \
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"


def test_a_child_left_holding_the_pipes_does_not_hang_a_finished_command():
    started = time.monotonic()
    result = run_command(sh("sleep 300 & echo done"), timeout=20)
    assert result.stdout == b"done\n" and time.monotonic() - started < 5


def test_a_command_that_ignores_stdin_is_fine():
    result = run_command(["true"], stdin=b"x" * 1_000_000)
    assert result.returncode == 0


def test_too_much_output_is_an_error_and_kills():
    started = time.monotonic()
    with pytest.raises(CommandOutputTooLarge):
        run_command(["yes"], max_stdout=10_000, timeout=20)
    assert time.monotonic() - started < 5


def test_the_secret_is_refused_in_argv_and_env():
    with pytest.raises(CommandRefused) as err:
        run_command(["echo", f"--password={SECRET}"], secrets=[SECRET])
    assert err.value.code == "secret_in_argv" and SECRET not in str(err.value)
    with pytest.raises(CommandRefused) as err:
        run_command(["true"], env={"APP_PW": SECRET}, secrets=[SECRET])
    assert err.value.code == "secret_in_env" and SECRET not in str(err.value)


def test_the_environment_is_clean_unless_asked(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-cli")
    monkeypatch.setenv("KUBECONFIG", "/tmp/kc")
    env = child_env(inherit_env=["KUBECONFIG"], env={"PASSWORD_STORE_DIR": "/srv/pass"})
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["KUBECONFIG"] == "/tmp/kc" and env["PASSWORD_STORE_DIR"] == "/srv/pass"
    assert "PATH" in env
    out = run_command(["env"], inherit_env=["KUBECONFIG"]).stdout.decode()
    assert "AWS_SECRET_ACCESS_KEY" not in out and "KUBECONFIG=/tmp/kc" in out
    assert "AWS_SECRET_ACCESS_KEY" in child_env(clean_env=False)


@pytest.mark.parametrize("env", [{"A=B": "x"}, {"": "x"}, {"A": 3}])
def test_bad_env_is_refused(env):
    with pytest.raises(CommandRefused):
        run_command(["true"], env=env)


def test_the_value_never_reaches_the_childs_cmdline_or_environ(tmp_path: Path):
    # the command reads its own /proc entries (and a grandchild's) while it holds the value
    dump = tmp_path / "proc"
    script = (f"cat /proc/$$/cmdline /proc/$$/environ > {dump}; "
              f"sh -c 'cat /proc/$$/cmdline /proc/$$/environ' >> {dump}; cat")
    result = run_command(sh(script), stdin=SECRET.encode(), secrets=[SECRET],
                         env={"SOME_SETTING": "on"})
    assert result.stdout == SECRET.encode()
    seen = dump.read_bytes()
    assert b"SOME_SETTING=on" in seen     # the dump is real: it shows what we did pass
    assert SECRET.encode() not in seen


def test_every_error_is_a_command_error():
    for kind in (CommandRefused, CommandNotFound, CommandTimeout, CommandFailed,
                 CommandOutputTooLarge):
        assert issubclass(kind, CommandError) and issubclass(kind, PgauthError)
