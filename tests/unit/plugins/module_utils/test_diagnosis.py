"""The findings engine on a table of fact sets: the root cause comes first."""
from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import (
    diagnose,
    verdict,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    FINDING_IDS,
)

HEALTHY = {
    "target": {"host": "db", "port": 5432, "dbname": "appdb", "role": "app_user",
               "auth": "password", "sslmode": "verify-full"},
    "admin_error": None,
    "server": {"password_encryption": "scram-sha-256", "ssl": True},
    "role": {"exists": True, "can_login": True, "expired": False, "password_set": True,
             "password_hash": "scram", "conn_limit": -1, "connections": 3,
             "rds_iam_member": False},
    "stores": [
        {"store": "aws", "readable": True, "exists": True, "placeholder": False,
         "password_length": 32, "password_fingerprint": "f1"},
        {"store": "vault", "readable": True, "exists": True, "placeholder": False,
         "password_length": 32, "password_fingerprint": "f1"},
    ],
    "probes": [{"store": "aws", "ok": True, "category": "ok"},
               {"store": "vault", "ok": True, "category": "ok"}],
    "iam": None,
    "logs": {"roles": {"app_user": {"failures": 0, "successes": 10}}},
}
MISMATCH = {"ok": False, "category": "store_password_mismatch", "sqlstate": "28P01"}
LOG_FAILURES = {"roles": {"app_user": {"failures": 12, "by_category": {"password_failed": 12},
                                       "successes": 0}}}


def facts(**changes) -> dict:
    """HEALTHY with dotted-path changes: facts(**{"role.expired": True})."""
    out = copy.deepcopy(HEALTHY)
    for path, value in changes.items():
        node, *keys = path.split(".")
        container = out
        for key in [node, *keys][:-1]:
            container = container[int(key)] if isinstance(container, list) else container[key]
        last = [node, *keys][-1]
        if isinstance(container, list):
            container[int(last)] = value
        else:
            container[last] = value
    return out


def both_fail(**changes):
    return facts(**{"probes.0": {"store": "aws", **MISMATCH},
                    "probes.1": {"store": "vault", **MISMATCH}, "logs": LOG_FAILURES, **changes})


