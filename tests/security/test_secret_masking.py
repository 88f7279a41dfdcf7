"""Items 4 and 11 (fingerprint keys) of the security review: what a module prints about a
value it was given, and what a fingerprint lets an onlooker test."""
from __future__ import annotations

import json

from secsupport import registered_results, run_tasks

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


POOLER_ADMIN_PASSWORD = "Pooler-Admin-Pw-5e4d3c2b"
HEALTH_PASSWORD = "Health-Basic-Pw-7a6b5c4d"


def test_secrets_inside_consumer_items_are_masked_whatever_fails(lab, tmp_path):
    """A pgbouncer consumer's inline admin password and a health URL's user:password are in
    no option's no_log (a consumer item's shape depends on its type): a failure before the
    consumers were built (an unreadable login_password_from), an argument error, and a
    plain success all return invocation.module_args, shown at -vvv and kept by AWX. Each
    module path: pg_auth_facts in the worker and as a module process (a task environment
    forces that), and pg_rotate."""
    consumers = [
        {"name": "bouncer", "type": "pgbouncer", "host": "127.0.0.1", "port": 9,
         "admin": {"user": "pgbouncer", "password": POOLER_ADMIN_PASSWORD}},
        {"name": "web", "type": "http",
         "url": f"https://monitor:{HEALTH_PASSWORD}@127.0.0.1:9/healthz"}]
    unreadable = {"store": {"name": "admin-pw", "type": "file", "format": "dotenv",
                            "path": str(tmp_path / "missing.env"), "key": "PGPASSWORD"}}
    store = {"name": "app-env", "type": "file", "format": "dotenv",
             "path": str(tmp_path / "app.env"), "key": "PGPASSWORD"}
    (tmp_path / "app.env").write_text("PGPASSWORD=not-the-one-123\n")
    facts = {"role": "app_user", "stores": [store], "consumers": consumers, "probe": False}
    forced_module_process = {"environment": {"PGAUTH_TEST_MODULE_PROCESS": "1"}}
    tasks = []
    for extra in ({}, forced_module_process):
        tasks += [
            {"name": "facts, early failure", "credops.pgauth.pg_auth_facts": {
                **facts, "login_password_from": unreadable}, **extra},
            {"name": "facts, argument error", "credops.pgauth.pg_auth_facts": {
                **facts, "probe": "maybe"}, **extra},
            {"name": "facts, success", "credops.pgauth.pg_auth_facts": facts, **extra}]
    tasks += [
        {"name": "rotate, early failure", "credops.pgauth.pg_rotate": {
            "role": "app_user", "stores": [store], "consumers": consumers,
            "login_password_from": unreadable}},
        {"name": "rotate, argument error", "credops.pgauth.pg_rotate": {
            "role": "app_user", "stores": [store], "consumers": consumers,
            "force": "maybe"}}]
    results, output = registered_results(lab, tmp_path, tasks, "consumers", verbosity="-vvv")
    assert [bool(result.get("failed")) for result in results] == [
        True, True, False, True, True, False, True, True], [r.get("msg") for r in results]
    assert "admin-pw" in results[0]["msg"] and "admin-pw" in results[6]["msg"]
    # the arguments are shown (so the masking is what keeps the secrets out) ...
    assert output.count('"module_args"') >= 6, output[-3000:]
    assert "127.0.0.1:9/healthz" in output
    # ... and neither secret, nor the health URL's user:password, is anywhere
    for secret in (POOLER_ADMIN_PASSWORD, HEALTH_PASSWORD):
        assert secret not in output
        assert secret not in json.dumps(results)
