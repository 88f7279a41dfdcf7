"""Item 5 of the security review: the log scan reads what clients that never authenticate put
into the server log.

What really gets there (checked on the lab server below): PostgreSQL cuts the user and
database names of a startup packet to 63 bytes and logs application_name only after
authentication, but a ``replication`` value that is not a boolean is logged whole, at FATAL,
before authentication, up to the startup packet's 10000 bytes, line breaks included (each
becomes a tab-indented continuation line).  And %u and %d in the line prefix are printed raw:
a user name with a line break starts a new physical line that the attacker wrote.

The old scanner spent seconds to hours of CPU on one such line (nested greedy patterns,
re-searched from every candidate start), kept every role it ever saw, and attached any DETAIL
line to the last event of its process id (or a continuation line to the last process seen),
so a forged line could give another login a false reason.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import psycopg2
import pytest
from labfixtures import BUILD
from secsupport import run_tasks

# the documented bounds (plugins/module_utils/logscan.py); literal here, so that this file
# also runs against code from before they existed
LINE_LIMIT = 16384
MAX_ROLES = 1000
PENDING_LIMIT = 10000
# "100 lines in under 2 s of CPU" guards against super-linear matching, it is no benchmark;
# a scan still running after SCAN_TIMEOUT s has failed (the old code needs minutes to hours)
BOUND_S = 2.0
SCAN_TIMEOUT = 20
PREFIX = "2026-11-22 06:50:29.084 UTC [{pid}] {user}@appdb "

# the module's own path (logsources.file_lines -> logscan.Scanner), in a child process that
# can be killed when it does not finish
_SCAN = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.credops.pgauth.plugins.module_utils.logscan import Scanner
    from ansible_collections.credops.pgauth.plugins.module_utils.logsources import file_lines
    scanner = Scanner()
    started = time.process_time()
    for line in file_lines(sys.argv[2], None):
        scanner.feed(line)
    result = scanner.result()
    print(json.dumps({"cpu_s": time.process_time() - started, "result": result}))
""")


def timed_scan(path: Path) -> tuple[float, dict]:
    try:
        done = subprocess.run([sys.executable, "-c", _SCAN, str(BUILD), str(path)],
                              capture_output=True, text=True, timeout=SCAN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scanning {path.name} ({path.stat().st_size // 1024} KB) did not finish "
                    f"in {SCAN_TIMEOUT} s: super-linear matching")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    return out["cpu_s"], out["result"]


def module_scan(lab: dict, tmp_path: Path, path: Path, **options) -> tuple[dict, str]:
    """pg_auth_log_scan as a user runs it: its result as the task returned it, and all the
    playbook printed at -vvv."""
    out = tmp_path / "scan.json"
    tasks = [{"name": "scan", "credops.pgauth.pg_auth_log_scan":
              {"files": [str(path)], "since": "", **options}, "register": "scan"},
             {"name": "keep", "ansible.builtin.copy":
              {"content": "{{ scan | to_json }}", "dest": str(out), "mode": "0600"}}]
    done = run_tasks(lab, tmp_path, tasks)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout + done.stderr


def attempt(lab: dict, **params) -> str:
    """One login attempt with a hostile startup packet; the server's error."""
    try:
        psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]),
                         sslmode="require", password="not-the-password", connect_timeout=10,
                         **params).close()
    except psycopg2.OperationalError as err:
        return str(err)
    pytest.fail("the lab server accepted the attacker's login")


def log_offset(lab: dict) -> int:
    return os.path.getsize(lab["PGAUTH_LAB_PGLOG"])


def logged_since(lab: dict, offset: int) -> list[str]:
    with open(lab["PGAUTH_LAB_PGLOG"], "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", errors="replace").splitlines(keepends=True)


_LAB_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[(\d+)\] ")


def lines_of(lines: list[str], mark: str) -> list[str]:
    """The lines of the processes that logged mark (and their continuation lines): what
    other sessions log on the shared lab server at the same time stays out."""
    pids = {found.group(1) for line in lines if mark in line
            for found in [_LAB_START.match(line)] if found}
    kept, owner = [], None
    for line in lines:
        found = _LAB_START.match(line)
        owner = found.group(1) if found else owner
        if owner in pids:
            kept.append(line)
    return kept


