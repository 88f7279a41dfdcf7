# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify runbook's checks: facts in (what pg_auth_facts gathers, plus health URL
results), a list of named checks out.  Pure, like the findings engine."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import app_auth

# RDS IAM tokens are good for new connections for 15 minutes; sessions outlive them
TOKEN_LIFETIME_SECONDS = 900


def _check(name: str, ok: bool, detail: str, severity: str = "critical") -> dict:
    return {"check": name, "ok": bool(ok), "severity": severity, "detail": detail}


def _store_checks(facts: dict, iam: bool) -> list[dict]:
    checks = []
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    for store in facts.get("stores") or []:
        name = store.get("store")
        readable = store.get("readable", True) and store.get("exists", True)
        checks.append(_check(f"store_readable:{name}", readable,
                             "readable" if readable else store.get("error") or "no value"))
        probe = probes.get(name) or {}
        logged_in = bool(probe.get("ok"))
        how = "an IAM token" if iam else "its password"
        checks.append(_check(f"login:{name}", logged_in,
                             f"logs in with {how}" if logged_in else
                             f"{probe.get('category') or 'not tried'}: "
                             f"{probe.get('message') or 'the store gave no credential'}"))
    readable = [store for store in facts.get("stores") or []
                if store.get("readable", True) and store.get("exists", True)]
    if iam:
        users = {(store.get("credential") or {}).get("username") for store in readable}
        users.discard(None)
        checks.append(_check("stores_agree", len(users) <= 1,
                             "every store names the same user" if len(users) <= 1
                             else f"the stores name different users: {', '.join(sorted(users))}"))
    else:
        prints = {store.get("store"): store.get("password_fingerprint") for store in readable}
        agree = len(set(prints.values())) <= 1 and None not in prints.values()
        checks.append(_check("stores_agree", agree,
                             "every store holds the same password (keyed fingerprints)" if agree
                             else "the stores hold different passwords: "
                                  + ", ".join(f"{name} {value[:8] if value else 'none'}"
                                              for name, value in sorted(prints.items()))))
    return checks


def _role_checks(facts: dict, iam: bool) -> list[dict]:
    role = facts.get("role")
    if role is None:
        return [_check("role_healthy", False, f"not checked: {facts.get('admin_error')}")]
    problems = []
    if not role.get("exists"):
        problems.append("does not exist")
    else:
        if role.get("can_login") is False:
            problems.append("is NOLOGIN")
        if role.get("expired"):
            problems.append(f"expired at {role.get('valid_until')}")
        if iam and not role.get("rds_iam_member"):
            problems.append("is not in rds_iam")
        if not iam and role.get("rds_iam_member"):
            problems.append("is in rds_iam (password logins refused)")
    checks = [_check("role_healthy", not problems,
                     "exists, can log in, not expired" if not problems
                     else "the role " + ", ".join(problems))]
    limit, used = role.get("conn_limit"), role.get("connections") or 0
    if role.get("exists") and limit not in (None, -1):
        headroom = limit - used
        checks.append(_check("connection_headroom", headroom > 0,
                             f"{used} of {limit} connections in use",
                             "critical" if headroom <= 0 else "warning"))
    if iam:
        old = [session for session in facts.get("sessions") or []
               if (session.get("age_seconds") or 0) > TOKEN_LIFETIME_SECONDS]
        if old:
            checks.append(_check(
                "iam_sessions_older_than_token", True,
                f"{len(old)} session(s) older than 15 minutes: fine, PostgreSQL checks the "
                "token only when a connection opens; new connections need a fresh token",
                "info"))
    return checks


def _log_checks(facts: dict) -> list[dict]:
    logs = facts.get("logs")
    if logs is None:
        return []
    role = (facts.get("target") or {}).get("role")
    stats = (logs.get("roles") or {}).get(role) or {}
    failures = stats.get("failures") or 0
    return [_check("logs_quiet", failures == 0,
                   f"no failed login for {role} since {logs.get('since')}" if not failures
                   else f"{failures} failed login(s) for {role} since {logs.get('since')}: "
                        + ", ".join(f"{reason} x{count}" for reason, count
                                    in sorted((stats.get("by_reason") or {}).items())))]


def _health_checks(health: list[dict]) -> list[dict]:
    checks = []
    for result in health or []:
        status = result.get("status")
        ok = isinstance(status, int) and 200 <= status < 300
        checks.append(_check(f"health:{result.get('url')}", ok,
                             f"HTTP {status}" if status not in (None, -1)
                             else result.get("msg") or "no answer"))
    return checks


def verify_checks(facts: dict, health: list[dict] | None = None) -> list[dict]:
    iam = app_auth(facts) == "iam"
    checks = (_store_checks(facts, iam) + _role_checks(facts, iam) + _log_checks(facts)
              + _health_checks(health or []))
    if facts.get("errors"):
        checks += [_check("gathered", False, "; ".join(facts["errors"]), "warning")]
    return checks


def checks_verdict(checks: list[dict]) -> str:
    failed = {check["severity"] for check in checks if not check["ok"]}
    if "critical" in failed:
        return "broken"
    return "degraded" if "warning" in failed else "healthy"
