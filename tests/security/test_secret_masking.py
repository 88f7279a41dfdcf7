"""Items 4 and 11 (fingerprint keys) of the security review: what a module prints about a
value it was given, and what a fingerprint lets an onlooker test."""
from __future__ import annotations

import json

from secsupport import run_tasks

TYPO_PASSWORD = "Typo-Pw-9f8e7d6c5b4a"


def test_a_misspelt_password_key_is_not_printed(lab, tmp_path):
    """value: {username: app, Password: ...}: the error names the key, and -vvv (the
    invocation's module_args, as AWX job events carry them) does not show the value."""
    config = tmp_path / "app.json"
    config.write_text(json.dumps({"db": {"username": "app", "password": "old-pw-12345678"}}))
    store = {"name": "app-json", "type": "file", "path": str(config), "format": "json",
             "key": "db"}
    done = run_tasks(lab, tmp_path, [{
        "name": "write with a typo", "credops.pgauth.secret_value": {
            "store": store, "value": {"username": "app", "Password": TYPO_PASSWORD}}}],
        verbosity="-vvvv")
    assert done.returncode != 0
    assert "unknown credential field 'Password'" in done.stdout
    assert TYPO_PASSWORD not in done.stdout + done.stderr
    assert json.loads(config.read_text())["db"]["password"] == "old-pw-12345678"


def test_public_fields_of_a_valid_value_stay_readable(lab, tmp_path):
    """The other half: a valid value's username and host are not masked (the fix must not
    just mask everything)."""
    config = tmp_path / "app.json"
    config.write_text(json.dumps({"db": {"username": "app", "password": "old-pw-12345678"}}))
    store = {"name": "app-json", "type": "file", "path": str(config), "format": "json",
             "key": "db"}
    done = run_tasks(lab, tmp_path, [{
        "name": "write", "credops.pgauth.secret_value": {
            "store": store, "value": {"username": "app_reader", "host": "db.internal",
                                      "password": TYPO_PASSWORD}}}], verbosity="-vvvv")
    assert done.returncode == 0, done.stdout[-2000:]
    assert TYPO_PASSWORD not in done.stdout
    assert '"username": "app_reader"' in done.stdout and "db.internal" in done.stdout


def test_a_guessable_fingerprint_key_is_refused(lab, tmp_path):
    """A fixed, known key makes the fingerprint an offline guessing oracle."""
    config = tmp_path / "app.env"
    config.write_text("PGPASSWORD=Human-Chosen-1\n")
    store = {"name": "app-env", "type": "file", "path": str(config), "format": "dotenv",
             "key": "PGPASSWORD"}
    done = run_tasks(lab, tmp_path, [{
        "name": "fingerprint", "credops.pgauth.secret_value_info": {
            "store": store, "fingerprint_key": "itest"}}], verbosity="")
    assert done.returncode != 0
    assert "fingerprint_key must be a random key" in done.stdout
    facts = run_tasks(lab, tmp_path, [{
        "name": "facts with a fixed key", "credops.pgauth.pg_auth_facts": {
            "role": "app_user", "stores": [store], "probe": False,
            "fingerprint_key": "itest"}}], verbosity="")
    assert facts.returncode != 0
    assert "fingerprint_key" in facts.stdout and "Unsupported parameters" in facts.stdout
