"""Item 10 of the security review: a store's url / endpoint_url sent the operator's Vault
token and AWS keys wherever the store dict said, in cleartext.

An inventory editor (in AWX: someone who may edit host vars, not the credentials) points a
store at a listener of theirs with http://.  The listener here is that attacker: a TCP
server on an address of this machine that is not loopback, recording every byte it gets.
The operator runs the modules (and the lookup) with the lab's real token and keys from the
environment, as AWX injects them.  Nothing may reach the listener, and each task must fail
naming the store, the endpoint and the opt-in; with the opt-in the requests do arrive (so
the test can see a leak when there is one).
"""
from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import hvac
import pytest
from secsupport import registered_results

BIN = Path(sys.executable).parent
ADDED_ADDRESS = "10.255.0.1"
APPROLE_SECRET = "approle-secret-id-0b7e3c51"  # a stand-in: must not reach the listener either


def _non_loopback_address() -> str | None:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return None
    for address in out.split():
        if "." in address and not address.startswith("127."):
            return address
    return None


@pytest.fixture(scope="module")
def attacker_address():
    """An IPv4 address of this machine that is not loopback: the host's own, else one added
    to lo for the test (a 127.x address would be loopback, which stays allowed)."""
    address = _non_loopback_address()
    if address:
        yield address
        return
    added = subprocess.run(["ip", "addr", "add", f"{ADDED_ADDRESS}/32", "dev", "lo"],
                           capture_output=True, text=True, check=False)
    if added.returncode != 0:
        pytest.skip(f"no non-loopback address here and none can be added: {added.stderr}")
    try:
        yield ADDED_ADDRESS
    finally:
        subprocess.run(["ip", "addr", "del", f"{ADDED_ADDRESS}/32", "dev", "lo"], check=False)


@pytest.fixture
def operator(lab):
    """The lab's settings with a Vault token of its own (the lab's dev token is "root", a
    word any output holds): what the operator's environment gives the modules."""
    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    token = vault.auth.token.create(policies=["default"], ttl="15m")["auth"]["client_token"]
    yield {**lab, "VAULT_TOKEN": token}
    with contextlib.suppress(hvac.exceptions.VaultError):
        vault.auth.token.revoke(token)


class Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str):
        super().__init__((address, 0), RecordingHandler)
        self.received: list[bytes] = []
        self.lock = threading.Lock()


class RecordingHandler(socketserver.BaseRequestHandler):
    """Keeps what one connection sent (headers and body, at most 64 KB) and answers "not
    found" the way Vault or Secrets Manager would, so the clients do not retry."""

    def handle(self) -> None:
        self.request.settimeout(3)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = self.request.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _sep, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < min(length, 65536):
                chunk = self.request.recv(4096)
                if not chunk:
                    break
                body += chunk
                data += chunk
        with self.server.lock:
            self.server.received.append(data)
        if data.split(b" ", 2)[1:2] and data.split(b" ", 2)[1].startswith(b"/v1/"):
            status, kind, answer = "404 Not Found", "application/json", {"errors": []}
        else:
            status, kind = "400 Bad Request", "application/x-amz-json-1.1"
            answer = {"__type": "ResourceNotFoundException", "message": "not here"}
        payload = json.dumps(answer).encode()
        with contextlib.suppress(OSError):
            self.request.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                                 f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                                 .encode() + payload)


@pytest.fixture
def attacker(attacker_address):
    server = Recorder(attacker_address)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    server.url = f"http://{host}:{port}"
    yield server
    server.shutdown()
    server.server_close()


def tasks(url: str, opt_in: bool) -> list[dict]:
    """Every way an endpoint reaches a client: a store's url / endpoint_url, VAULT_ADDR and
    AWS_ENDPOINT_URL in the environment, an AppRole login, and the lookup.  Each addresses a
    path of its own, so the listener's record tells them apart."""
    extra = {"insecure_endpoint_ok": True} if opt_in else {}

    def info(name: str, store: dict, **options) -> dict:
        return {"name": name, "credops.pgauth.secret_value_info": {
            "store": {"name": name, **store}, **options, **extra}}

    lookup_kw = ", insecure_endpoint_ok=true" if opt_in else ""
    return [
        info("vault-store-url", {"type": "vault_kv2", "path": "redirect-vault-store", "url": url}),
        info("aws-store-endpoint", {"type": "aws_secretsmanager",
                                    "secret_id": "redirect-aws-store", "endpoint_url": url}),
        {**info("vault-env-addr", {"type": "vault_kv2", "path": "redirect-vault-env"}),
         "environment": {"VAULT_ADDR": url}},
        {**info("aws-env-endpoint", {"type": "aws_secretsmanager",
                                     "secret_id": "redirect-aws-env"}),
         "environment": {"AWS_ENDPOINT_URL": url}},
        info("vault-approle", {"type": "vault_kv2", "path": "redirect-approle", "url": url},
             auth_method="approle", role_id="redirect-role", secret_id=APPROLE_SECRET),
        {"name": "lookup-store-url",
         "vars": {"pgauth_store": {"name": "lookup-store-url", "type": "vault_kv2",
                                   "path": "redirect-lookup", "url": url}},
         "ansible.builtin.set_fact": {"pgauth_looked_up": (
             "{{ lookup('credops.pgauth.secret_value', pgauth_store" + lookup_kw + ") }}")}},
    ]


