"""The pgbouncer_userlist file store: PgBouncer's auth_file as a store that holds the
password's verifier.  Parsing, writing (only the user's line changes), idempotence, and the
fingerprint a verifier store gets so that diagnosis and verify compare it with the others."""
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose
from ansible_collections.credops.pgauth.plugins.module_utils.promotion import same_secret
from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    make_verifier,
    parse_verifier,
    verify_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import (
    describe,
    fingerprint,
    set_value,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    with_store_credential,
)
from ansible_collections.credops.pgauth.plugins.module_utils.userlist import entry_of, with_entry
from ansible_collections.credops.pgauth.plugins.module_utils.verification import verify_checks
from ansible_collections.credops.pgauth.plugins.module_utils.verifier_stores import (
    assign_verifier_fingerprints,
)

OLD, NEW = "Old-passw0rd-for-app", "New-passw0rd-for-app"
OTHER = '"other" "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"'


def userlist(tmp_path, text, mode=0o640):
    path = tmp_path / "userlist.txt"
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path


def store_for(path, key="app_user", **extra):
    return Store({"name": "bouncer", "type": "file", "format": "pgbouncer_userlist",
                  "path": str(path), "key": key, **extra}, {})


def test_reads_a_scram_verifier_as_a_verifier_never_a_password(tmp_path):
    verifier = make_verifier(OLD, b"0123456789abcdef")
    store = store_for(userlist(tmp_path, f'{OTHER}\n"app_user" "{verifier}"\n'))
    cred, _stored = store.read()
    assert store.holds_verifier
    assert cred.password is None and cred.verifier == verifier and cred.username == "app_user"
    assert verifier not in repr(cred) and cred.public()["holds_verifier"] is True
    info = describe(store, "current", "k" * 64, True)
    assert info["holds_verifier"] and info["placeholder"] is False
    assert verifier not in repr(info) and "password_fingerprint" not in info


def test_md5_is_a_verifier_and_plaintext_a_password(tmp_path):
    md5 = "md5" + "0" * 32
    store = store_for(userlist(tmp_path, f'"app_user" "{md5}"\n"plain" "{OLD}"\n'))
    assert store.read()[0].verifier == md5
    plain = store_for(store.spec["path"], key="plain").read()[0]
    assert plain.password == OLD and plain.verifier is None and plain.username == "plain"


def test_a_missing_line_is_an_error_naming_the_store(tmp_path):
    store = store_for(userlist(tmp_path, f"{OTHER}\n"))
    with pytest.raises(StoreError, match=r"'bouncer'.*no line for user 'app_user'"):
        store.read()


@pytest.mark.parametrize(("extra", "message"), [
    ({"key": None}, "key is required for the pgbouncer_userlist format"),
    ({"key": "a\nb"}, "line break"),
    ({"key": None, "keys": {"password": "app_user"}}, "keys is not for"),
    ({"value_format": "password"}, "value_format is not for"),
])
def test_the_store_dict_is_checked_with_the_stores_name(tmp_path, extra, message):
    with pytest.raises(StoreError, match=message) as err:
        store_for(userlist(tmp_path, ""), **extra)
    assert "'bouncer'" in str(err.value)


def test_a_write_is_a_fresh_verifier_and_every_other_line_stays_byte_for_byte(tmp_path):
    text = ('; pgbouncer users\r\n' + OTHER + '\r\n"app_user" "' + OLD + '"\r\n'
            '"we""ird" "x"  ; trailing\n"last" "y"')
    path = userlist(tmp_path, text)
    store = store_for(path)
    plan = store.plan_write({"password": NEW})
    assert plan.changed  # a plaintext line is upgraded to a verifier
    store.write(plan)
    after = path.read_bytes().decode()
    lines, before = after.split("\n"), text.split("\n")
    assert [line for index, line in enumerate(lines) if index != 2] == \
        [line for index, line in enumerate(before) if index != 2]
    secret = entry_of(after, "app_user")
    assert verify_password(NEW, secret) and NEW not in after and OLD not in after
    assert parse_verifier(secret).iterations == 4096 and len(parse_verifier(secret).salt) == 16
    assert lines[2].endswith("\r")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    # idempotent: the verifier already verifies the password
    assert not store.plan_write({"password": NEW}).changed
    # two writes of a changed password never share a salt
    store.write(store.plan_write({"password": OLD}))
    first = entry_of(path.read_text(), "app_user")
    store.write(store.plan_write({"password": NEW}))
    store.write(store.plan_write({"password": OLD}))
    assert entry_of(path.read_text(), "app_user") != first


def test_a_higher_iteration_count_is_kept(tmp_path):
    path = userlist(tmp_path, f'"app_user" "{make_verifier(OLD, b"s" * 16, 10000)}"\n')
    store = store_for(path)
    store.write(store.plan_write({"password": NEW}))
    secret = entry_of(path.read_text(), "app_user")
    assert parse_verifier(secret).iterations == 10000 and verify_password(NEW, secret)


