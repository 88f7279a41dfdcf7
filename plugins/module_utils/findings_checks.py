# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings that compare facts with the target or with time, and the invariant that no
failed login and no store without a credential goes unexplained.  Pure, like diagnosis."""
from __future__ import annotations

import datetime as dt
import re

from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    finding,
    manual,
    rotate,
)
from ansible_collections.credops.pgauth.plugins.module_utils.logscan_match import redact

DEFAULT_EXPIRY_WARNING = "7d"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# the clone alternating_users logs in as: a store naming it addresses the target
CLONE_SUFFIX = "_clone"


def duration_seconds(text: str | int | None, default: str = DEFAULT_EXPIRY_WARNING) -> int:
    """'7d', '12h', '90m', '30s', '2w' or a number of seconds."""
    if isinstance(text, int):
        return text
    match = _DURATION.match(str(text if text not in (None, "") else default))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 12h, 90m)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_timestamp(text: str | None) -> dt.datetime | None:
    """A PostgreSQL or ISO timestamp ('2026-12-02 10:00:00+00'); None for 'infinity' or
    anything unreadable."""
    if not text or str(text).strip().lower() in ("infinity", "none"):
        return None
    value = str(text).strip().replace(" ", "T", 1)
    value = re.sub(r"([+-]\d\d)$", r"\1:00", value)
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def expiry_findings(facts: dict) -> list[dict]:
    """role_password_expiring: VALID UNTIL ahead, but within the warning window."""
    role = facts.get("role") or {}
    if not role.get("exists") or role.get("expired"):
        return []
    until = parse_timestamp(role.get("valid_until"))
    now = parse_timestamp(facts.get("gathered_at"))
    if until is None or now is None:
        return []
    left = (until - now).total_seconds()
    window = duration_seconds((facts.get("settings") or {}).get("expiry_warning"))
    if not 0 < left <= window:
        return []
    name = (facts.get("target") or {}).get("role")
    return [finding("role_password_expiring", "warning",
                    {"role": name, "valid_until": role.get("valid_until"),
                     "seconds_left": int(left), "warning_window_seconds": window},
                    rotate(pgauth_valid_until="infinity"))]


def _differences(cred: dict, target: dict) -> list[dict]:
    role = target.get("role")
    out = []
    user = cred.get("username")
    if user and role and user not in (role, role + CLONE_SUFFIX):
        out.append({"field": "username", "store": user, "target": role})
    host = cred.get("host")
    if host and target.get("host") and host.lower() != str(target["host"]).lower():
        out.append({"field": "host", "store": host, "target": target["host"]})
    port = cred.get("port")
    if port and target.get("port") and int(port) != int(target["port"]):
        out.append({"field": "port", "store": port, "target": target["port"]})
    dbname = cred.get("dbname")
    if dbname and target.get("dbname") and dbname != target["dbname"]:
        out.append({"field": "dbname", "store": dbname, "target": target["dbname"]})
    return out


def pooled_stores(facts: dict) -> set[str]:
    """The stores whose credential points at a pooler of pgauth_consumers (the app logs in
    through it): their endpoint is the pooler's, not a mismatch with the target."""
    return {name for pooler in facts.get("poolers") or [] for name in pooler.get("stores", [])}


def pooler_findings(facts: dict) -> list[dict]:
    """pooler_auth_stale: through the pooler a store's login fails while the same credential
    logs in at the database, or the pooler's auth_file does not hold the database's
    verifier (PgBouncer's SCRAM pass-through needs the very same one)."""
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    found = []
    for pooler in facts.get("poolers") or []:
        failing = [name for name in pooler.get("stores", [])
                   if not (probes.get(name) or {}).get("ok")
                   and ((pooler.get("direct") or {}).get(name) or {}).get("ok")]
        if not failing and pooler.get("auth_file_current") is not False:
            continue
        found.append(finding(
            "pooler_auth_stale", "critical",
            {"consumer": pooler.get("consumer"), "pooler": pooler.get("pooler"),
             "stores": failing, "auth_file_current": pooler.get("auth_file_current")},
            {**rotate(), "manual": "rotate with this consumer in pgauth_consumers copies the "
                                   "database's verifier into the auth_file, RELOADs and "
                                   "confirms (no new password when the stores are right)"},
            ["store_password_mismatch", "store_target_mismatch", "login_failed",
             "auth_failures_in_logs"]))
    return found