CASES = [
    ("healthy", facts(), []),
    ("classic mismatch: every store stale",
     both_fail(), ["store_password_mismatch"]),
    ("expired role explains every failed store and the logs",
     both_fail(**{"role.expired": True, "role.valid_until": "2001-01-01"}),
     ["role_password_expired"]),
    ("NOLOGIN: the right password, refused after authentication",
     facts(**{"role.can_login": False,
              "probes.0": {"store": "aws", "ok": False, "category": "role_cannot_login"},
              "probes.1": {"store": "vault", "ok": False, "category": "role_cannot_login"},
              "logs": LOG_FAILURES}),
     ["role_cannot_login"]),
    ("no password", both_fail(**{"role.password_set": False}), ["role_password_missing"]),
    ("md5 with SCRAM", both_fail(**{"role.password_hash": "md5"}),
     ["role_password_hash_incompatible"]),
    ("missing role", both_fail(**{"role.exists": False}), ["role_missing"]),
    ("placeholder store explains its own mismatch only",
     facts(**{"stores.0.placeholder": True, "stores.0.password_fingerprint": "f0",
              "probes.0": {"store": "aws", **MISMATCH}}),
     ["store_placeholder_password"]),
    ("stores disagree, vault still works",
     facts(**{"stores.0.password_fingerprint": "old", "probes.0": {"store": "aws", **MISMATCH}}),
     ["stores_disagree"]),
    ("unreadable store",
     facts(**{"stores.1": {"store": "vault", "readable": False,
                           "error": "store 'vault': cannot reach Vault"}}),
     ["store_unreadable"]),
    ("unencoded DATABASE_URL", facts(**{"stores.1": {
        "store": "env", "readable": False, "error_code": "dsn_not_encoded",
        "error": "store 'env': the user or password part has characters that must be "
                 "percent-encoded"}}), ["store_dsn_invalid"]),
    # the decision is on the code: a text that happens to say percent-encoded is not it
    ("an unreadable store whose error mentions percent-encoding", facts(**{"stores.1": {
        "store": "env", "readable": False, "error_code": None,
        "error": "store 'env': cannot read /etc/app/percent-encoded.env"}}),
     ["store_unreadable"]),
    ("password sent to an rds_iam member",
     both_fail(**{"role.rds_iam_member": True,
                  "probes.0": {"store": "aws", "ok": False, "category": "iam_role_blocks_password"},
                  "probes.1": {"store": "vault", "ok": False,
                               "category": "iam_role_blocks_password"}}),
     ["iam_role_blocks_password"]),
    ("token to a non-member", facts(**{"target.auth": "iam",
                                       "role.rds_iam_member": False,
                                       "probes.0": {"store": "aws", "ok": False,
                                                    "category": "iam_role_not_granted"}}),
     ["iam_role_not_granted"]),
    ("an IAM app's stores hold no password, which is not a placeholder",
     facts(**{"target.auth": "iam", "role.rds_iam_member": True,
              "stores.0.placeholder": True, "stores.0.password_length": 0,
              "stores.0.credential": {"auth": "iam"},
              "iam": {"iam_enabled": True, "connect_allowed": True}}),
     []),
    ("IAM disabled on the instance, even if a probe logs in",
     facts(**{"target.auth": "iam", "role.rds_iam_member": True,
              "iam": {"iam_enabled": False, "connect_allowed": True}}),
     ["iam_disabled_on_instance"]),
    ("policy does not allow the app's principal",
     facts(**{"target.auth": "iam", "role.rds_iam_member": True,
              "target.iam_principal_arn": "arn:aws:iam::1:role/app",
              "iam": {"iam_enabled": True, "connect_allowed": False,
                      "connect_arn": "arn:aws:rds-db:r:1:dbuser:db-X/app_user"}}),
     ["iam_policy_denies_connect"]),
    ("IAM without TLS", facts(**{"target.auth": "iam", "target.sslmode": "disable",
                                 "role.rds_iam_member": True,
                                 "iam": {"iam_enabled": True, "connect_allowed": True}}),
     ["iam_tls_missing"]),
    ("worked, then new connections fail: a reused token",
     facts(**{"target.auth": "iam", "role.rds_iam_member": True,
              "iam": {"iam_enabled": True, "connect_allowed": True},
              "logs": {"roles": {"app_user": {
                  "failures": 30, "by_category": {"pam_failed": 30}, "successes": 50,
                  "last_success": "2026-11-22T06:10:00+00:00",
                  "first_failure": "2026-11-22T06:16:00+00:00"}}}}),
     ["iam_token_stale"]),
    ("server down", facts(**{"admin_error": "server_unreachable: connection refused",
                             "admin_error_category": "server_unreachable",
                             "probes.0": {"store": "aws", "ok": False,
                                          "category": "server_unreachable"}}),
     ["server_unreachable"]),
    ("TLS required by hba", facts(**{"probes.0": {"store": "aws", "ok": False,
                                                  "category": "tls_required"}}),
     ["tls_required"]),
    ("connection limit", facts(**{"role.conn_limit": 3, "role.connections": 3}),
     ["connection_limit_reached"]),
    ("failures in the logs only", facts(**{"logs": LOG_FAILURES}), ["auth_failures_in_logs"]),
    # the three setups issue 15 found called healthy
    ("a Vault path with a typo: the secret does not exist",
     facts(**{"stores.1.exists": False, "stores.1.password_fingerprint": None,
              "probes.1": {"store": "vault", "ok": False, "category": "store_unreadable",
                           "message": "store 'vault': no current value"}}),
     ["store_unreadable"]),
    ("CONNECT revoked", facts(**{
        "probes.0": {"store": "aws", "ok": False, "category": "database_connect_denied",
                     "sqlstate": "42501"},
        "probes.1": {"store": "vault", "ok": False, "category": "database_connect_denied",
                     "sqlstate": "42501"}}), ["database_connect_denied"]),
    ("ALLOW_CONNECTIONS false", facts(**{
        "probes.0": {"store": "aws", "ok": False, "category": "database_not_accepting",
                     "sqlstate": "55000"}}), ["database_not_accepting"]),
    ("a failure nothing else explains", facts(**{
        "probes.1": {"store": "vault", "ok": False, "category": "unknown",
                     "message": "LDAP authentication failed for user \"app_user\""}}),
     ["login_failed"]),
    ("no connection slots left", facts(**{
        "probes.0": {"store": "aws", "ok": False, "category": "server_too_many_clients"}}),
     ["server_too_many_clients"]),
    ("a misspelt username in one store",
     facts(**{"stores.1.credential": {"username": "app_usr"},
              "probes.1": {"store": "vault", **MISMATCH}}), ["store_target_mismatch"]),
    ("the clone of alternating_users is the target too",
     facts(**{"stores.1.credential": {"username": "app_user_clone"}}), []),
    ("VALID UNTIL tomorrow", facts(**{"gathered_at": "2026-12-01T10:00:00+00:00",
                                      "role.valid_until": "2026-12-02 10:00:00+00"}),
     ["role_password_expiring"]),
    ("VALID UNTIL next year is no warning",
     facts(**{"gathered_at": "2026-12-01T10:00:00+00:00",
              "role.valid_until": "2027-12-02 10:00:00+00"}), []),
    ("a rotation died between the database and promote",
     both_fail(**{"probes.0": {"store": "aws", **MISMATCH,
                               "pending": {"ok": True, "category": "ok"}},
                  "stores.0.type": "aws_secretsmanager",
                  "stores.0.stages": ["AWSCURRENT"]}), ["rotation_incomplete"]),
    ("an AWSPENDING label left on the current version",
     facts(**{"stores.0.type": "aws_secretsmanager",
              "stores.0.stages": ["AWSCURRENT", "AWSPENDING"]}), ["rotation_incomplete"]),
    ("echo put a newline after the password",
     facts(**{"probes.1": {"store": "vault", **MISMATCH,
                           "whitespace": {"ends": ["trailing"], "characters": ["newline"],
                                          "stripped_matches": True}}}),
     ["store_password_whitespace"]),
    ("whitespace that is not the cause is not named",
     facts(**{"probes.1": {"store": "vault", **MISMATCH,
                           "whitespace": {"ends": ["trailing"], "characters": ["space"],
                                          "stripped_matches": False}}}),
     ["store_password_mismatch"]),
    ("the IAM policy cannot be decided",
     facts(**{"target.auth": "iam", "role.rds_iam_member": True,
              "iam": {"iam_enabled": True, "connect_allowed": None, "decision": "undecided",
                      "reasons": ["permissions_boundary"]}}),
     ["iam_policy_denies_connect"]),
]


