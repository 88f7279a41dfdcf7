# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify runbook's checks: facts in (what pg_auth_facts gathers, plus health URL
results), a list of named checks out.  Pure, like the findings engine."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import app_auth
from ansible_collections.credops.pgauth.plugins.module_utils.findings_checks import (
    expiry_findings,
    split_write_only,
    verifier_only,
)

# RDS IAM tokens are good for new connections for 15 minutes; sessions outlive them
TOKEN_LIFETIME_SECONDS = 900


def _check(name: str, ok: bool, detail: str, severity: str = "critical") -> dict:
    return {"check": name, "ok": bool(ok), "severity": severity, "detail": detail}


def _write_only_checks(blind: list[dict]) -> list[dict]:
    """A write-only store is listed, not checked: info, so it neither passes nor fails the
    run (the other stores, or with none of them stores_configured, decide)."""
    return [_check(f"write_only:{store.get('store')}", True, "write-only, not checked", "info")
            for store in blind]


def _store_checks(facts: dict, iam: bool) -> list[dict]:
    facts, blind = split_write_only(facts)
    if blind and not facts.get("stores"):
        return [_check("stores_configured", False, "every configured store is write-only, "
                       "not checked: nothing proves a credential logs in"),
                *_write_only_checks(blind)]
    if not facts.get("stores"):
        # the invariant: healthy means every store gave a credential that logs in; with no
        # store nothing was proven
        return [_check("stores_configured", False, "no store is configured (pgauth_stores)")]
    checks = []
    if verifier_only(facts["stores"]):
        checks.append(_check("stores_configured", False, "every store read holds a verifier, "
                             "not a password: nothing proves a credential logs in"))
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    for store in facts.get("stores") or []:
        name = store.get("store")
        readable = store.get("readable", True) and store.get("exists", True)
        checks.append(_check(f"store_readable:{name}", readable,
                             "readable" if readable else store.get("error") or "no value"))
        if store.get("holds_verifier"):
            # nothing logs in with a verifier: stores_agree checks it (the password of the
            # other stores verifies against it, or it disagrees)
            checks.append(_check(f"login:{name}", True, "not applicable: holds a verifier, "
                                 "checked by agreement (stores_agree)", "info"))
            continue
        probe = probes.get(name) or {}
        logged_in = bool(probe.get("ok"))
        how = "an IAM token" if iam else "its password"
        checks.append(_check(f"login:{name}", logged_in,
                             f"logs in with {how}" if logged_in else
                             f"{probe.get('category') or 'not tried'}: "
                             f"{probe.get('message') or 'the store gave no credential'}"))
        if "dsn_rejected" in store:
            # the probe logs in with the password; the application's own client would
            # refuse the connection string before it sends one
            refused = store["dsn_rejected"]
            checks.append(_check(
                f"dsn_accepted:{name}", not refused,
                f"its {(store.get('credential') or {}).get('dialect')} client accepts every "
                f"parameter" if not refused else "; ".join(
                    f"{item.get('parameter')}: {item.get('reason')}" for item in refused)))
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
    return checks + _write_only_checks(blind)


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
    for expiring in expiry_findings(facts):
        evidence = expiring["evidence"]
        checks.append(_check("role_password_not_expiring", False,
                             f"VALID UNTIL {evidence['valid_until']}: the password expires in "
                             f"{evidence['seconds_left'] // 3600} h (pgauth_valid_until)",
                             "warning"))
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


# Health URLs may carry credentials (https://user:password@app/healthz, ?token=...).  The
# request still uses them; everything that shows a URL (check names, details, the report, the
# task output) shows it redacted.  A query or fragment parameter whose name looks like one of
# these is a secret; over-redacting a harmless one costs nothing.
_SECRET_PARAM = re.compile(r"(?i)pass|pwd|secret|token|key|sig|auth|cred|session|jwt|otp|code")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# userinfo that urlsplit did not find, such as an unencoded '/' or '?' in the password
# (https://user:pa/ss@app/): everything from '//' to the last '@' before a fragment
_LOOSE_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^#]*@")
REDACTED = "***"


def _split(url: str):
    """urlsplit, or None for a URL whose userinfo it may have misread: a non-numeric port
    (the 'pa' of an unencoded user:pa/ss@host), a broken IPv6 address, or a host:port
    followed by an '@' in the path (user:12/ss@host, or a valid URL with an '@' in its path
    after a port: shown redacted from '//' to that '@', and not requested)."""
    try:
        parts = urlsplit(url)
        _port = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        return None
    if "@" not in parts.netloc and ":" in parts.netloc and "@" in parts.path:
        return None
    return parts


def _params(text: str) -> list[tuple[str, str | None]]:
    return [(name, value if sep else None)
            for name, sep, value in (part.partition("=") for part in text.split("&"))]


def _redact_params(text: str) -> str:
    return "&".join(name if value is None else
                    f"{name}={REDACTED if _SECRET_PARAM.search(unquote(name)) else value}"
                    for name, value in _params(text))