def target_mismatch_findings(facts: dict) -> tuple[list[dict], set[str]]:
    """store_target_mismatch for each store whose login failed while its credential
    addresses something else than the target; and the names of those stores (their failed
    logins are explained)."""
    target = facts.get("target") or {}
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    found, explained = [], set()
    pooled = pooled_stores(facts)
    for store in facts.get("stores") or []:
        name = store.get("store")
        probe = probes.get(name)
        if probe is None or probe.get("ok") or not store.get("readable", True) \
                or name in pooled:
            continue
        differences = _differences(store.get("credential") or {}, target)
        if not differences:
            continue
        only_user = all(diff["field"] == "username" for diff in differences)
        # rotate writes the target's role into every store; an endpoint is the user's to fix
        fix = rotate() if only_user else manual(
            f"Make store {name!r} address the target: "
            + ", ".join(f"{diff['field']} {diff['target']!r} (not {diff['store']!r})"
                        for diff in differences) + "; then verify.")
        found.append(finding("store_target_mismatch", "critical",
                             {"store": name, "differences": differences,
                              "login": probe.get("category")}, fix))
        explained.add(name)
    return found, explained


def rotation_findings(facts: dict) -> tuple[list[dict], set[str]]:
    """rotation_incomplete (a store's pending value logs in where its current does not, or a
    Secrets Manager AWSPENDING label left on the current version) and
    store_password_whitespace; the stores whose failed login they explain."""
    probes = {probe.get("store"): probe for probe in facts.get("probes") or []}
    found, explained = [], set()
    for store in facts.get("stores") or []:
        name = store.get("store")
        probe = probes.get(name) or {}
        if not probe.get("ok") and (probe.get("pending") or {}).get("ok"):
            found.append(finding("rotation_incomplete", "critical",
                                 {"store": name, "current_logs_in": False,
                                  "pending_logs_in": True, "version": store.get("version")},
                                 rotate(), ["store_password_mismatch", "stores_disagree",
                                            "auth_failures_in_logs"]))
            explained.add(name)
        elif store.get("type") == "aws_secretsmanager" and "AWSPENDING" in (
                store.get("stages") or []):
            found.append(finding("rotation_incomplete", "warning",
                                 {"store": name, "stages": store.get("stages"),
                                  "version": store.get("version")},
                                 rotate(), []))
        padded = probe.get("whitespace") or {}
        if padded.get("stripped_matches"):
            found.append(finding("store_password_whitespace", "critical",
                                 {"store": name, "ends": padded.get("ends"),
                                  "characters": padded.get("characters"),
                                  "checked_by": padded.get("checked_by")},
                                 rotate(), ["stores_disagree", "store_password_mismatch"]))
            explained.add(name)
    return found, explained


ROTATOR_ADVICE = {
    "secretsmanager_rotation": "turn the secret's rotation off (aws secretsmanager "
                               "cancel-rotate-secret) or let that Lambda own the password",
    "rds_managed_secret": "RDS owns this secret: rotate it through RDS "
                          "(rotate-secret on the managed secret) and let the other stores copy it",
    "vault_database_static_role": "delete the static role in Vault's database engine, or let "
                                  "Vault own the password and the other stores read from it",
}


def conflict_findings(facts: dict) -> list[dict]:
    """rotation_conflict: a warning in diagnose (today's logins may work); rotate refuses."""
    found = []
    for other in facts.get("rotators") or []:
        found.append(finding("rotation_conflict", "warning",
                             {"store": other.get("store"), "rotator": other.get("rotator"),
                              "detail": other.get("detail")},
                             manual("Two rotators on one password break it in turn: "
                                    + ROTATOR_ADVICE.get(other.get("rotator"), "keep one")
                                    + "; rotate refuses until then (pgauth_force overrides).")))
    return found


def _mentions(item: dict, store: str) -> bool:
    evidence = item.get("evidence") or {}
    named = [evidence.get("store")]
    for key in ("stores", "stores_failing", "stale", "working"):
        named += list(evidence.get(key) or [])
    return store in named


def _store_specific(item: dict) -> bool:
    evidence = item.get("evidence") or {}
    return any(key in evidence for key in ("store", "stores", "stores_failing"))


def _explains(roots: list[dict], store: str, category: str) -> bool:
    """Whether some finding accounts for this store's failed login."""
    for root in roots:
        for item in (root, *root.get("folded", [])):
            # the same failure, reported for this store (or for every store)
            if item.get("id") == category and (not _store_specific(item)
                                               or _mentions(item, store)):
                return True
        # a cause that explains this kind of failure, for the stores it names or for all
        if category in root.get("explains", []) and (not _store_specific(root)
                                                     or _mentions(root, store)):
            return True
        # a finding about the store itself (placeholder, unreadable, target mismatch), or the
        # invariant's own login_failed for the stores it names
        if (root.get("evidence") or {}).get("store") == store or (
                root.get("id") == "login_failed" and _mentions(root, store)):
            return True
    return False