@pytest.mark.parametrize(("label", "fact_set", "want"), CASES, ids=[c[0] for c in CASES])
def test_root_cause_first(label, fact_set, want):
    findings = diagnose(fact_set)
    assert [f["id"] for f in findings][:len(want)] == want, label
    assert len(findings) == len(want), [f["id"] for f in findings]


def test_symptoms_are_folded_under_the_root_cause():
    findings = diagnose(both_fail(**{"role.expired": True}))
    assert [f["id"] for f in findings[0]["folded"]] == ["store_password_mismatch",
                                                        "auth_failures_in_logs"]


def test_stale_and_working_stores_are_named():
    finding = diagnose(facts(**{"stores.0.password_fingerprint": "old",
                                "probes.0": {"store": "aws", **MISMATCH}}))[0]
    assert finding["evidence"]["working"] == ["vault"] and finding["evidence"]["stale"] == ["aws"]
    assert finding["fix"] == {
        "runbook": "rotate", "manual": None,
        "extra_vars": {"pgauth_strategy": "single_user", "pgauth_source_store": "vault"},
        "command": "ansible-playbook credops.pgauth.rotate -e @vars.yml -e "
                   "'{\"pgauth_source_store\": \"vault\", \"pgauth_strategy\": \"single_user\"}'"}