def redact_url(url) -> str:
    """The URL to show: no userinfo (https://***@app/...), secret-looking parameters ***."""
    url = str(url)
    parts = _split(url)
    if parts is None:
        return _LOOSE_USERINFO.sub(rf"\1{REDACTED}@", url)
    shown = url
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        start = url.index("//") + 2
        shown = url[:start] + REDACTED + url[start + len(userinfo):]
    head, hash_sign, fragment = shown.partition("#")
    head, question, query = head.partition("?")
    return (head + question + _redact_params(query) if question else head) + (
        hash_sign + _redact_params(fragment) if hash_sign else "")


def url_secrets(url) -> list[str]:
    """The parts of a URL that redact_url hides (as written and percent-decoded)."""
    url = str(url)
    found: set[str] = set()
    parts = _split(url)
    if parts is None:
        match = _LOOSE_USERINFO.match(url)
        if match:
            userinfo = match.group(0)[len(match.group(1)):-1]
            found.update({userinfo, userinfo.partition(":")[2]})
    else:
        if "@" in parts.netloc:
            userinfo = parts.netloc.rpartition("@")[0]
            found.update({userinfo, userinfo.partition(":")[2]})
        for text in (parts.query, parts.fragment):
            found.update(value for name, value in _params(text)
                         if value and _SECRET_PARAM.search(unquote(name)))
    found |= {unquote(value) for value in found}
    return sorted((value for value in found if value), key=len, reverse=True)


def scrub(text, secrets: list[str]) -> str:
    """text with every URL redacted and each of secrets replaced (a server's or urllib's
    message may quote the URL or a part of it)."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(text))
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def health_request(url) -> dict:
    """What the verify role's uri task needs for one health URL.  The userinfo leaves the URL
    and goes as url_username/url_password (no_log in the uri module), sent at once
    (force_basic_auth), as curl and requests send a URL's user:password; label is what the
    output and the report show; error, when set, means the URL is not sent at all."""
    url = str(url)
    request = {"url": url, "username": "", "password": "", "basic_auth": False,
               "label": redact_url(url), "error": ""}
    parts = _split(url)
    if parts is None:
        # sent as it is, an unencoded user:12/ss@app would go to host 'user', port 12
        request["error"] = ("not requested: the URL cannot be read safely (percent-encode a "
                            "'/', '?', '#', '@' or ':' in its user name or password, and an "
                            "'@' in its path as %40)")
        request["url"] = request["label"]
        return request
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        start = url.index("//") + 2
        user, sep, password = userinfo.partition(":")
        request.update(url=url[:start] + url[start + len(userinfo) + 1:],
                       username=unquote(user), password=unquote(password) if sep else "",
                       basic_auth=True)
    return request


def health_requests(urls: list) -> list[dict]:
    return [health_request(url) for url in urls or []]


def _health_checks(health: list[dict]) -> list[dict]:
    checks = []
    for result in health or []:
        item = result.get("item")
        if isinstance(item, dict):  # from health_request (the verify role)
            raw, label = item.get("url") or "", item.get("label")
            # the user name too: a token is often given as one (https://TOKEN@app/)
            secrets = url_secrets(raw) + [item[key] for key in ("password", "username")
                                          if item.get(key)]
        else:  # a uri result of one's own loop: the item or url is the URL as given
            raw = str(item if isinstance(item, str) else result.get("url") or "")
            label, secrets = None, url_secrets(raw)
        label = label or redact_url(raw)
        status = result.get("status")
        ok = isinstance(status, int) and 200 <= status < 300
        if isinstance(item, dict) and item.get("error"):
            detail = item["error"]
        elif status not in (None, -1):
            detail = f"HTTP {status}"
        else:
            detail = scrub(result.get("msg") or "no answer", secrets)
        checks.append(_check(f"health:{label}", ok, detail))
    return checks


def _consumer_checks(facts: dict) -> list[dict]:
    """Each consumer of pgauth_consumers confirmed (health, fresh sessions, a pooler login)."""
    return [_check(f"consumer:{item.get('consumer')}", item.get("ok"),
                   "; ".join(item.get("checks") or []) or "confirmed" if item.get("ok")
                   else item.get("error") or "not confirmed")
            for item in facts.get("consumers") or []]


def verify_checks(facts: dict, health: list[dict] | None = None) -> list[dict]:
    iam = app_auth(facts) == "iam"
    checks = (_store_checks(facts, iam) + _role_checks(facts, iam) + _log_checks(facts)
              + _health_checks(health or []) + _consumer_checks(facts))
    if facts.get("errors"):
        checks += [_check("gathered", False, "; ".join(facts["errors"]), "warning")]
    return checks


def checks_verdict(checks: list[dict]) -> str:
    failed = {check["severity"] for check in checks if not check["ok"]}
    if "critical" in failed:
        return "broken"
    return "degraded" if "warning" in failed else "healthy"
