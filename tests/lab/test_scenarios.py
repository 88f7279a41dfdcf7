"""Every lab scenario puts the lab into its incident: the app's primary credential, probed
the way the app uses it, fails (or works) exactly as that incident does."""
from __future__ import annotations

import pytest
from labfixtures import lab_store_options, run_labctl, scenario

from ansible_collections.credops.pgauth.plugins.module_utils.pg import probe
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import read_credential

# scenario -> what a login with Secrets Manager's credential says
PROBE_OF_PRIMARY = {
    "healthy": "ok",
    "password_mismatch": "store_password_mismatch",
    "role_missing": "store_password_mismatch",
    "role_cannot_login": "role_cannot_login",
    "role_password_expired": "store_password_mismatch",
    "role_password_missing": "store_password_mismatch",
    "role_password_hash_incompatible": "store_password_mismatch",
    "connection_limit_reached": "connection_limit_reached",
    "store_placeholder_password": "store_password_mismatch",
    "stores_disagree": "ok",
    "store_dsn_invalid": "ok",
    "store_unreadable": "ok",
    "database_missing": "database_missing",
    "server_unreachable": "server_unreachable",
    "iam_role_blocks_password": "iam_role_blocks_password",
    "iam_role_not_granted": "iam_role_not_granted",
    "iam_disabled_on_instance": "ok",  # the database accepts the token; the flag is AWS-side
    "iam_tls_missing": "iam_tls_missing",
    "auth_failures_in_logs": "ok",
    "tls_required": "tls_required",
    "no_hba_entry": "no_hba_entry",
    "iam_token_stale": "ok",            # a fresh token logs in; the log shows the stale one
    "iam_policy_denies_connect": "ok",  # the operator's key may connect; the app's role not
    "database_connect_denied": "database_connect_denied",
    "database_not_accepting": "database_not_accepting",
    "role_password_expiring": "ok",
    "store_target_mismatch": "ok",      # the primary is right; the app's DATABASE_URL is not
    "store_unreadable_missing": "ok",   # the primary is right; the Vault path is the typo
    "rotation_incomplete": "store_password_mismatch",  # AWSCURRENT is stale
    "store_password_whitespace": "ok",  # the primary is right; Vault has the newline
    "rotation_conflict": "ok",          # today's logins work; the next rotation would not
    "server_too_many_clients": "server_too_many_clients",
    "login_failed": "unknown",          # no finding of its own: the invariant's login_failed
    # the app's login goes through PgBouncer, whose auth_file has the old verifier
    "pooler_auth_stale": "store_password_mismatch",
    # the same outage, with the credential in a Secret manifest and a .properties file
    "password_mismatch_k8s_properties": "store_password_mismatch",
}
IAM_SCENARIOS = {"iam_role_blocks_password", "iam_role_not_granted",
                 "iam_disabled_on_instance", "iam_tls_missing", "iam_token_stale",
                 "iam_policy_denies_connect"}


def test_every_scenario_is_covered():
    listed = {line.split()[0] for line in run_labctl("scenarios").stdout.splitlines()}
    assert listed == set(PROBE_OF_PRIMARY)


@pytest.mark.parametrize("name", sorted(PROBE_OF_PRIMARY))
def test_scenario_probe(name, lab):
    if name in IAM_SCENARIOS and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    with scenario(name) as meta:
        # scenarios are named after the finding diagnose names first (a second scenario of
        # one id carries a suffix: store_unreadable_missing)
        named = {"password_mismatch": "store_password_mismatch",
                 "password_mismatch_k8s_properties": "store_password_mismatch",
                 "store_unreadable_missing": "store_unreadable"}.get(name, name)
        assert meta["expect"] == ([] if name == "healthy" else [named])
        options = lab_store_options(lab)
        cred = read_credential({"store": meta["stores"][0], "stage": "current"}, options)
        params = {**options, "login_host": cred.host, "login_port": cred.port,
                  "login_db": cred.dbname,
                  "ssl_mode": cred.sslmode or meta["target"]["sslmode"],
                  "ssl_rootcert": meta["target"]["sslrootcert"], "connect_timeout": 5,
                  "login_iam": cred.auth == "iam"}
        result = probe(params, cred.username, cred.password)
    assert result.category == PROBE_OF_PRIMARY[name], result.message