MARKERS = {"vault-store-url": b"redirect-vault-store", "aws-store-endpoint": b"redirect-aws-store",
           "vault-env-addr": b"redirect-vault-env", "aws-env-endpoint": b"redirect-aws-env",
           "vault-approle": b"redirect-role", "lookup-store-url": b"redirect-lookup"}


def run_tasks(lab: dict, tmp_path: Path, todo: list[dict], name: str) -> tuple[dict, str]:
    """The tasks as the operator runs them, with the lab's token and keys in the environment
    (as AWX injects credentials); each task's registered result by name, and the output."""
    results, output = registered_results(lab, tmp_path, todo, name, verbosity="-vvv")
    return {task["name"]: result for task, result in zip(todo, results, strict=True)}, output


def leaked(lab: dict, received: list[bytes]) -> list[str]:
    """The credentials found in what the listener received."""
    blob = b"".join(received)
    found = []
    for label, value in (("the Vault token", lab["VAULT_TOKEN"]),
                         ("the AWS access key id", lab["AWS_ACCESS_KEY_ID"]),
                         ("the AppRole secret id", APPROLE_SECRET)):
        if value.encode() in blob:
            found.append(label)
    return found


def test_store_endpoints_do_not_receive_the_operators_credentials(
        operator, tmp_path, attacker):
    lab = operator
    results, output = run_tasks(lab, tmp_path, tasks(attacker.url, opt_in=False), "refused")
    # the attack: did anything reach the listener?
    assert attacker.received == [], (f"the listener received {len(attacker.received)} "
                                     f"request(s), with {leaked(lab, attacker.received)}")
    for name, result in results.items():
        assert result.get("failed"), f"{name}: {result}"
        message = result["msg"]
        assert attacker.url in message and "insecure_endpoint_ok" in message, f"{name}: {message}"
        assert "not loopback" in message, message
        if name in ("vault-store-url", "aws-store-endpoint", "vault-approle", "lookup-store-url"):
            assert f"store {name!r}" in message and "this store's" in message, message
    # and no credential in the output, even at -vvv
    for secret in (lab["VAULT_TOKEN"], lab["AWS_SECRET_ACCESS_KEY"], APPROLE_SECRET):
        assert secret not in output


def test_with_the_opt_in_the_endpoint_is_used(operator, tmp_path, attacker):
    """The opt-in lets the request go: the listener then sees the credentials, which shows
    that the test above would see a leak."""
    lab = operator
    results, _output = run_tasks(lab, tmp_path, tasks(attacker.url, opt_in=True), "opted-in")
    blob = b"".join(attacker.received)
    for name, marker in MARKERS.items():
        assert marker in blob, f"{name} sent nothing with the opt-in: {results[name]}"
    assert leaked(lab, attacker.received) == ["the Vault token", "the AWS access key id",
                                              "the AppRole secret id"]


def test_loopback_http_stays_allowed(lab, tmp_path):
    """The lab's moto and OpenBao are plain http on 127.0.0.1: they keep working, without the
    opt-in."""
    assert lab["VAULT_ADDR"].startswith("http://127.") and \
        lab["AWS_ENDPOINT_URL"].startswith("http://127.")
    results, _output = run_tasks(lab, tmp_path, [
        {"name": "vault", "credops.pgauth.secret_value_info": {
            "store": {"type": "vault_kv2", "path": "lab/app_user"}}},
        {"name": "aws", "credops.pgauth.secret_value_info": {
            "store": {"type": "aws_secretsmanager", "secret_id": "lab/app_user"},
            "fail_on_error": False}},
        {"name": "localhost", "credops.pgauth.secret_value_info": {
            "store": {"type": "vault_kv2", "path": "lab/app_user",
                      "url": lab["VAULT_ADDR"].replace("127.0.0.1", "localhost")}}},
    ], "loopback")
    assert not results["vault"].get("failed"), results["vault"]
    assert not results["localhost"].get("failed"), results["localhost"]
    assert "insecure_endpoint_ok" not in json.dumps(results["aws"]), results["aws"]


def test_an_ambiguous_loopback_url_is_not_loopback(lab, attacker):
    """http://127.0.0.1\\@attacker: one URL parser reads loopback, another the attacker's
    host; such a URL gets no exemption (in-process, with the Store class)."""
    from labfixtures import lab_store_options

    from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError
    host_port = attacker.url.removeprefix("http://")
    for url in (f"http://127.0.0.1\\@{host_port}", f"http://127.0.0.1@{host_port}",
                f"http://localhost:1@{host_port}"):
        spec = {"name": "ambiguous", "type": "vault_kv2", "path": "redirect-ambiguous",
                "url": url}
        with pytest.raises(StoreError, match="insecure_endpoint_ok"):
            Store(spec, lab_store_options(lab)).read()
    assert attacker.received == []


def test_the_listener_is_reachable(attacker):
    """A refused request must be refused by the module, not because the listener cannot be
    reached: a plain connection gets through."""
    host, port = attacker.server_address[:2]
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.sendall(b"GET /v1/probe HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 404")
