"""Helpers of the security suite: run the collection's modules the way a user does (a
playbook on localhost, as root), and play the attacker (a PostgreSQL server that asks for
the password in cleartext, with or without TLS)."""
from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
from pathlib import Path

import yaml
from labfixtures import BUILD

BIN = Path(sys.executable).parent


def run_tasks(lab: dict, tmp_path: Path, tasks: list, *, env: dict | None = None,
              module_defaults: dict | None = None, verbosity: str = "-vvv",
              background: bool = False):
    """ansible-playbook with these tasks on localhost; returns the CompletedProcess (or the
    Popen with background)."""
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if module_defaults:
        play["module_defaults"] = module_defaults
    playbook = tmp_path / f"play-{len(list(tmp_path.glob('play-*.yml')))}.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    full_env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", **(env or {})}
    command = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]
    if verbosity:
        command.append(verbosity)
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=full_env, cwd=tmp_path)
    return subprocess.run(command, capture_output=True, text=True, env=full_env, check=False,
                          cwd=tmp_path, timeout=300)


def registered_results(lab: dict, tmp_path: Path, tasks: list[dict], name: str,
                       verbosity: str = "") -> tuple[list[dict], str]:
    """The tasks in one playbook (each ignore_errors), as an operator runs them; the
    registered result of each task, in order, and the output."""
    out = tmp_path / f"{name}-results.json"
    registered = [{**task, "register": f"pgauth_result_{n}", "ignore_errors": True}
                  for n, task in enumerate(tasks)]
    names = ", ".join(f"pgauth_result_{n}" for n in range(len(tasks)))
    registered.append({"name": "results", "ansible.builtin.copy": {
        "dest": str(out), "mode": "0600", "content": "{{ [" + names + "] | to_json }}"}})
    done = run_tasks(lab, tmp_path, registered, verbosity=verbosity)
    output = done.stdout + done.stderr
    assert out.exists(), output[-4000:]
    return json.loads(out.read_text()), output


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """The attacker's own certificate: any client that does not verify accepts it."""
    cert, key = directory / "evil.crt", directory / "evil.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=evil.invalid", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class CleartextPasswordThief:
    """A fake PostgreSQL server on loopback: it answers the SSL request (no, or yes with its
    own certificate), asks for the password in cleartext and records what it is sent."""

    def __init__(self, tls: tuple[Path, Path] | None = None):
        self.tls = tls
        self.received: list[str] = []
        self.startups = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CleartextPasswordThief:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _addr = self.server.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(5)
            try:
                self._talk(client)
            except (OSError, ssl.SSLError, struct.error):
                pass
            finally:
                client.close()

    @staticmethod
    def _read(conn, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _talk(self, conn) -> None:
        length, code = struct.unpack("!ii", self._read(conn, 8))
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
            if code == 80877103 and self.tls:
                conn.sendall(b"S")
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*map(str, self.tls))
                conn = context.wrap_socket(conn, server_side=True)
            else:
                conn.sendall(b"N")
            length, code = struct.unpack("!ii", self._read(conn, 8))
        self._read(conn, length - 8)  # the startup packet's parameters
        self.startups += 1
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        if kind != b"p":
            return
        (size,) = struct.unpack("!i", self._read(conn, 4))
        self.received.append(self._read(conn, size - 4).rstrip(b"\0").decode(errors="replace"))
        message = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(message) + 4) + message)
