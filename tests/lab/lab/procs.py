"""Starting and stopping the lab's background processes, by PID and process group."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# generous: `make test` starts two labs while the other lane lints, on two cores (OpenBao
# took over 30 s to answer there once)
START_TIMEOUT = 120.0


def wait_for(predicate, what: str, timeout: float = START_TIMEOUT,
             interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not running anything
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(pidfile: Path, marker: str) -> int | None:
    """The PID in pidfile when that process is alive and still ours (marker in its cmdline)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid) and marker in cmdline(pid):
        return pid
    return None


def spawn(argv: list[str], pidfile: Path, logfile: Path, env: dict | None = None,
          cwd: Path | None = None) -> int:
    """Start argv in its own session (so `down` can stop the whole group)."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=env, cwd=cwd)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def spawn_serving(argv: list[str], pidfile: Path, logfile: Path, ready, what: str,
                  attempts: int = 5, **spawn_kw) -> int:
    """spawn, then wait until ready(); start it again when it exited first.  The lab's
    ports lie in Linux's ephemeral range: until labctl has reserved them (root only), an
    outgoing connection of anything on the machine may hold one for a moment, and the
    server exits at once on 'Address already in use'."""
    for attempt in range(attempts):
        started = spawn(argv, pidfile, logfile, **spawn_kw)
        # the process spawn started, not a pid-file lookup by command line: until it has
        # exec'd, its command line is not yet the server's and it would look dead
        wait_for(lambda pid=started: not pid_alive(pid) or ready(), what)
        if pid_alive(started):
            return started
        _reap(started)
        time.sleep(1 + attempt)
    raise RuntimeError(f"{what} exited at start {attempts} times (see {logfile})")


def stop_group(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                _reap(pid)
                return
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z" and int(stat[2]) == pgid:
            return True
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def reserve_ports(ports) -> None:
    """Keep the lab's ports out of Linux's ephemeral range (32768-60999 here, where every
    lab port lies): an outgoing connection of any process would otherwise take one now and
    then, and the server meant to listen there fails with 'Address already in use'.  Root
    only (elsewhere the servers' own retries are all there is); the setting lasts until
    reboot and only stops the kernel choosing these ports for outgoing connections."""
    if os.geteuid() != 0 or not RESERVED_PORTS.exists():
        return
    try:
        current = RESERVED_PORTS.read_text().strip()
        reserved: set[int] = set()
        for part in filter(None, current.split(",")):
            low, _sep, high = part.partition("-")
            reserved.update(range(int(low), int(high or low) + 1))
        missing = sorted({int(port) for port in ports} - reserved)
        if missing:
            RESERVED_PORTS.write_text(",".join(filter(None, [current, *map(str, missing)])))
    except (OSError, ValueError):
        return  # a container may not allow it: the retries remain
