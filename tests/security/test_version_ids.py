"""Item 7 of the security review: Secrets Manager version ids were a password oracle.

A write's ClientRequestToken becomes the new VersionId, which anyone allowed DescribeSecret or
ListSecretVersionIds (or reading CloudTrail, our results, rotate.json) sees without reading
the secret.  It was uuid5(namespace, "secret_id|stage|previous version|sha256(value)"): every
input but the value is visible, so a human-chosen password could be guessed offline.  Here
the module writes such a password on the lab's moto, and the attacker guesses it from the
visible ids with the old formula.  The writes must still be made once: retried by botocore,
called again after a lost answer, or re-run after a crash.
"""
from __future__ import annotations

import contextlib
import hashlib
import sys
import uuid
from pathlib import Path

import pytest
from labfixtures import lab_client, lab_store_options
from secsupport import registered_results

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    encode,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

BIN = Path(sys.executable).parent
# the constant the old code published (plugins/module_utils/store_aws.py at 5696bdd): an
# attacker reads it from the collection's source
OLD_NAMESPACE = uuid.UUID("6f1c7d3e-6a43-4f0e-9d58-3c1f3b1f0a51")
USER = "app_user"
# what people choose, the real ones among them (an attacker's list has millions more)
DICTIONARY = ["password", "Passw0rd!", "Welcome1", "Summer2024!", "Autumn2024!",
              "Winter2025!", "Spring2025!", "changeme", "app_user123", "Company2025!",
              "Qwerty123!", "letmein", "P@ssw0rd", "Admin123!", "Hunter2!"]
FIRST, SECOND = "Summer2024!", "Winter2025!"


def old_token(secret_id: str, stage: str, previous: str, value: str) -> str:
    """The old store_aws._token, re-implemented from its published source."""
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(OLD_NAMESPACE, f"{secret_id}|{stage}|{previous}|{digest}"))


def candidates(guess: str) -> list[str]:
    """The SecretString the module would write for a guessed password, in each format (the
    username is the role's name: no secret)."""
    return [guess, encode(Credential(username=USER, password=guess), "json", None,
                          as_text=True)]


def guess_passwords(secret_id: str, visible_ids: set[str]) -> dict[str, str]:
    """The attack: every visible version id tested against every guess, stage and previous
    version.  Returns version id -> the password it gave away."""
    found = {}
    for guess in DICTIONARY:
        for value in candidates(guess):
            for stage in ("current", "pending"):
                for previous in ("", *visible_ids):
                    token = old_token(secret_id, stage, previous, value)
                    if token in visible_ids:
                        found[token] = guess
    return found


def run_tasks(lab: dict, tmp_path: Path, tasks: list[dict], name: str) -> list[dict]:
    """The tasks in a playbook on localhost, as an operator runs them (the modules from the
    collection copy); the registered result of each task."""
    return registered_results(lab, tmp_path, tasks, name)[0]


def write_task(secret_id: str, fmt: str, password: str, stage: str = "current") -> dict:
    return {"name": f"write {stage}", "credops.pgauth.secret_value": {
        "store": {"name": "sm-oracle", "type": "aws_secretsmanager", "secret_id": secret_id,
                  "format": fmt},
        "value": {"username": USER, "password": password}, "stage": stage}}


def visible_ids(lab: dict, secret_id: str) -> set[str]:
    """What DescribeSecret and ListSecretVersionIds show without GetSecretValue."""
    sm = lab_client(lab, "secretsmanager")
    described = set(sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"])
    listed = {v["VersionId"] for v in sm.list_secret_version_ids(
        SecretId=secret_id, IncludeDeprecated=True)["Versions"]}
    return described | listed


@pytest.fixture
def secret_id(lab):
    """A new secret's name; the secret (with its guessable passwords) goes afterwards."""
    name = f"security/version-ids/{uuid.uuid4().hex[:8]}"
    yield name
    sm = lab_client(lab, "secretsmanager")
    with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


@pytest.mark.parametrize("fmt", ["password", "json"])
def test_version_ids_do_not_give_away_a_chosen_password(lab, tmp_path, fmt, secret_id):
    results = run_tasks(lab, tmp_path, [write_task(secret_id, fmt, FIRST),
                                        write_task(secret_id, fmt, SECOND, "pending")], "oracle")
    assert all(not r.get("failed") for r in results), results
    ids = visible_ids(lab, secret_id)
    # the ids the task results show (and rotate.json, CloudTrail) are the same ones
    assert {r["version"] for r in results} <= ids and len(ids) == 2
    given_away = guess_passwords(secret_id, ids)
    assert given_away == {}, f"version ids give the passwords away: {sorted(given_away.values())}"
    # and no id is a uuid5 at all (of whatever function of the value someone might use)
    assert {uuid.UUID(version).version for version in ids} == {4}


def test_the_same_value_written_twice_makes_one_version(lab, tmp_path, secret_id):
    first, again = run_tasks(lab, tmp_path, [write_task(secret_id, "json", FIRST),
                                             write_task(secret_id, "json", FIRST)], "twice")
    assert first["changed"] and not again["changed"]
    assert again["version"] == first["version"]
    assert visible_ids(lab, secret_id) == {first["version"]}


def _store(lab: dict, secret_id: str) -> Store:
    return Store({"name": "sm-retry", "type": "aws_secretsmanager", "secret_id": secret_id},
                 lab_store_options(lab))


def _versions(lab: dict, secret_id: str) -> list[str]:
    return [v["VersionId"] for v in lab_client(lab, "secretsmanager").list_secret_version_ids(
        SecretId=secret_id, IncludeDeprecated=True)["Versions"]]


class Crash(Exception):
    """The process dies after Secrets Manager took the write, before the answer was used."""


@pytest.mark.parametrize("stage", ["current", "pending"])
def test_a_rerun_after_a_crash_makes_no_second_version(lab, stage, secret_id):
    store = _store(lab, secret_id)
    store.write(store.plan_write({"username": USER, "password": FIRST}))
    plan = store.plan_write({"password": SECOND}, stage)

    def crash(**_kwargs):
        raise Crash

    # after-call: the request reached moto and was applied, then the run "dies"
    store._backend.sm.meta.events.register("after-call.secretsmanager.PutSecretValue", crash)
    with pytest.raises(Crash):
        store.write(plan, stage)
    written = _versions(lab, secret_id)
    assert len(written) == 2
    # the next run starts afresh: a new client, and the plan the crashed run had made (a
    # rotation resuming reads the pending value; a caller may also simply call write again)
    rerun = _store(lab, secret_id)
    assert not rerun.plan_write({"password": SECOND}, stage).changed
    version = rerun.write(plan, stage)
    assert _versions(lab, secret_id) == written and version in written
    assert rerun.read(stage)[0].password == SECOND


def test_botocore_retries_of_one_write_make_one_version(lab, secret_id):
    """A random token per write call is enough for botocore's own retries: it sends the same
    request (and token) again.  The first answer is thrown away as if the connection broke."""
    store = _store(lab, secret_id)
    store.write(store.plan_write({"username": USER, "password": FIRST}))
    tries: list[int] = []

    def lose_first_answer(attempts: int, **_kwargs):
        tries.append(attempts)
        return 0 if attempts == 1 else None  # 0: retry now, None: botocore decides

    store._backend.sm.meta.events.register_first("needs-retry.secretsmanager.PutSecretValue",
                                                 lose_first_answer)
    version = store.write(store.plan_write({"password": SECOND}))
    assert tries[:2] == [1, 2]  # botocore did send it twice
    assert len(_versions(lab, secret_id)) == 2 and version in _versions(lab, secret_id)
