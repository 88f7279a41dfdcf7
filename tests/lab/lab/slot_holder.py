"""A client that takes every connection slot a non-superuser may have (the scenario
server_too_many_clients): a leaking pool, as the incident really happens.

`start` runs this file as its own process group and waits until the slots are taken;
`stop` ends it.  The process also ends by itself when the server drops its connections
(a reset drops its role, `labctl down` stops the server).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg2

from .procs import pid_alive, read_pid, spawn, stop_group, wait_for
from .settings import Lab

HOLDER_ROLE = "lab_slot_holder"
MARKER = "lab.slot_holder"
# the server's texts for "no slot left for you" (53300): the holder stops taking slots there
FULL = ("too many clients already", "remaining connection slots are reserved")


def _files(lab: Lab) -> tuple[Path, Path, Path]:
    return lab.run_dir / "slot_holder.pid", lab.run_dir / "slot_holder.ready", \
        lab.log_dir / "slot_holder.log"


def start(lab: Lab, socket_dir: Path) -> int:
    """Take the slots; returns how many it holds.  The role must exist (LOGIN, no password:
    the lab's unix socket trusts local logins)."""
    stop(lab)
    pidfile, ready, logfile = _files(lab)
    ready.unlink(missing_ok=True)
    # run as the lab package's module (from tests/lab), so its imports work as here
    started = spawn([sys.executable, "-m", MARKER, str(socket_dir), str(lab.pg_port),
                     str(ready)], pidfile, logfile, cwd=Path(__file__).resolve().parent.parent)
    # the pid spawn returned, not read_pid: until the child has exec'd, its command line is
    # not yet the holder's, and a loaded machine (CI) saw a starting holder as stopped
    wait_for(lambda: ready.exists() or not pid_alive(started),
             "the slot holder to take every connection slot", timeout=60)
    if not ready.exists():
        raise RuntimeError(f"the slot holder stopped early: see {logfile}")
    return int(ready.read_text())


def stop(lab: Lab) -> None:
    pidfile, ready, _logfile = _files(lab)
    pid = read_pid(pidfile, MARKER)
    if pid is not None:
        stop_group(pid)
    pidfile.unlink(missing_ok=True)
    ready.unlink(missing_ok=True)


def hold(socket_dir: str, port: str, ready: Path) -> None:
    held = []
    while True:
        try:
            held.append(psycopg2.connect(host=socket_dir, port=port, user=HOLDER_ROLE,
                                         dbname="postgres", connect_timeout=5))
        except psycopg2.OperationalError as err:
            if not any(text in str(err) for text in FULL):
                raise
            break
    ready.write_text(str(len(held)))
    while True:
        time.sleep(1)
        try:
            held[0].cursor().execute("SELECT 1")
        except psycopg2.Error:
            return


if __name__ == "__main__":
    hold(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
