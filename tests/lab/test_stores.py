"""Store backends against the lab's moto and OpenBao: the faults a module test cannot stage."""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from labfixtures import lab_client, lab_store_options

from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def options(lab):
    return lab_store_options(lab)


def test_kv2_cas_conflict_fails_and_writes_nothing(options, vault):
    spec = {"name": "kv2-cas", "type": "vault_kv2", "path": unique("store-test")}
    store = Store(spec, options)
    store.write(store.plan_write({"username": "a", "password": "one-Pw-11"}))
    plan = store.plan_write({"password": "two-Pw-22"})
    # someone else writes between our read and our write
    vault.secrets.kv.v2.create_or_update_secret(path=spec["path"],
                                                secret={"username": "a", "password": "other"})
    with pytest.raises(StoreError, match=r"store 'kv2-cas'.*CAS mismatch") as err:
        store.write(plan)
    assert "two-Pw-22" not in str(err.value)
    data = vault.secrets.kv.v2.read_secret_version(path=spec["path"],
                                                   raise_on_deleted_version=True)["data"]
    assert data["data"]["password"] == "other" and data["metadata"]["version"] == 2


def test_kv2_soft_deleted_latest_version_reads_as_missing_and_is_rewritable(options, vault):
    spec = {"name": "kv2-deleted", "type": "vault_kv2", "path": unique("store-test")}
    store = Store(spec, options)
    store.write(store.plan_write({"username": "a", "password": "one-Pw-11"}))
    vault.secrets.kv.v2.delete_latest_version_of_secret(path=spec["path"])
    cred, stored = store.read()
    assert cred is None and stored.deleted and stored.version == "1"
    plan = store.plan_write({"username": "a", "password": "two-Pw-22"})
    assert plan.changed
    assert store.write(plan) == "2"
    assert store.read()[0].password == "two-Pw-22"


def test_secrets_manager_retried_write_makes_one_version(options, lab):
    spec = {"name": "aws-retry", "type": "aws_secretsmanager", "secret_id": unique("store-test")}
    store = Store(spec, options)
    store.write(store.plan_write({"username": "a", "password": "one-Pw-11"}))
    plan = store.plan_write({"password": "two-Pw-22"})
    first = store.write(plan)
    again = store.write(plan)  # retried after a lost response: the stage holds it already
    assert first == again
    versions = lab_client(lab, "secretsmanager").list_secret_version_ids(
        SecretId=spec["secret_id"])["Versions"]
    assert len(versions) == 2


def test_secrets_manager_promotion_moves_labels_like_rotation(options, lab):
    spec = {"name": "aws-promote", "type": "aws_secretsmanager", "secret_id": unique("store-test")}
    store = Store(spec, options)
    first = store.write(store.plan_write({"username": "a", "password": "one-Pw-11"}))
    pending = store.write(store.plan_write({"password": "two-Pw-22"}, "pending"), "pending")
    store.promote()
    stages = lab_client(lab, "secretsmanager").describe_secret(
        SecretId=spec["secret_id"])["VersionIdsToStages"]
    assert stages[pending] == ["AWSCURRENT"]
    assert stages[first] == ["AWSPREVIOUS"]
    assert store.read()[0].password == "two-Pw-22" and store.pending() is None


def test_vault_promotion_interrupted_after_the_copy_finishes_on_the_next_run(options, vault):
    spec = {"name": "kv2-resume", "type": "vault_kv2", "path": unique("store-test")}
    store = Store(spec, options)
    store.write(store.plan_write({"username": "a", "password": "one-Pw-11"}))
    store.write(store.plan_write({"password": "two-Pw-22"}, "pending"), "pending")
    pending = store.pending()
    # the copy to <path> happened, the sibling delete did not
    store._backend.write(pending.value, "current", store.read_stored("current"))
    changed, version = store.promote()
    assert changed and version == "2"  # no third version: the value was already current
    assert store.pending() is None and store.read()[0].password == "two-Pw-22"


def test_malformed_and_non_object_json_are_clear_errors(options, lab):
    sm = lab_client(lab, "secretsmanager")
    for text, reason in (('{"password": ', "not valid JSON"), ("[1, 2]", "not an object")):
        name = unique("store-test")
        sm.create_secret(Name=name, SecretString=text)
        with pytest.raises(StoreError, match=rf"store 'bad'.*{re.escape(reason)}"):
            Store({"name": "bad", "type": "aws_secretsmanager", "secret_id": name},
                  options).read()


def test_sealed_vault_is_a_clear_error(options, vault, lab):
    unseal_key = re.findall(r"Unseal Key: (\S+)",
                            (Path(lab["PGAUTH_LAB_DIR"]) / "logs" / "bao.log").read_text())
    if not unseal_key:
        pytest.skip("the dev server's unseal key is not in its log")
    store = Store({"name": "kv2-sealed", "type": "vault_kv2", "path": "x"}, options)
    vault.sys.seal()
    try:
        with pytest.raises(StoreError, match=r"store 'kv2-sealed'.*sealed or down"):
            store.read()
    finally:
        vault.sys.submit_unseal_key(unseal_key[-1])
    assert not vault.sys.is_sealed()


def test_no_store_error_carries_a_secret(options, lab):
    name = unique("store-test")
    lab_client(lab, "secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"password": "visible-Pw-1", "port": "x"}))
    with pytest.raises(StoreError) as err:
        Store({"name": "bad-port", "type": "aws_secretsmanager", "secret_id": name},
              options).read()
    assert "port is not a number" in str(err.value) and "visible-Pw-1" not in str(err.value)


def test_approle_login_and_policy_denial(options, vault):
    if "approle/" not in vault.sys.list_auth_methods()["data"]:
        vault.sys.enable_auth_method("approle")
    prefix = unique("approle-test")
    vault.sys.create_or_update_policy(
        name="pgauth-approle-test",
        policy=f'path "secret/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}\n'
               f'path "secret/metadata/{prefix}/*" {{ capabilities = ["read", "delete"] }}\n')
    vault.auth.approle.create_or_update_approle("pgauth-test",
                                                token_policies=["pgauth-approle-test"])
    role_id = vault.auth.approle.read_role_id("pgauth-test")["data"]["role_id"]
    secret_id = vault.auth.approle.generate_secret_id("pgauth-test")["data"]["secret_id"]
    approle = {**options, "token": None, "auth_method": "approle", "role_id": role_id,
               "secret_id": secret_id}
    allowed = Store({"name": "kv2-approle", "type": "vault_kv2", "path": f"{prefix}/app"}, approle)
    allowed.write(allowed.plan_write({"username": "a", "password": "approle-Pw-1"}))
    assert allowed.read()[0].password == "approle-Pw-1"
    denied = Store({"name": "kv2-denied", "type": "vault_kv2", "path": "elsewhere/app"}, approle)
    with pytest.raises(StoreError, match=r"store 'kv2-denied'.*denied .* by policy"):
        denied.read()
    bad = {**approle, "secret_id": "not-a-secret-id"}
    with pytest.raises(StoreError, match=r"store 'kv2-bad'.*approle login .* failed"):
        Store({"name": "kv2-bad", "type": "vault_kv2", "path": "x"}, bad)