def cubic(length: int) -> str:
    """Text that made the old hba-line role pattern (user "(.*)", database ".*"(, [^"]*)?$)
    try every (start, separator, quote) triple."""
    unit = ', user "", database "'
    return unit * (length // len(unit)) + "x"


# -- what an unauthenticated client gets into the log, and the scan of it ---------------------

def test_preauth_lines_from_the_lab_server_scan_in_linear_time(lab, tmp_path):
    mark = secrets.token_hex(4)
    offset = log_offset(lab)
    # 9000 bytes each (the startup packet holds 10000 in all)
    attempt(lab, user=f"sec{mark}u" + "u" * 9000, dbname="postgres")
    attempt(lab, user=f"sec{mark}v", dbname=f"sec{mark}d" + "d" * 9000)
    attempt(lab, user=f"sec{mark}w", dbname="postgres", application_name=f"sec{mark}a" + "a" * 8000)
    # the real vector: logged whole before authentication; the line break ends the FATAL's
    # first line where the attacker wants it (after an 'x', so the old pattern never matched)
    payload = f"sec{mark}r no pg_hba.conf entry" + cubic(6000) + "\nsecond line"
    error = attempt(lab, user=f"sec{mark}r", dbname="postgres", replication=payload)
    assert 'invalid value for parameter "replication"' in error
    lines = lines_of(logged_since(lab, offset), f"sec{mark}")
    text = "".join(lines)
    # user and database names are cut to NAMEDATALEN - 1 = 63 bytes; application_name only
    # appears after authentication (connection authorized), so never here
    assert f'user "sec{mark}u' + "u" * (63 - len(f"sec{mark}u")) + '"' in text
    assert f"@sec{mark}d" + "d" * (63 - len(f"sec{mark}d")) + " FATAL" in text
    assert f"sec{mark}a" not in text
    fatal = next(line for line in lines if 'parameter "replication"' in line)
    assert len(fatal) > 6000 and fatal.rstrip("\n").endswith("x"), fatal[:300]
    assert "\tsecond line\"\n" in lines

    # a hundred copies of the real lines within the bound...
    many = tmp_path / "many.log"
    many.write_text(text * 100)
    cpu, result = timed_scan(many)
    assert cpu < BOUND_S, f"{cpu:.2f} s of CPU for 100 copies of the lab's pre-auth lines"
    assert result["lines_scanned"] == 100 * len(lines)
    # ...and the module on them once: the three password failures; a FATAL that only
    # contains the words of one (the replication value) is none
    once = tmp_path / "once.log"
    once.write_text(text)
    result, _output = module_scan(lab, tmp_path, once)
    assert result["failures"] == 3, result["roles"]
    assert result["truncated"] is False and result["dropped"]["long_lines"] == 0


def _fatal(msg: str, pid: int = 77, user: str = "u") -> str:
    return PREFIX.format(pid=pid, user=user) + f"FATAL:  {msg}\n"


def _detail(msg: str, pid: int = 77, user: str = "u") -> str:
    return PREFIX.format(pid=pid, user=user) + f"DETAIL:  {msg}\n"


# lines in the lab's exact format, each built against one of the old matchers; {n} is the
# length of the crafted part, {i} tells copies apart (a new role each, so each is sampled)
CRAFTED = {
    "hba_role": lambda n, i: [_fatal(f'no pg_hba.conf entry for host "10.0.0.7", user "u{i}'
                                     + cubic(n))],
    "replication_value": lambda n, i: [_fatal('invalid value for parameter "replication": '
                                              '"no pg_hba.conf entry' + cubic(n))],
    "role_at_end": lambda n, i: [_fatal('password authentication failed for user "'
                                        + 'for role "' * (n // 10) + "x")],
    "detail_reason": lambda n, i: [_fatal(f'password authentication failed for user "u{i}"', i),
                                   _detail('Role "' * (n // 6), i)],
    "url_in_sample": lambda n, i: [PREFIX.format(pid=i, user="postgres://a:" * (n // 13))
                                   + f'FATAL:  password authentication failed for user "u{i}"\n'],
}


@pytest.mark.parametrize("size", [16000, 65536], ids=["16KB", "64KB"])
@pytest.mark.parametrize("pattern", sorted(CRAFTED))
def test_crafted_lines_scan_in_linear_time(pattern, size, tmp_path):
    log = tmp_path / "crafted.log"
    lines = [line for i in range(100) for line in CRAFTED[pattern](size, i)]
    log.write_text("".join(lines))
    cpu, result = timed_scan(log)
    assert cpu < BOUND_S, f"{cpu:.2f} s of CPU for 100 lines of {pattern} ({size} chars)"
    assert result["lines_scanned"] == len(lines)
    longer = sum(len(line) - 1 > LINE_LIMIT for line in lines)
    # a line over the bound is counted and not read; one under it is read
    assert result["dropped"]["long_lines"] == longer
    assert result["truncated"] is any(result["dropped"].values())


def test_a_long_line_is_counted_and_its_rest_never_read(lab, tmp_path):
    """A chunked reader must not hand on the rest of a cut line as lines of their own: the
    rest starts wherever the client wants it to."""
    forged = PREFIX.format(pid=9, user="victim") + \
        'FATAL:  password authentication failed for user "victim"'
    head = PREFIX.format(pid=5, user="x") + "LOG:  statement: SELECT '"
    body = head.ljust(LINE_LIMIT + 1, "a")
    for _chunk in range(3):  # where each further chunk of LINE_LIMIT + 1 starts
        body += forged.ljust(LINE_LIMIT + 1, " ")
    log = tmp_path / "long.log"
    log.write_text(body + "'\n" + _fatal('password authentication failed for user "after"', 6))
    result, _output = module_scan(lab, tmp_path, log)
    assert list(result["roles"]) == ["after"]
    assert result["lines_scanned"] == 2
    assert result["dropped"]["long_lines"] == 1 and result["truncated"] is True


# -- bounded memory ---------------------------------------------------------------------------

def _peak_mb(lines) -> tuple[float, dict]:
    from ansible_collections.credops.pgauth.plugins.module_utils.logscan import Scanner
    tracemalloc.start()
    try:
        scanner = Scanner()
        for line in lines:
            scanner.feed(line)
        result = scanner.result()
        return tracemalloc.get_traced_memory()[1] / 2**20, result
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_with_100k_attacker_chosen_roles():
    def lines():
        for i in range(100_000):
            user = f"attacker-chosen-role-{i:06d}"
            yield _fatal(f'password authentication failed for user "{user}"', 1000 + i, user)
            yield _detail(f'Role "{user}" does not exist.', 1000 + i, user)
    peak, result = _peak_mb(lines())
    assert peak < 16, f"{peak:.1f} MB peak for 100k role names"
    assert result["failures"] == 100_000
    assert result["truncated"] is True
    assert len(result["roles"]) == MAX_ROLES
    assert result["dropped"]["role_events"] == 100_000 - MAX_ROLES


def test_memory_stays_bounded_with_100k_processes_waiting_for_a_detail():
    """log_error_verbosity = terse logs no DETAIL: 100k failures in one second would each wait
    for one."""
    def lines():
        for i in range(100_000):
            yield _fatal('password authentication failed for user "app"', 10 + i, "app")
    peak, result = _peak_mb(lines())
    assert peak < 16, f"{peak:.1f} MB peak for 100k waiting processes"
    assert result["roles"]["app"]["failures"] == 100_000
    # the old scanner forgot them silently; now the result says it is incomplete
    assert result["dropped"]["pending_events"] == 100_000 - PENDING_LIMIT
    assert result["truncated"] is True


# -- forged DETAIL lines ----------------------------------------------------------------------

def test_a_forged_detail_cannot_pose_as_another_logins_reason(lab, temp_role, tmp_path):
    victim = temp_role(f"secv_{secrets.token_hex(3)}", password=secrets.token_urlsafe(16))
    offset = log_offset(lab)
    attempt(lab, user=victim, dbname="postgres")  # a wrong password: the real failure
    fatal = next(line for line in logged_since(lab, offset)
                 if f'FATAL:  password authentication failed for user "{victim}"' in line)
    ts, pid = fatal[:27], fatal[29:fatal.index("]")]
    forged = f'Role "{victim}" does not exist.'
    # 1. a user name that starts a new line: its FATAL's prefix breaks, and the tab-indented
    #    rest of its message came right after the victim's lines (the old scanner gave a
    #    continuation line to the last process it had parsed)
    attempt(lab, user=f"\n{forged}", dbname="postgres")
    # 2. a complete DETAIL line of the victim's process and timestamp, from the user and
    #    database names of the prefix (63 bytes each)
    attempt(lab, user=f"\n{ts} [{pid}] x", dbname=f"y DETAIL:  {forged}\n")
    lines = logged_since(lab, offset)
    # the attack really reached the log as crafted
    assert f"\t{forged}\"\n" in lines
    assert f"{ts} [{pid}] x@y DETAIL:  {forged}\n" in lines
    log = tmp_path / "forged.log"
    log.write_text("".join(lines))
    result, _output = module_scan(lab, tmp_path, log, role=victim)
    stats = result["roles"][victim]
    assert stats["failures"] == 1
    # the real reason: PostgreSQL's own DETAIL (only the hba line: a wrong password)
    assert stats["by_reason"] == {"store_password_mismatch": 1}, stats["by_reason"]
    assert len(stats["hba_lines"]) == 1 and sum(stats["hba_lines"].values()) == 1
