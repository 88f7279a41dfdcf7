# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The finding ids (DESIGN §5), their titles, and how a finding and its fix are written.
docs/findings.md explains each id."""
from __future__ import annotations

import json
import shlex

# the vars file the user gave diagnose: the fix runs with the same inputs plus extra_vars
VARS_FILE_HINT = "@vars.yml"
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

TITLES = {
    "server_unreachable": "The database server cannot be reached",
    "tls_required": "The server requires TLS for this connection and the client did not use it",
    "no_hba_entry": "No pg_hba.conf rule accepts this connection",
    "database_missing": "The database does not exist",
    "role_missing": "The role does not exist",
    "role_cannot_login": "The role is NOLOGIN",
    "role_password_expired": "The role's password has expired (VALID UNTIL is in the past)",
    "role_password_missing": "The role has no password",
    "role_password_hash_incompatible": "The role's password is stored as md5, but logins "
                                       "require SCRAM",
    "connection_limit_reached": "The role has reached its connection limit",
    "store_unreadable": "A secret store cannot be read",
    "store_password_mismatch": "A store holds a password the database does not accept",
    "stores_disagree": "The secret stores hold different passwords",
    "store_placeholder_password": "A store holds a placeholder, not a password",
    "store_dsn_invalid": "A DATABASE_URL cannot be parsed the same way by every client",
    "store_plaintext_env": "A store keeps the password in a plaintext environment variable",
    "iam_role_not_granted": "The role is not in rds_iam, so IAM tokens are compared as passwords",
    "iam_role_blocks_password": "The role is in rds_iam, so password logins are refused",
    "iam_disabled_on_instance": "IAM database authentication is disabled on the instance",
    "iam_policy_denies_connect": "The application's IAM principal may not rds-db:connect as "
                                 "this role",
    "iam_token_stale": "IAM logins worked, then new connections fail: a token is reused",
    "iam_tls_missing": "IAM logins need TLS and the client does not use it",
    "auth_failures_in_logs": "The server log shows failed logins for the role",
    "server_too_many_clients": "The server has no connection slots left for the role",
    "database_connect_denied": "The role may not connect to the database (no CONNECT "
                               "privilege)",
    "database_not_accepting": "The database does not accept connections (ALLOW_CONNECTIONS "
                              "false)",
    "role_password_expiring": "The role's password expires soon (VALID UNTIL)",
    "store_target_mismatch": "A store's credential addresses another role, host, port or "
                             "database than the target",
    "login_failed": "A login failed for a reason no other finding explains",
    "rotation_incomplete": "A rotation stopped half-way: the pending value is what the "
                           "database has",
    "store_password_whitespace": "A stored password has whitespace at an end that the "
                                 "database's password does not",
    "rotation_conflict": "Another rotator already manages this credential",
    "pooler_auth_stale": "The database accepts the password, the pooler in front of it does "
                         "not: its auth_file holds an old verifier",
}
FINDING_IDS = tuple(TITLES)


def fix_command(runbook: str | None, extra_vars: dict) -> str | None:
    """The command line that applies a fix: the runbook with diagnose's vars plus extra_vars."""
    if not runbook:
        return None
    command = f"ansible-playbook credops.pgauth.{runbook} -e {VARS_FILE_HINT}"
    if extra_vars:
        command += " -e " + shlex.quote(json.dumps(extra_vars, sort_keys=True))
    return command


def finding(fid: str, severity: str, evidence: dict, fix: dict, explains=()) -> dict:
    extra_vars = fix.get("extra_vars", {})
    return {"id": fid, "severity": severity, "title": TITLES[fid], "evidence": evidence,
            "fix": {"runbook": fix.get("runbook"), "extra_vars": extra_vars,
                    "manual": fix.get("manual"),
                    "command": fix.get("command") or fix_command(fix.get("runbook"),
                                                                 extra_vars)},
            "explains": list(explains)}


def rotate(**extra) -> dict:
    return {"runbook": "rotate", "extra_vars": {"pgauth_strategy": "single_user", **extra}}


def manual(text: str, command: str | None = None) -> dict:
    """A fix no runbook applies; command, when one line does it (a psql statement)."""
    return {"runbook": None, "manual": text, "command": command}
