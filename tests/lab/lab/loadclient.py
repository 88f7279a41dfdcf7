"""Client load during a rotation: what an application sees.

N workers loop: read the credential from a store, connect, SELECT 1, close.  A worker whose
login fails re-reads its store and tries again at once.  The workers spread over the
stores (as different applications read different copies), and the report says how many
logins failed and the longest time any worker went without a working login.

A worker may take a route: {"name", "host", "port"} it connects to instead of the
host/port its credential names (a pooler in front of the database, PgBouncer in the lab);
the report counts each route apart.  mark() starts a second count (after a rotation), so a
test can tell whether every worker logged in again, and how many failed since.

Used by the rotate tests (tests/lab) and by bench/.  Needs the collection on sys.path
(the store code reads the stores exactly as the modules do).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg2


@dataclass
class WorkerStats:
    attempts: int = 0
    ok: int = 0
    failed: int = 0
    read_errors: int = 0
    longest_gap: float = 0.0      # last working login -> next working login
    longest_window: float = 0.0   # start of the first failed attempt -> next working login
    failure_messages: dict = field(default_factory=dict)
    ok_since_mark: int = 0
    failed_since_mark: int = 0


class ClientLoad:
    """with ClientLoad(stores, options, login) as load: ...; then load.report()."""

    def __init__(self, store_specs: list[dict], store_options: dict, login: dict,
                 workers: int = 8, pause: float = 0.0, routes: list[dict | None] | None = None):
        self.store_specs, self.store_options = store_specs, store_options
        self.login = login  # host, port, dbname, sslmode, sslrootcert
        self.workers = workers
        self.pause = pause
        # routes[i]: worker i's {"name", "host", "port"}, None (or missing): the credential's
        self.routes = [(routes or [])[index] if index < len(routes or []) else None
                       for index in range(workers)]
        self.stats = [WorkerStats() for _worker in range(workers)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = self.stopped = 0.0
        self.marked: float | None = None

    def __enter__(self) -> ClientLoad:
        self.started = time.monotonic()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.3)  # every worker has logged in at least once before the rotation
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.stopped = time.monotonic()

    def mark(self) -> None:
        """From now on ok_since_mark / failed_since_mark count (e.g. once a rotation ended)."""
        for stats in self.stats:
            stats.ok_since_mark = stats.failed_since_mark = 0
        self.marked = time.monotonic()

    def wait_until_every_worker_logged_in(self, timeout: float = 10) -> bool:
        """Since mark(): True once every worker had a working login, False at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(stats.ok_since_mark for stats in self.stats):
                return True
            time.sleep(0.05)
        return all(stats.ok_since_mark for stats in self.stats)

    def _work(self, index: int) -> None:
        from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
        stats = self.stats[index]
        # one Store per worker: no client object is shared between threads
        store = Store(self.store_specs[index % len(self.store_specs)], self.store_options)
        last_ok = time.monotonic()
        failing_since = None
        while not self._stop.is_set():
            attempt_started = time.monotonic()
            try:
                cred, _stored = store.read("current")
            except Exception:  # noqa: BLE001 - a store error is a failed attempt, whatever it is
                stats.read_errors += 1
                cred = None
            stats.attempts += 1
            if cred is not None and self._connect(cred, stats, self.routes[index]):
                stats.ok += 1
                stats.ok_since_mark += 1
                now = time.monotonic()
                if failing_since is not None:
                    stats.longest_gap = max(stats.longest_gap, now - last_ok)
                    stats.longest_window = max(stats.longest_window, now - failing_since)
                last_ok, failing_since = now, None
            else:
                stats.failed += 1
                stats.failed_since_mark += 1
                failing_since = failing_since or attempt_started
            if self.pause:
                time.sleep(self.pause)
        if failing_since is not None:
            stats.longest_gap = max(stats.longest_gap, time.monotonic() - last_ok)
            stats.longest_window = max(stats.longest_window, time.monotonic() - failing_since)

    def _connect(self, cred, stats: WorkerStats, route: dict | None = None) -> bool:
        host = route["host"] if route else cred.host or self.login["host"]
        port = route["port"] if route else cred.port or self.login["port"]
        try:
            conn = psycopg2.connect(
                host=host, port=port,
                dbname=cred.dbname or self.login["dbname"], user=cred.username,
                password=cred.password, sslmode=self.login.get("sslmode", "verify-full"),
                sslrootcert=self.login.get("sslrootcert"), connect_timeout=5,
                application_name="pgauth-loadclient")
        except psycopg2.OperationalError as err:
            text = str(err).strip().splitlines()[0][:120]
            stats.failure_messages[text] = stats.failure_messages.get(text, 0) + 1
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except psycopg2.Error as err:
            # a pooler may accept the login and then lose the server connection behind it:
            # a failed attempt too, not a dead worker
            text = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(
                err).__name__
            stats.failure_messages[text] = stats.failure_messages.get(text, 0) + 1
            return False
        finally:
            conn.close()

    def route_name(self, index: int) -> str:
        route = self.routes[index]
        if route is None:
            return "direct"
        return route.get("name") or f"{route['host']}:{route['port']}"

    def by_route(self) -> dict:
        """Per route: workers, logins, failed logins (overall and since mark())."""
        found: dict = {}
        for index, stats in enumerate(self.stats):
            row = found.setdefault(self.route_name(index), {
                "workers": 0, "logins_ok": 0, "failed_logins": 0, "ok_since_mark": 0,
                "failed_since_mark": 0, "workers_ok_since_mark": 0})
            row["workers"] += 1
            row["logins_ok"] += stats.ok
            row["failed_logins"] += stats.failed
            row["ok_since_mark"] += stats.ok_since_mark
            row["failed_since_mark"] += stats.failed_since_mark
            row["workers_ok_since_mark"] += bool(stats.ok_since_mark)
        return found

    def report(self) -> dict:
        messages: dict = {}
        for stats in self.stats:
            for text, count in stats.failure_messages.items():
                messages[text] = messages.get(text, 0) + count
        return {
            "workers": self.workers,
            "seconds": round(self.stopped - self.started, 3),
            "attempts": sum(stats.attempts for stats in self.stats),
            "logins_ok": sum(stats.ok for stats in self.stats),
            "failed_logins": sum(stats.failed for stats in self.stats),
            "store_read_errors": sum(stats.read_errors for stats in self.stats),
            "longest_gap_ms": round(1000 * max(stats.longest_gap for stats in self.stats), 1),
            "longest_window_ms": round(
                1000 * max(stats.longest_window for stats in self.stats), 1),
            "failure_messages": messages,
            "routes": self.by_route(),
        }
