"""The one endpoint check of the AWS and Vault client factories (DESIGN §7): https, or plain
http to loopback, unless insecure_endpoint_ok.  No server is needed: a refused endpoint is
refused before a client sends anything."""
from __future__ import annotations

import uuid

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AWS_ARGSPEC,
    AwsError,
    client,
    endpoint_refusal,
    is_loopback_url,
    shown_url,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError
from ansible_collections.credops.pgauth.plugins.module_utils.store_aws import (
    SecretsManagerBackend,
)
from ansible_collections.credops.pgauth.plugins.module_utils.vault import (
    VAULT_ARGSPEC,
    VaultError,
    vault_client,
)

AWS = {"region": "us-east-1", "access_key": "AKIAUNITTEST0000", "secret_key": "unit-secret-key"}
VAULT = {"token": "hvs.unit-test-token", "auth_method": "token"}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:55000", "http://127.8.9.10", "http://localhost:8200", "HTTP://LOCALHOST",
    "http://[::1]:8200", "https://vault.example.com:8200", "https://secretsmanager.example",
])
def test_allowed(url):
    assert endpoint_refusal(url, "Vault", "url", {}) is None


@pytest.mark.parametrize(("url", "why"), [
    ("http://192.0.2.2:8200", "not loopback"),
    ("http://10.0.0.1", "not loopback"),
    ("http://vault.internal:8200", "not loopback"),
    ("http://localhost.:8200", "not loopback"),            # a resolver decides, not us
    ("http://x.localhost:8200", "not loopback"),
    ("http://127.0.0.1.attacker.example", "not loopback"),
    ("http://0x7f.1:8200", "not loopback"),                # inet_aton reads loopback
    ("http://2130706433:8200", "not loopback"),
    ("http://[::ffff:127.0.0.1]:8200", "not loopback"),
    ("http://127.0.0.1@attacker.example", "user info"),
    ("http://127.0.0.1\\@attacker.example", "user info"),
    ("http://user:pw@127.0.0.1", "user info"),
    ("ftp://127.0.0.1", "scheme is 'ftp'"),
    ("127.0.0.1:8200", "scheme"),
    ("vault.example.com:8200", "scheme"),
])
def test_refused(url, why):
    message = endpoint_refusal(url, "Vault", "this store's url", {})
    assert message and why in message and "insecure_endpoint_ok: true" in message
    assert "this store's url" in message
    # the opt-in allows it
    assert endpoint_refusal(url, "Vault", "url", {"insecure_endpoint_ok": True}) is None


def test_loopback_needs_an_unambiguous_url():
    assert is_loopback_url("http://127.0.0.1:1")
    assert not is_loopback_url("http://127.0.0.1:1 @x")
    assert not is_loopback_url("http://127.0.0.1\t:1")


def test_messages_show_no_user_info_path_or_query():
    url = "http://user:s3cr3t-pw@192.0.2.9:8200/v1/x?token=abc"
    assert shown_url(url) == "http://192.0.2.9:8200"
    message = endpoint_refusal(url, "Vault", "url", {})
    assert "s3cr3t-pw" not in message and "abc" not in message and "192.0.2.9:8200" in message


def test_one_option_in_both_argument_specs():
    assert AWS_ARGSPEC["insecure_endpoint_ok"] == VAULT_ARGSPEC["insecure_endpoint_ok"] == \
        {"type": "bool", "default": False}


def test_vault_client_refuses_before_any_login():
    # an AppRole login would send secret_id: the refusal comes first (no server answers here)
    with pytest.raises(VaultError, match=r"refusing .* Vault at http://192\.0\.2\.9:1 ") as err:
        vault_client({"url": "http://192.0.2.9:1", "auth_method": "approle", "role_id": "r",
                      "secret_id": "unit-approle-secret"})
    assert "unit-approle-secret" not in str(err.value)


def test_aws_client_checks_the_endpoint_botocore_resolves(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LOGS", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    # not only the option: a service-specific variable botocore reads on its own
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://192.0.2.9:1")
    with pytest.raises(AwsError, match="AWS_ENDPOINT_URL_<SERVICE>") as err:
        client(AWS, "secretsmanager")
    assert "unit-secret-key" not in str(err.value) and "AKIAUNITTEST0000" not in str(err.value)
    assert client({**AWS, "insecure_endpoint_ok": True}, "secretsmanager").meta.endpoint_url \
        == "http://192.0.2.9:1"
    # another service keeps its https default
    assert client(AWS, "logs").meta.endpoint_url.startswith("https://")


@pytest.mark.parametrize(("spec", "options", "source"), [
    ({"type": "vault_kv2", "path": "p", "url": "http://192.0.2.9:1"},
     {**VAULT, "url": "http://127.0.0.1:8200"}, "this store's url"),
    ({"type": "vault_kv2", "path": "p"}, {**VAULT, "url": "http://192.0.2.9:1"},
     "the url option or VAULT_ADDR/BAO_ADDR"),
    ({"type": "aws_secretsmanager", "secret_id": "s", "endpoint_url": "http://192.0.2.9:1"},
     {**AWS, "endpoint_url": "http://127.0.0.1:55000"}, "this store's endpoint_url"),
    ({"type": "aws_secretsmanager", "secret_id": "s"},
     {**AWS, "endpoint_url": "http://192.0.2.9:1"}, "the endpoint_url option or AWS_ENDPOINT_URL"),
])
def test_store_errors_name_the_store_the_endpoint_and_where_it_came_from(spec, options, source):
    with pytest.raises(StoreError) as err:
        Store({"name": "redirected", **spec}, options)
    message = str(err.value)
    assert message.startswith("store 'redirected'")
    assert "http://192.0.2.9:1" in message and f"(from {source})" in message
    for secret in ("hvs.unit-test-token", "unit-secret-key"):
        assert secret not in message
    # the opt-in is a module (or lookup) option; a store key cannot give it
    with pytest.raises(StoreError, match="insecure_endpoint_ok"):
        Store({"name": "redirected", **spec, "insecure_endpoint_ok": True}, options)
    Store({"name": "redirected", **spec}, {**options, "insecure_endpoint_ok": True})


def test_secrets_manager_tokens_are_random():
    tokens = {SecretsManagerBackend._token() for _attempt in range(3)}
    assert len(tokens) == 3 and {uuid.UUID(token).version for token in tokens} == {4}
