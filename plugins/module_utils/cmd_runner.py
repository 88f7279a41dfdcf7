# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One safe way to run a CLI that handles a secret: the ``command`` store and the
``command`` consumer both go through run_command().

    result = run_command(["pass", "show", "app/db"], secrets=[], timeout=30)
    result.stdout          # bytes, at most max_stdout of them
    run_command(["pass", "insert", "-m", "-f", "app/db"], stdin=value.encode(),
                secrets=[value], env={"PASSWORD_STORE_DIR": "/srv/pass"})

What it guarantees, and why:

- no shell: ``argv`` is a non-empty list of strings without NUL, run as it is, so no
  quoting or expansion can turn a value into code;
- the secret travels on stdin only: an argv element or an environment value holding one
  of ``secrets`` is refused before anything runs (``/proc/<pid>/cmdline`` and ``environ``
  are readable by the same user and show up in ``ps``);
- a clean environment by default: only PATH, HOME, locale, TZ, TMPDIR, USER and LOGNAME
  from ours, plus the names in ``inherit_env`` and the pairs in ``env`` - the module's
  environment may hold AWS keys, Vault tokens or PGPASSWORD that a CLI has no business
  seeing;
- bounded: stdout and stderr are read up to their limits (more is an error, and the
  process is killed), and at ``timeout`` seconds the whole process group is killed (a CLI
  is often a script whose children hold the pipes open);
- errors are CommandError subclasses (PgauthError) that carry the exit status or the
  timeout, and only the redacted stderr: every secret and every form of it, whatever the
  command printed on stdout (a value read), and anything that looks like a secret.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.logscan_match import MASK, redact

# what a CLI needs from our environment to run at all, and nothing that could be a secret
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR", "USER",
            "LOGNAME")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_TIMEOUT = 30.0
MAX_STDOUT = 1 << 20
MAX_STDERR = 64 << 10
STDERR_SHOWN = 500          # characters of (redacted) stderr an error message quotes
MIN_SECRET = 4              # shorter "secrets" would refuse harmless arguments
# after the command exits, how long its leftover children may keep the pipes open
EXIT_GRACE = 1.0
_CHUNK = 65536
_WORDS = re.compile(r"(\s+)")


class CommandError(PgauthError):
    """A command could not be run or did not succeed.  The message never holds a secret."""

    def __init__(self, message: str, code: str, returncode: int | None = None,
                 stderr: str = ""):
        super().__init__(message, code)
        self.returncode = returncode
        self.stderr = stderr        # redacted


class CommandRefused(CommandError):
    """Nothing ran: argv or env is invalid, or would expose a secret."""


class CommandNotFound(CommandError):
    """The executable is not on PATH (or not executable)."""


class CommandTimeout(CommandError):
    """The command ran past its timeout; its process group was killed."""


class CommandFailed(CommandError):
    """The command exited non-zero (or was killed by a signal: returncode < 0)."""


class CommandOutputTooLarge(CommandError):
    """The command printed more than the limit; it was killed."""


@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: str                 # decoded and redacted
    returncode: int
    seconds: float


def secret_forms(secrets: Sequence[str]) -> list[str]:
    """Each secret as a CLI might print it: as is, base64, percent-encoded, JSON-escaped;
    longest first, so a longer form is replaced before a shorter one inside it."""
    forms = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET:
            continue
        raw = secret.encode("utf-8", "surrogateescape")
        forms |= {secret, base64.b64encode(raw).decode("ascii").rstrip("="),
                  quote(secret, safe=""), json.dumps(secret)[1:-1]}
        forms |= {line for line in secret.splitlines() if len(line) >= MIN_SECRET}
    return sorted(forms, key=len, reverse=True)


