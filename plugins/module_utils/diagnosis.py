# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts in, findings out: why a role cannot log in, most specific cause first.

Pure functions, no I/O.  ``facts`` is what the diagnose runbook gathers with the modules:

    {"target": {host, port, dbname, role, auth, sslmode, rds_instance_id, ...},
     "admin_error": "<category>: <message>" | None,   # the admin connection itself failed
     "admin_error_category": "<category>" | None,     # what the code below decides on
     "server": pg_role_info.server | None, "role": pg_role_info.role | None,
     "stores": [secret_value_info result, ...],       # first = primary
     "probes": [pg_login_probe result + {"store": name}, ...],
     "iam": rds_iam_info result | None, "logs": pg_auth_log_scan result | None}

A root cause folds the symptoms it explains (``explains``): an expired role explains every
store's failed login, a placeholder explains its store's mismatch, a missing rds_iam grant
explains the 28P01 on a token.  Findings never carry a secret: stores are compared by
the fingerprints secret_value_info returns.
"""
from __future__ import annotations

import shlex

from ansible_collections.credops.pgauth.plugins.module_utils.credential import DSN_NOT_ENCODED
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    SEVERITY_ORDER,
    fix_command,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    finding as _finding,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    manual as _manual,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    rotate as _rotate,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_checks import (
    conflict_findings,
    dsn_rejected_findings,
    expiry_findings,
    invariant_findings,
    pooler_findings,
    rotation_findings,
    split_write_only,
    target_mismatch_findings,
    verifier_only_findings,
    write_only_findings,
)


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted (for the statements a fix names)."""
    return '"' + name.replace('"', '""') + '"'


def app_auth(facts: dict) -> str:
    """How the application logs in: the target says so, or its stores do (a store that says
    auth=iam and none that says password: a role converted by rotate's iam strategy)."""
    if (facts.get("target") or {}).get("auth") == "iam":
        return "iam"
    said = {(store.get("credential") or {}).get("auth") for store in facts.get("stores") or []}
    return "iam" if "iam" in said and "password" not in said else "password"


def _probe_categories(facts: dict) -> dict[str, list[str]]:
    """category -> the stores whose probe failed that way."""
    out: dict[str, list[str]] = {}
    for probe in facts.get("probes") or []:
        if not probe.get("ok"):
            out.setdefault(probe.get("category") or "unknown", []).append(probe.get("store"))
    return out


def _connection_findings(facts: dict, failed: dict) -> list[dict]:
    target, found = facts.get("target") or {}, []
    admin_error = facts.get("admin_error") or ""
    where = f"{target.get('host')}:{target.get('port')}"
    if facts.get("admin_error_category") == "server_unreachable" or "server_unreachable" in failed:
        found.append(_finding("server_unreachable", "critical",
                              {"target": where, "error": admin_error or None,
                               "stores": failed.get("server_unreachable", [])},
                              _manual(f"Check DNS, routes and security groups to {where}; "
                                      "the server must accept TCP connections.")))
    role, dbname = target.get("role"), target.get("dbname")
    if "database_connect_denied" in failed:
        grant = (f'GRANT CONNECT ON DATABASE {quote_ident(dbname or "")} TO '
                 f'{quote_ident(role or "")}')
        found.append(_finding("database_connect_denied", "critical",
                              {"database": dbname, "role": role,
                               "stores": failed["database_connect_denied"]},
                              _manual(f"Grant the role CONNECT on the database (as its owner "
                                      f"or an admin): {grant}",
                                      _admin_psql(target, grant))))
    if "server_too_many_clients" in failed:
        found.append(_too_many_clients(facts, where, failed["server_too_many_clients"]))
    advice = {
        "tls_required": "Connect with sslmode=require or stricter (verify-full with the "
                        "server's CA).",
        "database_not_accepting": f"ALTER DATABASE {quote_ident(dbname or '')} "
                                  "ALLOW_CONNECTIONS true (it was turned off, often for "
                                  "maintenance or before a drop).",
        "no_hba_entry": "Add a pg_hba.conf rule for this host, user and database (on RDS: "
                        "check the parameter group and rds.force_ssl).",
        "database_missing": f"Create database {target.get('dbname')!r} or fix dbname in the "
                            "stores.",
    }
    for fid, text in advice.items():
        if fid in failed:
            found.append(_finding(fid, "critical", {"stores": failed[fid]}, _manual(text)))
    return found


def _admin_psql(target: dict, statement: str) -> str:
    """The psql command line an admin runs a fix's statement with, on the target's server."""
    return (f"psql -h {shlex.quote(str(target.get('host')))} -p {target.get('port') or 5432} "
            f"-d postgres -c {shlex.quote(statement)}")