def test_fix_command_is_one_shell_word_per_argument():
    import shlex
    command = diagnose(both_fail(**{"role.expired": True}))[0]["fix"]["command"]
    words = shlex.split(command)
    assert words[:5] == ["ansible-playbook", "credops.pgauth.rotate", "-e", "@vars.yml", "-e"]
    assert json.loads(words[5]) == {"pgauth_strategy": "single_user",
                                    "pgauth_valid_until": "infinity"}


def test_verdicts():
    assert verdict(diagnose(facts())) == "healthy"
    assert verdict(diagnose(facts(**{"logs": LOG_FAILURES}))) == "degraded"
    assert verdict(diagnose(both_fail())) == "broken"


def test_every_case_uses_known_ids_and_has_a_fix():
    for _label, fact_set, _want in CASES:
        for finding in diagnose(fact_set):
            assert finding["id"] in FINDING_IDS
            assert finding["fix"]["runbook"] or finding["fix"]["manual"]
            json.dumps(finding)  # reports are JSON


def test_iam_token_stale_never_claims_open_connections_drop():
    stale = next(fact_set for label, fact_set, _want in CASES if "reused token" in label)
    finding = diagnose(stale)[0]
    assert finding["id"] == "iam_token_stale"
    assert "new connections only" in finding["fix"]["manual"]
    assert "stay up" in finding["fix"]["manual"]


def test_store_target_mismatch_names_the_field_and_both_values():
    found = diagnose(facts(**{"stores.1.credential": {"username": "app_usr", "port": 6432},
                              "probes.1": {"store": "vault", **MISMATCH}}))
    mismatch = found[0]
    assert mismatch["id"] == "store_target_mismatch" and mismatch["evidence"]["store"] == "vault"
    fields = {diff["field"]: (diff["store"], diff["target"])
              for diff in mismatch["evidence"]["differences"]}
    assert fields == {"username": ("app_usr", "app_user"), "port": (6432, 5432)}
    assert mismatch["fix"]["runbook"] is None  # an endpoint is the user's to fix


def test_connect_denied_names_the_grant_as_a_command():
    found = diagnose(facts(**{"probes.0": {"store": "aws", "ok": False,
                                           "category": "database_connect_denied"}}))
    assert 'GRANT CONNECT ON DATABASE "appdb" TO "app_user"' in found[0]["fix"]["command"]


def test_login_failed_carries_the_message_and_sqlstate():
    found = diagnose(facts(**{"probes.1": {"store": "vault", "ok": False, "category": "unknown",
                                           "sqlstate": "XX000", "message": "odd failure"}}))
    assert found[0]["id"] == "login_failed"
    assert found[0]["evidence"] == {"stores": ["vault"], "category": "unknown",
                                    "sqlstate": "XX000", "message": "odd failure"}


def test_stores_that_fail_the_same_way_share_one_login_failed():
    ldap = {"ok": False, "category": "unknown", "sqlstate": None,
            "message": 'LDAP authentication failed for user "app_user"'}
    found = diagnose(facts(**{"probes.0": {"store": "aws", **ldap},
                              "probes.1": {"store": "vault", **ldap, "sqlstate": "XX000"}}))
    assert [(f["id"], f["evidence"]["stores"]) for f in found] == [
        ("login_failed", ["aws"]), ("login_failed", ["vault"])]
    found = diagnose(facts(**{"probes.0": {"store": "aws", **ldap},
                              "probes.1": {"store": "vault", **ldap}}))
    assert [(f["id"], f["evidence"]["stores"]) for f in found] == [
        ("login_failed", ["aws", "vault"])]


def test_too_many_clients_names_the_user_holding_the_slots():
    found = diagnose(facts(**{
        "server.connections": 198, "server.max_connections": 200,
        "server.reserved_connections": 3,
        "server.connections_by_user": [{"user": "leaky_worker", "connections": 190},
                                       {"user": "postgres", "connections": 8}],
        "probes.0": {"store": "aws", "ok": False, "category": "server_too_many_clients"}}))
    first = found[0]
    assert first["id"] == "server_too_many_clients"
    assert first["evidence"]["connections_by_user"][0] == {"user": "leaky_worker",
                                                           "connections": 190}
    assert first["fix"]["manual"].startswith("leaky_worker holds 190 of the 198")
    assert "pg_stat_activity" in first["fix"]["command"]