def _looks_secret(token: str) -> bool:
    """A long word that mixes character classes the way generated passwords and tokens do
    (a path or a sentence does not)."""
    if len(token) < 12 or token.startswith(("/", "./", "~/")):
        return False
    classes = (any(c.islower() for c in token), any(c.isupper() for c in token),
               any(c.isdigit() for c in token), any(not c.isalnum() for c in token))
    return sum(classes) >= 3


def redact_text(text: str, secrets: Sequence[str] = ()) -> str:
    """text without any form of secrets, password assignments, URL passwords, tokens, or
    words that look like generated secrets."""
    for form in secret_forms(secrets):
        text = text.replace(form, MASK)
    text = redact(text)
    return "".join(MASK if _looks_secret(word.strip("'\".,;:()[]{}<>")) else word
                   for word in _WORDS.split(text))


def _validate_argv(argv) -> list[str]:
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not argv:
        raise CommandRefused("the command must be a non-empty list of arguments (no shell)",
                             "argv")
    for index, arg in enumerate(argv):
        if not isinstance(arg, str):
            raise CommandRefused(f"argument {index} of the command is a "
                                 f"{type(arg).__name__}, not a string", "argv")
        if "\0" in arg:
            raise CommandRefused(f"argument {index} of the command holds a NUL byte", "argv")
    if not argv[0]:
        raise CommandRefused("the command's program name is empty", "argv")
    return list(argv)


def child_env(env: Mapping[str, str] | None = None, inherit_env: Sequence[str] = (),
              clean_env: bool = True) -> dict[str, str]:
    """The environment a command gets: ours cut down to BASE_ENV and inherit_env (or all of
    it without clean_env), then env on top."""
    if clean_env:
        names = (*BASE_ENV, *inherit_env)
        out = {name: os.environ[name] for name in names if name in os.environ}
        out.setdefault("PATH", DEFAULT_PATH)
    else:
        out = dict(os.environ)
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise CommandRefused(f"environment variable name {name!r} is invalid", "env")
        if not isinstance(value, str) or "\0" in value:
            raise CommandRefused(f"environment variable {name} must be a string", "env")
        out[name] = value
    return out


def _refuse_exposed(argv: list[str], env: dict[str, str], secrets: Sequence[str]) -> None:
    for secret in (s for s in secrets if s and len(s) >= MIN_SECRET):
        for index, arg in enumerate(argv):
            if secret in arg:
                raise CommandRefused(f"argument {index} of the command holds the secret; "
                                     "the value goes on stdin only", "secret_in_argv")
        for name, value in env.items():
            if secret in value:
                raise CommandRefused(f"environment variable {name} holds the secret; the "
                                     "value goes on stdin only", "secret_in_env")


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class _Pump:
    """Feeds stdin and drains stdout/stderr of one process without blocking, within limits
    and a deadline."""

    def __init__(self, proc: subprocess.Popen, stdin: bytes, limits: dict):
        self.proc, self.limits = proc, limits
        self.pending = memoryview(stdin)
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.too_large: str | None = None
        self.sel = selectors.DefaultSelector()
        for name in ("stdout", "stderr"):
            pipe = getattr(proc, name)
            os.set_blocking(pipe.fileno(), False)
            self.sel.register(pipe, selectors.EVENT_READ, name)
        if self.pending:
            os.set_blocking(proc.stdin.fileno(), False)
            self.sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
        else:
            proc.stdin.close()

    def _write(self, key) -> None:
        try:
            sent = os.write(key.fileobj.fileno(), self.pending[:_CHUNK])
        except (BrokenPipeError, OSError):
            sent = len(self.pending)   # the command does not read stdin: not our failure
        self.pending = self.pending[sent:]
        if not self.pending:
            self.sel.unregister(key.fileobj)
            key.fileobj.close()

    def _read(self, key) -> None:
        try:
            data = os.read(key.fileobj.fileno(), _CHUNK)
        except BlockingIOError:
            return
        if not data:
            self.sel.unregister(key.fileobj)
            return
        buf = self.out[key.data]
        buf += data
        if len(buf) > self.limits[key.data]:
            del buf[self.limits[key.data]:]
            self.too_large = key.data

    def run(self, deadline: float) -> bool:
        """True when the process exited and its pipes closed (or its grace ran out) before
        the deadline; False on timeout or too much output."""
        try:
            return self._loop(deadline)
        finally:
            self.sel.close()

    def _loop(self, deadline: float) -> bool:
        exited_at = None
        while self.sel.get_map():
            now = time.monotonic()
            if exited_at is None and self.proc.poll() is not None:
                exited_at = now
            end = deadline if exited_at is None else min(deadline, exited_at + EXIT_GRACE)
            if now >= end:
                break
            for key, _mask in self.sel.select(timeout=min(end - now, 0.2)):
                if key.data == "stdin":
                    self._write(key)
                else:
                    self._read(key)
                if self.too_large:
                    return False
        if exited_at is not None:
            return True
        remaining = deadline - time.monotonic()
        try:
            self.proc.wait(timeout=max(remaining, 0))
        except subprocess.TimeoutExpired:
            return False
        return True