def invariant_findings(facts: dict, roots: list[dict]) -> list[dict]:
    """The invariant (DESIGN §5): every configured store yields a credential and every probe
    logged in, or some finding says why.  What no finding explains becomes store_unreadable
    or login_failed here, so the verdict can never be healthy while a login fails."""
    extra = []
    for store in facts.get("stores") or []:
        name = store.get("store")
        if store.get("readable", True) and store.get("exists", True):
            continue
        if not any(_mentions(item, name) for root in roots
                   for item in (root, *root.get("folded", []))):
            extra.append(finding("store_unreadable", "critical",
                                 {"store": name, "error": store.get("error")
                                  or "the store holds no value at all"},
                                 manual("Fix the store's address (a path, key or secret id "
                                        "with a typo?) or restore its value.")))
    # stores that failed the same way share one finding (an hba rule refuses them all)
    unexplained: dict[tuple, list[str]] = {}
    for probe in facts.get("probes") or []:
        name, category = probe.get("store"), probe.get("category") or "unknown"
        if probe.get("ok") or _explains(roots + extra, name, category):
            continue
        key = (category, probe.get("sqlstate"), redact(str(probe.get("message") or "")))
        unexplained.setdefault(key, []).append(name)
    for (category, sqlstate, message), names in unexplained.items():
        extra.append(finding("login_failed", "critical",
                             {"stores": names, "category": category, "sqlstate": sqlstate,
                              "message": message},
                             manual("Read the server's message: no known cause matches it. "
                                    "The server log has the DETAIL the client does not see.")))
    return extra


def split_write_only(facts: dict) -> tuple[dict, list[dict]]:
    """(facts without the write-only stores, those stores).  A write-only store yields no
    credential by design, so it is out of the read and probe set and the invariant applies
    to the stores that can be read; write_only_findings lists it as not checked."""
    stores = facts.get("stores") or []
    blind = [store for store in stores if store.get("write_only")]
    if not blind:
        return facts, []
    return {**facts, "stores": [store for store in stores if not store.get("write_only")]}, blind


def write_only_findings(blind: list[dict], checked: list[dict]) -> list[dict]:
    """An info finding per write-only store ("write-only, not checked"); when every store is
    write-only, a warning too: nothing shows which credential the application has, so the
    verdict is never healthy on write-only stores alone."""
    found = [finding("store_unreadable", "info",
                     {"store": store.get("store"), "write_only": True,
                      "status": "write-only, not checked"},
                     manual("A write-only store cannot be read back: rotate writes it, and only "
                            "the application that reads it can show what it holds (verify's "
                            "health URLs)."))
             for store in blind]
    if blind and not checked:
        found.append(finding("store_unreadable", "warning",
                             {"stores": [store.get("store") for store in blind],
                              "write_only": True,
                              "error": "every configured store is write-only, not checked: "
                                       "no credential could be read or tried"},
                             manual("Add a store that can be read back (the primary of a "
                                    "rotation always can).")))
    return found


def verifier_only(stores: list[dict]) -> bool:
    """Every store that was read holds a verifier (PgBouncer's auth_file): no password to
    log in with or to compare it with, so nothing is proven."""
    read = [store for store in stores if store.get("readable", True) and store.get("exists")]
    return bool(read) and all(store.get("holds_verifier") for store in read)


def verifier_only_findings(facts: dict) -> list[dict]:
    stores = facts.get("stores") or []
    if not verifier_only(stores):
        return []
    return [finding("store_unreadable", "warning",
                    {"stores": [store.get("store") for store in stores
                                if store.get("holds_verifier")],
                     "error": "every store read holds a verifier, not a password: no "
                              "credential could be tried or compared"},
                    manual("Add the store the application reads the password from: a "
                           "verifier store is checked against the other stores."))]


def dsn_rejected_findings(facts: dict) -> list[dict]:
    """store_dsn_invalid for a connection string that parses, but with a parameter its own
    client refuses (SQLAlchemy+asyncpg and sslmode=, libpq and ssl=): the application fails
    before it even sends the password, whatever the probe made of that password."""
    found = []
    for store in facts.get("stores") or []:
        rejected = store.get("dsn_rejected") or []
        if not store.get("readable", True) or not rejected:
            continue
        dialect = rejected[0].get("dialect")
        names = ", ".join(item.get("parameter") for item in rejected)
        found.append(finding(
            "store_dsn_invalid", "critical",
            {"store": store.get("store"), "dialect": dialect,
             "parameters": [{"parameter": item.get("parameter"), "reason": item.get("reason")}
                            for item in rejected]},
            manual(f"Change or remove {names} in the store's {dialect} connection string: its "
                   f"client refuses them (docs/stores.md, DSN dialects).")))
    return found