def test_secret_value_check_mode_writes_nothing_and_the_diff_holds_no_secret(tmp_path):
    verifier = make_verifier(OLD, b"0123456789abcdef")
    text = f'"app_user" "{verifier}"\n'
    path = userlist(tmp_path, text)
    hidden = []
    result = set_value(store_for(path), {"stage": "current", "value": NEW, "generate": None},
                       True, hidden.append)
    assert result["changed"] and path.read_text() == text
    shown = repr(result)
    assert verifier not in shown and NEW not in shown and "SCRAM-SHA-256$" not in shown
    result = set_value(store_for(path), {"stage": "current", "value": NEW, "generate": None},
                       False, hidden.append)
    assert result["changed"] and "SCRAM-SHA-256$" not in repr(result)
    again = set_value(store_for(path), {"stage": "current", "value": NEW, "generate": None},
                      False, hidden.append)
    assert again["changed"] is False


def test_a_user_name_with_quotes_is_doubled_and_a_newline_refused():
    text = with_entry("", 'we"ird', "SCRAM-SHA-256$x")
    assert text == '"we""ird" "SCRAM-SHA-256$x"\n' and entry_of(text, 'we"ird')
    with pytest.raises(Exception, match="line break"):
        with_entry("", "a\rb", "x")


def test_a_login_with_a_verifier_store_is_not_applicable(tmp_path):
    path = userlist(tmp_path, f'"app_user" "{make_verifier(OLD, b"0" * 16)}"\n')
    hidden = []
    with pytest.raises(StoreError, match="not applicable: holds a verifier") as err:
        with_store_credential({"user": "app_user"}, {"store": store_for(path).spec}, hidden.append)
    assert err.value.code == "holds_verifier" and hidden  # the verifier was registered no_log


def test_same_secret_verifies_a_password_against_a_verifier():
    held = Credential(username="app_user", verifier=make_verifier(OLD, b"0" * 16))
    assert same_secret(held, Credential(password=OLD))
    assert same_secret(Credential(username="app_user", password=OLD), held)
    assert not same_secret(held, Credential(password=NEW))
    assert not same_secret(held, Credential(username="other", password=OLD))


KEY = "f" * 64


def _facts(verifier_password: str, probe_ok: bool = True) -> dict:
    creds = {"aws": Credential(username="app_user", password=OLD),
             "bouncer": Credential(username="app_user",
                                   verifier=make_verifier(verifier_password, b"1" * 16))}
    stores = [{"store": "aws", "type": "aws_secretsmanager", "readable": True, "exists": True,
               "placeholder": False, "password_fingerprint": fingerprint(OLD, KEY),
               "credential": {"username": "app_user"}},
              {"store": "bouncer", "type": "file", "readable": True, "exists": True,
               "holds_verifier": True, "placeholder": False,
               "credential": {"username": "app_user", "holds_verifier": True}}]
    assign_verifier_fingerprints(stores, creds, KEY)
    return {"target": {"role": "app_user", "auth": "password"}, "stores": stores,
            "probes": [{"store": "aws", "ok": probe_ok, "category":
                        "ok" if probe_ok else "store_password_mismatch", "probed": True}],
            "role": {"exists": True, "can_login": True, "password_set": True,
                     "password_hash": "scram"},
            "server": {"password_encryption": "scram-sha-256"}}


def test_an_agreeing_verifier_gets_the_passwords_fingerprint_and_is_healthy():
    facts = _facts(OLD)
    assert facts["stores"][1]["password_fingerprint"] == fingerprint(OLD, KEY)
    assert facts["stores"][1]["verified"] is True
    assert diagnose(facts) == []
    checks = {check["check"]: check for check in verify_checks(facts)}
    assert checks["stores_agree"]["ok"] and checks["login:bouncer"]["ok"]
    assert "not applicable" in checks["login:bouncer"]["detail"]
    assert all(check["ok"] for check in checks.values())


def test_a_stale_verifier_is_stores_disagree_naming_it_with_a_rotate_fix():
    facts = _facts(NEW)
    fp = facts["stores"][1]["password_fingerprint"]
    assert fp != fingerprint(OLD, KEY) and fp != fingerprint(NEW, KEY) and len(fp) == 64
    findings = diagnose(facts)
    ids = [item["id"] for item in findings]
    assert "stores_disagree" in ids and "login_failed" not in ids
    disagree = findings[ids.index("stores_disagree")]
    assert disagree["severity"] == "critical"
    assert disagree["evidence"]["stale"] == ["bouncer"] and disagree["evidence"]["working"] == [
        "aws"]
    assert disagree["fix"]["runbook"] == "rotate"
    assert disagree["fix"]["extra_vars"]["pgauth_source_store"] == "aws"
    assert not next(c for c in verify_checks(facts) if c["check"] == "stores_agree")["ok"]