def run_command(argv: Sequence[str], *, stdin: bytes = b"", secrets: Sequence[str] = (),
                timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None,
                inherit_env: Sequence[str] = (), clean_env: bool = True,
                max_stdout: int = MAX_STDOUT, max_stderr: int = MAX_STDERR,
                check: bool = True, cwd: str | None = None) -> CommandResult:
    """Run argv with stdin, and return what it printed.  secrets: every secret the command
    might see or print (refused in argv and env, redacted from stderr; stdout is also
    redacted from stderr, as it may be a value read).  check: a non-zero exit raises
    CommandFailed.  Raises CommandError subclasses only."""
    argv = _validate_argv(argv)
    if timeout is None or timeout <= 0:
        raise CommandRefused("the command's timeout must be a positive number of seconds",
                             "timeout")
    environment = child_env(env, inherit_env, clean_env)
    _refuse_exposed(argv, environment, secrets)
    program = argv[0]
    if shutil.which(program, path=environment.get("PATH")) is None:
        raise CommandNotFound(f"command {program!r} not found (PATH={environment.get('PATH')})",
                              "not_found")
    started = time.monotonic()
    try:
        # start_new_session: the command leads its own process group, so a timeout kills
        # its children too; close_fds keeps our sockets and files from it
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=environment, cwd=cwd,
                                close_fds=True, start_new_session=True)
    except OSError as err:
        raise CommandNotFound(f"command {program!r} cannot be run: {err.strerror}",
                              "not_found") from None
    pump = _Pump(proc, bytes(stdin), {"stdout": max_stdout, "stderr": max_stderr})
    try:
        finished = pump.run(started + timeout)
    finally:
        _kill_group(proc)      # whatever the command left behind in its group goes too
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe and not pipe.closed:
                pipe.close()
        proc.wait()
    seconds = time.monotonic() - started
    stdout = bytes(pump.out["stdout"])
    shown = [*secrets, *stdout.decode("utf-8", "replace").splitlines()]
    stderr = redact_text(pump.out["stderr"].decode("utf-8", "replace"), shown)
    quoted = stderr.strip()[:STDERR_SHOWN]
    said = f": {quoted}" if quoted else " (nothing on stderr)"
    if pump.too_large:
        raise CommandOutputTooLarge(
            f"command {program!r} printed more than {pump.limits[pump.too_large]} bytes on "
            f"{pump.too_large}; it was killed", "too_large", None, stderr)
    if not finished:
        raise CommandTimeout(f"command {program!r} did not finish within {timeout:g} s; it "
                             f"was killed{said}", "timeout", None, stderr)
    if check and proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        raise CommandFailed(f"command {program!r} {how}{said}", "exit", proc.returncode, stderr)
    return CommandResult(stdout, stderr, proc.returncode, seconds)
