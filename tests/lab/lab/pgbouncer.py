"""The lab's PgBouncer: Debian's pgbouncer in front of the lab PostgreSQL.

auth_type scram-sha-256 with an auth_file of SCRAM verifiers (never a plaintext password),
so PgBouncer checks a client's password itself and then logs in to PostgreSQL with the
keys that client's SCRAM exchange gave it.  That only works when the verifier in the
auth_file is the very one in pg_authid (same salt and iterations): a rotation must copy the
database's verifier here, and RELOAD.  The admin console (database `pgbouncer`, user
ADMIN_USER) takes RELOAD, RECONNECT and SHOW.  Server connections use TLS (verify-full
against the lab CA), clients may use TLS with the lab's server certificate.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

import psycopg2

from .procs import pid_alive, port_open, read_pid, wait_for
from .settings import HOST, Lab

ADMIN_USER = "pgbouncer_admin"
BINARY = "/usr/sbin/pgbouncer"


def quote_userlist(text: str) -> str:
    """A userlist.txt field: double quotes, a quote inside doubled."""
    return '"' + text.replace('"', '""') + '"'


class PgBouncer:
    def __init__(self, lab: Lab, pg):
        self.lab, self.pg = lab, pg
        self.root = pg.root / "pgbouncer"
        self.ini = self.root / "pgbouncer.ini"
        self.auth_file = self.root / "userlist.txt"
        self.pidfile = self.root / "pgbouncer.pid"
        self.logfile = self.root / "pgbouncer.log"

    @property
    def port(self) -> int:
        return self.lab.pgbouncer_port

    def pid(self) -> int | None:
        return read_pid(self.pidfile, "pgbouncer")

    # -- lifecycle ---------------------------------------------------------
    def up(self, state: dict) -> None:
        if not Path(BINARY).exists():
            raise RuntimeError(f"{BINARY} is missing: install Debian's pgbouncer package "
                               "(tests/bootstrap.sh does)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self._write_ini()
        if not self.auth_file.exists():
            self.write_auth_file({})
        self.ensure_admin(state)
        if self.pid() is None:
            if port_open(HOST, self.port):
                raise RuntimeError(f"port {self.port} is taken by another process "
                                   "(set PGAUTH_LAB_PGBOUNCER_PORT)")
            self._start()

    def _start(self, attempts: int = 5) -> None:
        """Start the daemon; again when its port was taken meanwhile.  Every lab port lies in
        Linux's ephemeral range (32768-60999), so an outgoing connection of anything on the
        machine can hold it for a moment: pgbouncer then logs 'Address already in use' and
        exits, and waiting for it would only time out."""
        for attempt in range(attempts):
            self.pidfile.unlink(missing_ok=True)
            logged = self.logfile.stat().st_size if self.logfile.exists() else 0
            # -d: pgbouncer daemonizes and writes its pidfile; it runs as postgres
            self.pg._as_pg([BINARY, "-d", "-q", str(self.ini)])

            def failed(since: int = logged) -> bool:
                return self.pid() is None and self._logged_since(since, "FATAL")
            wait_for(lambda: (self.pid() is not None and port_open(HOST, self.port))
                     or failed(), "PgBouncer")
            if not failed():
                return
            time.sleep(0.5 + attempt)
        raise RuntimeError(f"PgBouncer would not start on port {self.port}: "
                           f"{self._logged_since(0, 'FATAL', text=True)}")

    def _logged_since(self, offset: int, word: str, text: bool = False):
        try:
            with self.logfile.open("rb") as log:
                log.seek(offset)
                tail = log.read().decode("utf-8", "replace")
        except OSError:
            tail = ""
        lines = [line for line in tail.splitlines() if word in line or "bind()" in line]
        return " / ".join(lines[-2:]) if text else bool(lines and word in tail)

    def down(self) -> None:
        """pgbouncer -d forks after setsid: its PID leads no process group, so it is
        signalled by PID (SIGTERM, then SIGKILL), not by group."""
        pid = self.pid()
        if pid:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and pid_alive(pid):
                    time.sleep(0.05)
                if not pid_alive(pid):
                    break
        self.pidfile.unlink(missing_ok=True)

    def _chown(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam("postgres")
        for path in paths:
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _write_ini(self) -> None:
        tls = self.pg.tls
        text = f"""; written by labctl
