"""Log scan throughput: lines/second and peak memory of pg_auth_log_scan's scanner.

    .venv/bin/python bench/logscan_throughput.py [--size-mb 1024]

Generates a PostgreSQL log in the lab's format (mostly statements and connection
lines, one failed login in 50), scans it from disk through the module's own code path
(logsources.file_lines -> logscan.Scanner), and prints the numbers.  Never pass/fail.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / ".build")]

from benchlib import save  # noqa: E402

from ansible_collections.credops.pgauth.plugins.module_utils.logscan import Scanner  # noqa: E402
from ansible_collections.credops.pgauth.plugins.module_utils.logsources import (  # noqa: E402
    file_lines,
)

CONNECT = ("2026-11-22 06:50:29.075 UTC [{pid}] [unknown]@[unknown] LOG:  connection "
           "received: host=10.0.0.{n} port=42378\n")
AUTHORIZED = ("2026-11-22 06:50:29.080 UTC [{pid}] app_user@appdb LOG:  connection authorized: "
              "user=app_user database=appdb SSL enabled (protocol=TLSv1.3)\n")
STATEMENT = ("2026-11-22 06:50:29.090 UTC [{pid}] app_user@appdb LOG:  statement: SELECT id, "
             "name FROM orders WHERE customer_id = 4711 AND created_at > now() - interval "
             "'1 day'\n")
FAILED = ("2026-11-22 06:50:29.084 UTC [{pid}] ghost@appdb FATAL:  password authentication "
          "failed for user \"ghost\"\n")
DETAIL = "2026-11-22 06:50:29.084 UTC [{pid}] ghost@appdb DETAIL:  Role \"ghost\" does not exist.\n"
# one failed login in 25 sessions' worth of lines
BLOCK = [CONNECT, AUTHORIZED, *[STATEMENT] * 46, FAILED, DETAIL]


def generate(path: Path, size_mb: int) -> None:
    target = size_mb * 1024 * 1024
    with open(path, "w", encoding="utf-8") as out:
        written, pid = 0, 1000
        while written < target:
            pid += 1
            chunk = "".join(line.format(pid=pid, n=pid % 250) for line in BLOCK)
            out.write(chunk)
            written += len(chunk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "postgresql.log"
        generate(log, args.size_mb)
        size = os.path.getsize(log)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scanner = Scanner()
        started, cpu = time.perf_counter(), time.process_time()
        for line in file_lines(str(log), None):
            scanner.feed(line)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        result = scanner.result()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    numbers = {
        "bench": "logscan_throughput", "log_mb": round(size / 2**20),
        "lines": result["lines_scanned"],
        "failures_found": result["failures"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "lines_per_s": round(result["lines_scanned"] / wall),
        "mb_per_s": round(size / 2**20 / wall, 1),
        "peak_rss_mb_before_scan": round(rss_before / 1024),
        "peak_rss_mb": round(rss_after / 1024),
    }
    print(f"{numbers['log_mb']} MB, {numbers['lines']:,} lines in {numbers['wall_s']} s: "
          f"{numbers['lines_per_s']:,} lines/s, {numbers['mb_per_s']} MB/s, peak RSS "
          f"{numbers['peak_rss_mb']} MB ({numbers['peak_rss_mb_before_scan']} MB before the "
          "scan)")
    save("logscan_throughput", numbers)


if __name__ == "__main__":
    main()