def _too_many_clients(facts: dict, where: str, stores: list[str]) -> dict:
    server, target = facts.get("server") or {}, facts.get("target") or {}
    holders = server.get("connections_by_user") or []
    top = holders[0]["user"] if holders else None
    query = ("SELECT usename, application_name, client_addr, state, count(*) "
             "FROM pg_stat_activity GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 20")
    lead = (f"{top} holds {holders[0]['connections']} of the {server.get('connections')} "
            "client connections: " if top else "")
    return _finding("server_too_many_clients", "critical",
                    {"target": where, "stores": stores,
                     "connections": server.get("connections"),
                     "max_connections": server.get("max_connections"),
                     "reserved_connections": server.get("reserved_connections"),
                     "connections_by_user": holders or None},
                    _manual(f"{lead}every slot not reserved for superusers is in use. Find the "
                            "client that holds them and fix its pool (or its leak), put a "
                            "pooler in front, or raise max_connections.",
                            _admin_psql(target, query)))


def _role_findings(facts: dict, failed: dict) -> list[dict]:
    role, target, server = facts.get("role"), facts.get("target") or {}, facts.get("server") or {}
    name, found = target.get("role"), []
    if role is None:
        return found
    password_failures = failed.get("store_password_mismatch", [])
    if not role.get("exists"):
        return [_finding("role_missing", "critical", {"role": name},
                         _manual(f"Create the role: credops.pgauth.pg_role name={name} "
                                 "password_from={store: <primary store>}"),
                         ["store_password_mismatch", "auth_failures_in_logs"])]
    if role.get("can_login") is False:
        found.append(_finding("role_cannot_login", "critical", {"role": name},
                              _manual(f"credops.pgauth.pg_role name={name} login=true"),
                              ["role_cannot_login", "auth_failures_in_logs"]))
    if role.get("expired"):
        found.append(_finding("role_password_expired", "critical",
                              {"role": name, "valid_until": role.get("valid_until"),
                               "stores_failing": password_failures},
                              _rotate(pgauth_valid_until="infinity"),
                              ["store_password_mismatch", "auth_failures_in_logs"]))
    if app_auth(facts) == "password" and role.get("password_set") is False:
        found.append(_finding("role_password_missing", "critical", {"role": name},
                              _rotate(), ["store_password_mismatch", "auth_failures_in_logs"]))
    if role.get("password_hash") == "md5" and server.get("password_encryption") != "md5":
        found.append(_finding("role_password_hash_incompatible", "critical",
                              {"role": name, "password_hash": "md5",
                               "password_encryption": server.get("password_encryption")},
                              _rotate(), ["store_password_mismatch", "auth_failures_in_logs"]))
    limit, in_use = role.get("conn_limit"), role.get("connections") or 0
    if "connection_limit_reached" in failed or (limit not in (None, -1) and in_use >= limit):
        found.append(_finding("connection_limit_reached", "critical",
                              {"role": name, "conn_limit": limit, "connections": in_use},
                              _manual(f"Raise the limit (credops.pgauth.pg_role name={name} "
                                      "conn_limit=N) or find the leaking pool.")))
    return found


