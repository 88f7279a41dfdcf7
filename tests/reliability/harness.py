"""Fault injection on the lab: run a rotation, break it at a step boundary (SIGKILL, or a
server stopped or restarted while the module waits there), run it again, and watch all
along that some store holds a credential that logs in."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from labfixtures import lab_store_options
from runbooks import playbook_command, vars_for

PENDING_STORES = ("aws-app", "vault-app")
# short enough that a stopped server fails the run in seconds, not minutes
QUICK_AWS = {"aws_config": {"connect_timeout": 2, "read_timeout": 3,
                            "retries": {"mode": "standard", "max_attempts": 1}}}
QUICK_VAULT = {"vault_timeout": 3}
REJECTED = ("password authentication failed", "PAM authentication failed")


def rotate_vars(meta: dict, lab: dict, report_dir: Path, **extra) -> dict:
    variables = vars_for(meta, lab, report_dir)
    variables.pop("pgauth_logs")
    return {**variables, "pgauth_aws": QUICK_AWS, "pgauth_vault": QUICK_VAULT, **extra}


def start_rotation(lab: dict, workdir: Path, meta: dict, env: dict | None = None,
                   **extra) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    command, full_env = playbook_command(lab, workdir, rotate_vars(meta, lab, workdir / "reports",
                                                                   **extra),
                                         playbook="rotate", env=env)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env, cwd=workdir)


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def stopped_descendant(root: int) -> int | None:
    table = _proc_table()
    for pid, (_parent, state) in table.items():
        if state != "T":
            continue
        ancestor = pid
        while ancestor in table and ancestor > 1:
            ancestor = table[ancestor][0]
            if ancestor == root:
                return pid
    return None


def wait_stopped(run: subprocess.Popen, timeout: float = 90.0) -> int:
    """The module process that stopped itself at the failpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = stopped_descendant(run.pid)
        if pid:
            return pid
        if run.poll() is not None:
            raise AssertionError("the run ended before its failpoint:\n"
                                 + run.stdout.read()[-3000:])
        time.sleep(0.05)
    raise AssertionError("the run never reached its failpoint")


@dataclass
class InvariantMonitor:
    """Samples, as often as it can, whether some store (current or pending) holds a credential
    that logs in.  A sample is `held`, `unknown` (a store could not be read or the server did
    not answer, so nothing can be said), or `lost`: every store read and the server answered,
    and no credential worked - confirmed by a second sample right away, since a sample is
    not atomic."""
    meta: dict
    lab: dict
    counts: dict = field(default_factory=lambda: {"held": 0, "unknown": 0, "lost": 0})
    error: str | None = None  # what stopped the sampling, if anything did
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _stores: list = field(default_factory=list)

    def __enter__(self) -> InvariantMonitor:
        from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
        # short timeouts: a hung server makes a sample `unknown` in a second, not minutes;
        # the clients are made once, so a sample costs reads and logins only
        options = {**lab_store_options(self.lab), "vault_timeout": 1,
                   "aws_config": {"connect_timeout": 1, "read_timeout": 1,
                                  "retries": {"max_attempts": 1}}}
        self._stores = [(Store(spec, options), ("current", "pending")
                         if spec["name"] in PENDING_STORES else ("current",))
                        for spec in self.meta["stores"]]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                verdict = self.sample()
                if verdict == "lost":
                    verdict = self.sample()
                self.counts[verdict] += 1
                self._stop.wait(0.02)
        except Exception as err:  # noqa: BLE001 - reported by the test, not lost with the thread
            self.error = f"{type(err).__name__}: {err}"

    @property
    def samples(self) -> int:
        return sum(self.counts.values())

    def sample(self) -> str:
        candidates, unknown = set(), False
        for store, stages in self._stores:
            for stage in stages:
                try:
                    cred, _stored = store.read(stage)
                except Exception:  # noqa: BLE001 - a stopped server fails in many ways
                    unknown = True
                    continue
                if cred is not None and cred.password:
                    candidates.add((cred.username or self.meta["target"]["role"], cred.password))
        for user, password in candidates:
            answer = self.login(user, password)
            if answer == "ok":
                return "held"
            unknown |= answer == "unknown"
        return "unknown" if unknown else "lost"

    def login(self, user: str, password: str) -> str:
        target = self.meta["target"]
        try:
            psycopg2.connect(host=target["host"], port=target["port"], dbname=target["dbname"],
                             user=user, password=password, sslmode="verify-full",
                             sslrootcert=target["sslrootcert"], connect_timeout=2).close()
        except psycopg2.OperationalError as err:
            return "rejected" if any(text in str(err) for text in REJECTED) else "unknown"
        return "ok"


def send(pid: int | None, sig: signal.Signals) -> None:
    if pid:
        os.kill(pid, sig)
