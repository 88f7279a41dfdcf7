"""An AWS endpoint that accepts the connection and never answers (a hung proxy, a black-holed
VPC endpoint): every AWS call of the collection ends in bounded time with an error that says
which call could not reach where, never a traceback."""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import describe_database
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError


@contextlib.contextmanager
def silent_endpoint():
    """A TCP listener that takes connections and reads, but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def params_for(lab: dict, endpoint: str) -> dict:
    return {"region": lab["AWS_REGION"], "access_key": lab["AWS_ACCESS_KEY_ID"],
            "secret_key": lab["AWS_SECRET_ACCESS_KEY"], "endpoint_url": endpoint,
            "aws_config": {"read_timeout": 1, "connect_timeout": 1,
                           "retries": {"max_attempts": 1}}}


def test_rds_describe_on_a_silent_endpoint_is_a_clear_error(lab):
    """A read timeout is a BotoCoreError, not a ClientError: it escaped as a traceback."""
    with silent_endpoint() as endpoint:
        started = time.monotonic()
        with pytest.raises(AwsError, match=r"cannot reach RDS at http://127\.0\.0\.1:\d+"):
            describe_database(params_for(lab, endpoint), lab["PGAUTH_LAB_RDS_INSTANCE"], None)
    # bounded by the settings given (1 s, one attempt), with room for a loaded machine; the
    # defaults would wait a 30 s read timeout, retried
    assert time.monotonic() - started < 60


def test_secrets_manager_on_a_silent_endpoint_names_the_store(lab):
    with silent_endpoint() as endpoint:
        store = Store({"name": "sm", "type": "aws_secretsmanager", "secret_id": "lab/app_user",
                       "format": "json"}, params_for(lab, endpoint))
        with pytest.raises(StoreError, match=r"store 'sm' .*cannot reach Secrets Manager"):
            store.read("current")