def _iam_findings(facts: dict, failed: dict) -> list[dict]:
    target, role, iam = facts.get("target") or {}, facts.get("role") or {}, facts.get("iam")
    name, found = target.get("role"), []
    if app_auth(facts) != "iam":
        if role.get("rds_iam_member"):
            found.append(_finding(
                "iam_role_blocks_password", "critical",
                {"role": name, "stores_failing": failed.get("iam_role_blocks_password", [])},
                {"runbook": "rotate", "extra_vars": {"pgauth_strategy": "iam"},
                 "manual": "Then set pgauth_target.auth to iam. Or, to keep passwords: "
                           f"credops.pgauth.rds_iam_grant role={name} state=absent"},
                ["store_password_mismatch", "auth_failures_in_logs"]))
        return found
    if iam is not None and iam.get("iam_enabled") is False:
        found.append(_finding("iam_disabled_on_instance", "critical",
                              {"instance": target.get("rds_instance_id")
                               or target.get("rds_cluster_id")},
                              {"runbook": "rotate", "extra_vars": {
                                  "pgauth_strategy": "iam", "pgauth_iam_enable_instance": True}},
                              ["iam_token_stale", "auth_failures_in_logs"]))
    if iam is not None and iam.get("connect_allowed") is False:
        found.append(_finding("iam_policy_denies_connect", "critical",
                              {"principal": target.get("iam_principal_arn"),
                               "connect_arn": iam.get("connect_arn"),
                               "decision": iam.get("decision"),
                               "statements": iam.get("statements", [])},
                              _manual("Allow rds-db:connect on " + str(iam.get("connect_arn"))
                                      + " for the application's principal (and remove any "
                                        "Deny that matches it).")))
    elif iam is not None and iam.get("decision") == "undecided":
        # not shown to allow is not "allowed": a warning (so the verdict is not healthy) that
        # says what could not be decided, rather than a guess either way
        found.append(_finding("iam_policy_denies_connect", "warning",
                              {"principal": target.get("iam_principal_arn"),
                               "connect_arn": iam.get("connect_arn"),
                               "decision": "undecided", "reasons": iam.get("reasons", []),
                               "notes": iam.get("notes", []),
                               "statements": iam.get("statements", [])},
                              _manual("Whether the application's principal may rds-db:connect "
                                      "on " + str(iam.get("connect_arn")) + " could not be "
                                      "decided (" + ", ".join(iam.get("reasons") or [])
                                      + "): check it with the IAM policy simulator and the "
                                        "real request context.")))
    if role.get("exists") and not role.get("rds_iam_member"):
        found.append(_finding("iam_role_not_granted", "critical", {"role": name},
                              {"runbook": "rotate", "extra_vars": {"pgauth_strategy": "iam"}},
                              ["store_password_mismatch", "iam_role_not_granted",
                               "auth_failures_in_logs"]))
    if target.get("sslmode") in ("disable", "allow") or "iam_tls_missing" in failed:
        found.append(_finding("iam_tls_missing", "critical", {"sslmode": target.get("sslmode")},
                              _manual("Connect with sslmode=verify-full and the RDS CA "
                                      "bundle: IAM logins only match hostssl rules.")))
    logs = ((facts.get("logs") or {}).get("roles") or {}).get(name) or {}
    worked_then_broke = (logs.get("successes") and logs.get("by_category", {}).get("pam_failed")
                         and logs.get("last_success") and logs.get("first_failure")
                         and logs["last_success"] < logs["first_failure"])
    if not found and (worked_then_broke or "iam_token_stale" in failed):
        found.append(_finding("iam_token_stale", "critical",
                              {"role": name, "last_success": logs.get("last_success"),
                               "first_failure": logs.get("first_failure"),
                               "reasons": logs.get("by_reason") or {}},
                              _manual("Generate a fresh token for every new connection (in the "
                                      "pool's connect hook); a token is valid 15 minutes for "
                                      "new connections only, while sessions already open stay "
                                      "up."), ["auth_failures_in_logs"]))
    return found


_PLAINTEXT_FIX = ("Move the password into Secrets Manager or Parameter Store and reference it, "
                  "then rotate: the plaintext copy has been readable by everyone who may "
                  "describe the task definition or function. For an ECS task definition the "
                  "rotate runbook does it: -e pgauth_move_plaintext_to='<store dict>' (add "
                  "pgauth_grant_secret_read=true to let the execution role read it), then "
                  "deploy the service.")


def _store_findings(facts: dict, failed: dict) -> list[dict]:
    stores = facts.get("stores") or []
    target_auth = app_auth(facts)

    def uses_iam(store: dict) -> bool:
        # an IAM application's store rightly holds no password
        return target_auth == "iam" or (store.get("credential") or {}).get("auth") == "iam"

    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    found, explained = target_mismatch_findings(facts)
    rotation, also_explained = rotation_findings(facts)
    found += rotation
    explained |= also_explained
    for store in stores:
        name = store.get("store")
        if store.get("readable", True) and not store.get("exists", True):
            # a typo in a path, secret id or key: there is nothing to log in with
            found.append(_finding("store_unreadable", "critical",
                                  {"store": name, "error": "the store holds no value: the "
                                   "secret, path, key or file does not exist"},
                                  _manual("Fix the store's address (secret id, path, key) or "
                                          "restore its value.")))
            explained.add(name)
        elif not store.get("readable", True):
            error = store.get("error") or ""
            fid = ("store_dsn_invalid" if store.get("error_code") == DSN_NOT_ENCODED
                   else "store_unreadable")
            fix = _rotate() if fid == "store_dsn_invalid" else _manual(
                "The error says what to fix: access (credentials, policy, network), or the "
                "store's address or content.")
            found.append(_finding(fid, "critical", {"store": name, "error": error}, fix))
            explained.add(name)
        elif store.get("exists") and store.get("placeholder") and not uses_iam(store):
            found.append(_finding("store_placeholder_password", "critical",
                                  {"store": name, "password_length": store.get("password_length")},
                                  _rotate(), ["stores_disagree"]))
            explained.add(name)
    found += [_finding("store_plaintext_env", "warning",
                       {"store": store.get("store"), "where": store["plaintext_exposure"]},
                       _manual(_PLAINTEXT_FIX))
              for store in stores if store.get("readable", True) and store.get("exists")
              and store.get("plaintext_exposure")]
    fingerprints = {s.get("store"): s.get("password_fingerprint") for s in stores
                    if s.get("readable", True) and s.get("password_fingerprint")}
    verifiers = {s.get("store") for s in stores if s.get("holds_verifier")}
    if len(set(fingerprints.values())) > 1:
        logged_in = [name for name in fingerprints if (probes.get(name) or {}).get("ok")]
        # a verifier store (PgBouncer's auth_file) logs in with nothing: it works when it
        # holds the verifier of a password that logs in
        working_prints = {fingerprints[name] for name in logged_in}
        working = [name for name in fingerprints if name in logged_in or (
            name in verifiers and fingerprints[name] in working_prints)]
        stale = [name for name in fingerprints if name not in working]
        found.append(_finding("stores_disagree", "critical" if stale else "warning",
                              {"stores": sorted(fingerprints), "working": working,
                               "stale": stale},
                              _rotate(pgauth_source_store=logged_in[0]) if logged_in
                              else _rotate(), ["store_password_mismatch"]))
    # a store's own finding (placeholder, unreadable, broken URL) explains its failed login
    mismatched = [name for name in failed.get("store_password_mismatch", [])
                  if name not in explained]
    if mismatched:
        found.append(_finding("store_password_mismatch", "critical", {"stores": mismatched},
                              _rotate(), ["auth_failures_in_logs"]))
    return found