[databases]
* = host={HOST} port={self.lab.pg_port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self.auth_file}
admin_users = {ADMIN_USER}
pool_mode = session
max_client_conn = 200
default_pool_size = 20
server_tls_sslmode = verify-full
server_tls_ca_file = {tls / "ca.crt"}
client_tls_sslmode = allow
client_tls_key_file = {tls / "server.key"}
client_tls_cert_file = {tls / "server.crt"}
client_tls_ca_file = {tls / "ca.crt"}
ignore_startup_parameters = extra_float_digits,options
logfile = {self.logfile}
pidfile = {self.pidfile}
log_connections = 1
; after a failed server login PgBouncer opens no other server connection for that pool for
; server_login_retry seconds (default 15): single_user's switch fails such a login (a client
; still holding the old password, before the auth_file has the new verifier), and a RELOAD
; cancels the server logins under way (server TLS), which counts the same.  The lab takes the
; setting an operator with rotations would take, so its clients wait a second, not fifteen.
server_login_retry = 1
log_disconnections = 1
"""
        if not self.ini.exists() or self.ini.read_text() != text:
            self.ini.write_text(text)
            self._chown(self.ini)

    # -- the auth_file -------------------------------------------------------
    def read_auth_file(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        for line in self.auth_file.read_text().splitlines():
            fields = _fields(line)
            if len(fields) >= 2:
                entries[fields[0]] = fields[1]
        return entries

    def write_auth_file(self, entries: dict[str, str]) -> None:
        """Verifiers only; owned by postgres, mode 0600, as a real deployment keeps it."""
        tmp = self.auth_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{quote_userlist(user)} {quote_userlist(secret)}\n"
                               for user, secret in sorted(entries.items())))
        tmp.chmod(0o600)
        self._chown(tmp)
        tmp.replace(self.auth_file)

    def set_user(self, user: str, verifier: str | None) -> None:
        entries = self.read_auth_file()
        if verifier is None:
            entries.pop(user, None)
        else:
            entries[user] = verifier
        self.write_auth_file(entries)

    def ensure_admin(self, state: dict) -> None:
        entries = self.read_auth_file()
        if entries.get(ADMIN_USER) != admin_verifier(state):
            entries[ADMIN_USER] = admin_verifier(state)
            self.write_auth_file(entries)

    def reset(self, state: dict) -> None:
        """Only the admin user: no app user's verifier is left from an earlier scenario."""
        self.write_auth_file({})
        self.ensure_admin(state)
        if self.pid() is not None:
            self.admin("RELOAD", state)

    def admin(self, command: str, state: dict) -> list[tuple]:
        conn = psycopg2.connect(host=HOST, port=self.port, dbname="pgbouncer", user=ADMIN_USER,
                                password=state["pgbouncer_admin_password"], connect_timeout=5,
                                sslmode="disable")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(command)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it (ASCII passwords: no SASLprep)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
            f"{b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}")


def admin_verifier(state: dict) -> str:
    """The admin console user's verifier, from the lab's persisted password and salt."""
    return scram_verifier(state["pgbouncer_admin_password"],
                          bytes.fromhex(state["pgbouncer_admin_salt"]))


def _fields(line: str) -> list[str]:
    """The quoted fields of a userlist.txt line."""
    out, i = [], 0
    while i < len(line):
        if line[i] != '"':
            i += 1
            continue
        value, i = [], i + 1
        while i < len(line):
            if line[i] == '"':
                if line[i + 1:i + 2] == '"':
                    value.append('"')
                    i += 2
                    continue
                break
            value.append(line[i])
            i += 1
        out.append("".join(value))
        i += 1
    return out


def available() -> bool:
    return shutil.which(BINARY) is not None or Path(BINARY).exists()