def test_a_verifier_that_agrees_with_a_working_store_is_not_stale():
    facts = _facts(OLD)
    facts["stores"].append({"store": "env", "type": "file", "readable": True, "exists": True,
                            "placeholder": False, "credential": {},
                            "password_fingerprint": fingerprint(NEW, KEY)})
    facts["probes"].append({"store": "env", "ok": False, "category": "store_password_mismatch"})
    disagree = next(item for item in diagnose(facts) if item["id"] == "stores_disagree")
    assert disagree["evidence"]["stale"] == ["env"]
    assert sorted(disagree["evidence"]["working"]) == ["aws", "bouncer"]


def test_verifier_stores_alone_prove_nothing():
    facts = _facts(OLD)
    facts["stores"], facts["probes"] = facts["stores"][1:], []
    assert any(item["id"] == "store_unreadable" and item["severity"] == "warning"
               for item in diagnose(facts))
    assert not next(c for c in verify_checks(facts) if c["check"] == "stores_configured")["ok"]


def test_a_file_pgbouncer_calls_broken_is_an_error_with_its_line(tmp_path):
    verifier = make_verifier(OLD, b"0" * 16)
    store = store_for(userlist(tmp_path, f'; ok\n# not a comment to PgBouncer\n"app_user" '
                                         f'"{verifier}"\n'))
    with pytest.raises(StoreError, match=r"broken auth file.*\(line 2\)") as err:
        store.read()
    assert verifier not in str(err.value)


def test_pg_login_probe_with_a_verifier_store_is_not_applicable(tmp_path, capsys):
    """The module itself: no login tried, no failure, the verifier never in its result."""
    import json

    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.credops.pgauth.plugins.modules import pg_login_probe
    verifier = make_verifier(OLD, b"0" * 16)
    path = userlist(tmp_path, f'"app_user" "{verifier}"\n')
    spec = {"name": "bouncer", "type": "file", "format": "pgbouncer_userlist",
            "path": str(path), "key": "app_user"}
    with patch_module_args({"password_from": {"store": spec}, "login_host": "127.0.0.1",
                            "fail_on_error": True}), pytest.raises(SystemExit) as done:
        pg_login_probe.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert done.value.code == 0 and not result.get("failed"), result
    assert result["applicable"] is False and result["category"] == "not_applicable"
    assert "not applicable: holds a verifier" in result["message"]
    assert verifier not in out and "SCRAM-SHA-256$" not in out


# -- the security review of the format (a subagent) -----------------------------------------

def test_a_commented_out_line_is_neither_read_nor_replaced():
    """PgBouncer skips ';' lines: a stale active line must not be hidden by a commented-out
    line holding the working verifier, and a write keeps the comment."""
    from ansible_collections.credops.pgauth.plugins.module_utils.scram import make_verifier
    working = make_verifier("working-pw-1234", os.urandom(16))
    stale = make_verifier("stale-pw-12345", os.urandom(16))
    text = f'"app_user" "{stale}"\n  ;"app_user" "{working}"\n; a "quote in a comment\n'
    assert entry_of(text, "app_user") == stale
    written = with_entry(text, "app_user", working)
    assert written.splitlines()[1:] == text.splitlines()[1:]
    assert entry_of(written, "app_user") == working


@pytest.mark.parametrize("iterations", [0, 2**31 - 1, 2**63])
def test_a_verifier_of_any_cost_is_checked_at_a_bounded_cost(iterations):
    """Whoever writes the auth_file sets the PBKDF2 cost: 2**31-1 iterations took about 20
    minutes a check, 0 and 2**63 raised.  Above MAX_ITERATIONS nothing is checked."""
    import time

    from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
        encode_verifier,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
        MAX_ITERATIONS,
        holds_password,
        parse_verifier,
    )
    hostile = f"SCRAM-SHA-256${iterations}:c2FsdA==$c3RvcmVk:c2VydmVy"
    started = time.process_time()
    assert holds_password(hostile, "any-password-1", "app_user") is False
    written = encode_verifier(Credential(username="app_user", password="new-pw-123456"),
                              {"username": "app_user", "secret": hostile})
    assert time.process_time() - started < 2.0
    assert 4096 <= parse_verifier(written["secret"]).iterations <= MAX_ITERATIONS


def test_the_databases_verifier_is_written_when_it_holds_the_password():
    """SCRAM pass-through: PgBouncer logs in to the server with its auth_file's verifier,
    which must be the database's own (rotation passes it, verifier_stores)."""
    from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
        encode_verifier,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.scram import make_verifier
    database = make_verifier("new-pw-123456", os.urandom(16))
    old = make_verifier("new-pw-123456", os.urandom(16))  # right password, another salt
    existing = {"username": "app_user", "secret": old}
    cred = Credential(username="app_user", password="new-pw-123456", verifier=database)
    assert encode_verifier(cred, existing)["secret"] == database
    foreign = Credential(username="app_user", password="new-pw-123456",
                         verifier=make_verifier("another-pw-1234", os.urandom(16)))
    assert encode_verifier(foreign, existing)["secret"] == old  # not of this password