def _log_findings(facts: dict) -> list[dict]:
    name = (facts.get("target") or {}).get("role")
    logs = ((facts.get("logs") or {}).get("roles") or {}).get(name) or {}
    if not logs.get("failures"):
        return []
    keys = ("failures", "by_category", "by_reason", "first_failure", "last_failure",
            "failures_per_minute", "hba_lines")
    evidence = {key: logs.get(key) for key in keys}
    return [_finding("auth_failures_in_logs", "warning", evidence,
                     _manual("See the root cause above; the log's reasons say which."))]


def diagnose(facts: dict) -> list[dict]:
    """Findings, root causes first, each with the symptoms it explains folded under it."""
    facts, blind = split_write_only(facts)
    failed = _probe_categories(facts)
    # a pooler that refuses what the database accepts comes first: it explains every
    # failed login made through it
    candidates = (pooler_findings(facts) + _connection_findings(facts, failed)
                  + _role_findings(facts, failed)
                  + expiry_findings(facts) + conflict_findings(facts)
                  + _iam_findings(facts, failed) + _store_findings(facts, failed)
                  + dsn_rejected_findings(facts) + verifier_only_findings(facts)
                  + _log_findings(facts))
    roots: list[dict] = []
    for finding in candidates:
        folded_into = next((root for root in roots if finding["id"] in root["explains"]), None)
        if folded_into is not None:
            folded_into.setdefault("folded", []).append(
                {"id": finding["id"], "title": finding["title"], "evidence": finding["evidence"]})
        else:
            roots.append(finding)
    for finding in roots:
        finding.setdefault("folded", [])
    for finding in (*invariant_findings(facts, roots),
                    *write_only_findings(blind, facts.get("stores") or [])):
        finding["folded"] = []
        roots.append(finding)
    if facts.get("managed_secret"):
        _rotate_through_rds(roots)
    return sorted(roots, key=lambda f: SEVERITY_ORDER[f["severity"]])


_FIXED_THROUGH_RDS = frozenset({"store_password_mismatch", "stores_disagree",
                                "store_placeholder_password", "store_dsn_invalid",
                                "store_password_whitespace", "store_target_mismatch",
                                "store_unreadable"})


def _rotate_through_rds(findings: list[dict]) -> None:
    """RDS owns a managed master password: a rotation that fixes a finding asks RDS for the
    new password (rotate_via rds_managed), which also makes the managed secret the source."""
    for finding in findings:
        extra = finding["fix"]["extra_vars"]
        # only what a new managed password plus the stores brought in line fixes: a role's
        # own state (VALID UNTIL, NOLOGIN, the hash) needs ALTER ROLE, which rds_managed skips
        if finding["id"] in _FIXED_THROUGH_RDS and finding["fix"]["runbook"] == "rotate" and \
                extra.get("pgauth_strategy", "single_user") == "single_user":
            extra.pop("pgauth_source_store", None)
            extra["pgauth_rotate_via"] = "rds_managed"
            finding["fix"]["command"] = fix_command("rotate", extra)


def verdict(findings: list[dict]) -> str:
    severities = {finding["severity"] for finding in findings}
    if "critical" in severities:
        return "broken"
    return "degraded" if "warning" in severities else "healthy"
