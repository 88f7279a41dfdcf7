# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every fact the runbooks judge a role's logins by, gathered in one process.

Each part is what one module returns on its own (pg_role_info, secret_value_info,
pg_login_probe, rds_iam_info, pg_auth_log_scan) and comes from the same functions.  A part
that fails is recorded, not raised: an unreachable store or API is itself a fact, and the
diagnosis needs the other parts all the same.  The parts are independent, so they run in
threads: on a real fleet most of the time is network round trips.
"""
from __future__ import annotations

import datetime as dt
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError, reuse_clients
from ansible_collections.credops.pgauth.plugins.module_utils.conflicts import other_rotators
from ansible_collections.credops.pgauth.plugins.module_utils.logsources import (
    LogSourceError,
    scan_logs,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    admin_connect,
    probe,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_info import gather
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import fetch_role
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import iam_facts
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_rds import (
    find_managed_secret,
    names_secret,
)
from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    hash_type,
    verify_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import describe
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    HOLDS_VERIFIER,
    WRITE_ONLY,
    Store,
    StoreError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    with_store_credential,
)
from ansible_collections.credops.pgauth.plugins.module_utils.verifier_stores import (
    assign_verifier_fingerprints,
)

GATHER_ERRORS = (PgError, StoreError, AwsError, LogSourceError)


def role_part(params: dict) -> dict:
    """pg_role_info over the admin connection; admin_error instead when it cannot log in."""
    try:
        conn = admin_connect(params)
    except PgError as err:
        # admin_error stays the text users read; admin_error_category is what code decides on
        return {"admin_error": f"{err.category or 'unknown'}: {err}",
                "admin_error_category": err.category or "unknown", "server": None,
                "role": None, "sessions": [], "hba_rules": None}
    try:
        return {"admin_error": None, "admin_error_category": None,
                **gather(conn.cursor(), params["role"])}
    finally:
        conn.close()


def store_part(spec: dict, params: dict, fingerprint_key: str, keep: dict | None = None) -> dict:
    """secret_value_info of one store, readable=false with the reason when it cannot be read.
    A write-only store is not read at all: it is listed as not checked (write_only).  keep
    gets the credential read (for the verifier stores' fingerprints; never returned)."""
    try:
        return describe(Store(spec, params), "current", fingerprint_key, False, keep)
    except StoreError as err:
        if err.code == WRITE_ONLY:
            return {"store": spec.get("name") or spec.get("type"), "type": spec.get("type"),
                    "write_only": True, "checked": False, "status": "write-only, not checked"}
        return {"store": spec.get("name") or spec.get("type"), "readable": False,
                "error": str(err), "error_code": err.code}


PENDING_TYPES = ("aws_secretsmanager", "vault_kv2", "vault_kv1")


def _whitespace(password: str) -> dict | None:
    """Which end of a password has whitespace, and what kind: never the value."""
    stripped = password.strip()
    if not password or stripped == password:
        return None
    ends = [end for end, edge in (("leading", password[:len(password) - len(password.lstrip())]),
                                  ("trailing", password[len(password.rstrip()):])) if edge]
    edges = password[:len(password) - len(password.lstrip())] + password[len(password.rstrip()):]
    kinds = sorted({"newline" if char in "\r\n" else "tab" if char == "\t" else "space"
                    if char == " " else "other" for char in edges})
    return {"ends": ends, "characters": kinds}


def probe_part(spec: dict, params: dict, hide, candidates: dict) -> dict | None:
    """pg_login_probe with the store's credential, the way the application logs in.  When it
    fails: the pending value's login too (a rotation that died before promote), and a
    password padded with whitespace is noted in candidates (checked once, by gather_facts)."""
    name = spec.get("name") or spec.get("type")
    try:
        login = with_store_credential(params, {"store": spec, "stage": "current"}, hide)
    except StoreError as err:
        if err.code in (WRITE_ONLY, HOLDS_VERIFIER):
            # nothing to log in with: out of the probe set, listed as not checked (write-only)
            # or checked by agreement (a verifier), never a failed login
            return None
        return {"store": name, "ok": False, "category": "store_unreadable", "sqlstate": None,
                "message": str(err), "probed": False}
    result = probe(login, login["user"], login.get("password")).as_dict()
    result.pop("authenticated", None)
    out = {"store": name, "probed": True, **result}
    if result["ok"]:
        return out
    padded = _whitespace(login.get("password") or "")
    if padded and result["category"] == "store_password_mismatch":
        out["whitespace"] = padded
        candidates[name] = (login, login["password"].strip())
    if spec.get("type") in PENDING_TYPES:
        try:
            pending = with_store_credential(params, {"store": spec, "stage": "pending"}, hide)
        except StoreError:
            return out  # no pending value: nothing was interrupted
        tried = probe(pending, pending["user"], pending.get("password"))
        out["pending"] = {"ok": tried.ok, "category": tried.category}
    return out


def check_stripped(params: dict, candidates: dict, probes: list[dict]) -> None:
    """For each padded password: does the stripped one match the role's SCRAM verifier (read
    from pg_authid, no login), or, where that is hidden, log in?  Sets stripped_matches."""
    if not candidates:
        return
    verifier = None
    try:
        conn = admin_connect(params)
        try:
            state = fetch_role(conn.cursor(), params["role"])
            verifier = state.stored_password if state.authid_readable else None
        finally:
            conn.close()
    except PgError:
        pass
    for found in probes:
        if found["store"] not in candidates:
            continue
        login, stripped = candidates[found["store"]]
        if verifier is not None and hash_type(verifier) == "scram":
            found["whitespace"]["stripped_matches"] = verify_password(stripped, verifier)
            found["whitespace"]["checked_by"] = "pg_authid"
        else:
            found["whitespace"]["stripped_matches"] = probe(login, login["user"], stripped).ok
            found["whitespace"]["checked_by"] = "login"


def consumer_facts(params: dict, probe_params: dict, facts: dict, hide, errors: list) -> None:
    """The poolers in front of the database (diagnose) and each consumer's confirmation
    (verify, with confirm_consumers)."""
    from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
        ConsumerError,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.facts_consumers import (
        consumer_checks,
        pooler_facts,
    )
    facts["poolers"], facts["consumers"] = [], []
    if not params.get("consumers"):
        return
    try:
        facts["poolers"] = pooler_facts(params, probe_params, facts["stores"], hide)
    except ConsumerError as err:
        errors.append(f"consumers: {err}")
    if params.get("confirm_consumers"):
        facts["consumers"] = consumer_checks(params, hide)


def _timed(timings: dict, label: str, work, *args):
    started = time.monotonic()
    try:
        return work(*args)
    finally:
        timings[label] = round(time.monotonic() - started, 3)


def gather_facts(params: dict, hide) -> dict:
    """All parts, in parallel; hide(value) registers a secret the module must mask.  The
    parts share their AWS clients (a store is read, probed and checked for rotators)."""
    with reuse_clients():
        return _gather(params, hide)


def _gather(params: dict, hide) -> dict:
    # random per run, never given: a known key would make the fingerprints in the report a
    # target for offline password guessing
    key = secrets.token_hex(32)
    # the log scan stops where this run starts: its own probes are not the incident
    started = dt.datetime.now(dt.timezone.utc)
    stores, timings, errors = params.get("stores") or [], {}, []
    # a master password RDS manages lives in a secret RDS owns: read it as a store too, and
    # leave it out of the rotator check (RDS is the rotator rotate_via rds_managed asks)
    managed = find_managed_secret(params, params["role"])
    if managed and not any(names_secret(store, managed["secret_id"]) for store in stores):
        stores = [*stores, managed]
    rotator_stores = [store for store in stores
                      if not (managed and names_secret(store, managed["secret_id"]))]
    candidates: dict = {}  # store -> (login, stripped password): never returned
    kept: dict = {}  # store -> the credential read: never returned
    # the application's login: the admin's user, password and IAM choice do not apply
    probe_params = {**params, "user": params["role"], "login_user": None, "login_password": None,
                    "login_db": params.get("dbname") or params.get("login_db"),
                    "login_iam": (params.get("auth") or "password") == "iam"}
    with ThreadPoolExecutor(max_workers=4 + 2 * len(stores)) as pool:
        role = pool.submit(_timed, timings, "role", role_part, params)
        infos = [pool.submit(_timed, timings, f"store:{index}", store_part, spec, params, key,
                             kept)
                 for index, spec in enumerate(stores)]
        probes = ([pool.submit(_timed, timings, f"probe:{index}", probe_part, spec,
                               probe_params, hide, candidates)
                   for index, spec in enumerate(stores)] if params.get("probe", True) else [])
        rotators = pool.submit(_timed, timings, "rotators", other_rotators, rotator_stores,
                               params, params["role"])
        iam = logs = None
        if params.get("db_instance_identifier") or params.get("db_cluster_identifier"):
            iam = pool.submit(_timed, timings, "iam", iam_facts, params,
                              params.get("db_instance_identifier"),
                              params.get("db_cluster_identifier"), params["role"],
                              params.get("principal_arn"))
        if params.get("log_files") or params.get("cloudwatch_log_groups"):
            logs = pool.submit(_timed, timings, "logs", scan_logs, params,
                               params.get("log_files") or [],
                               params.get("cloudwatch_log_groups") or [],
                               params.get("logs_since"), params["role"], 5, None, started)
        facts = {**role.result(), "stores": [info.result() for info in infos],
                 "probes": [found.result() for found in probes if found.result() is not None],
                 "iam": None, "logs": None}
        for part, future in (("iam", iam), ("logs", logs)):
            if future is None:
                continue
            try:
                facts[part] = future.result()
            except GATHER_ERRORS as err:
                errors.append(f"{part}: {err}")
    # a store holding a verifier gets the fingerprint of the password that verifies against it
    assign_verifier_fingerprints(facts["stores"], kept, key)
    kept.clear()
    facts["rotators"], rotator_errors = rotators.result()
    # a store that cannot be read is its own finding: its rotator check adds nothing
    unread = tuple(f"store {store['store']!r}" for store in facts["stores"]
                   if not store.get("readable", True))
    errors += [error for error in rotator_errors if not unread or not error.startswith(unread)]
    check_stripped(params, candidates, facts["probes"])
    consumer_facts(params, probe_params, facts, hide, errors)
    facts["errors"] = errors
    facts["managed_secret"] = managed["secret_id"] if managed else None
    facts["timings"] = timings
    # the findings compare VALID UNTIL with this, not with the time they are computed
    facts["gathered_at"] = started.isoformat(timespec="seconds")
    # an opted-out IAM login over unverified TLS says so in the output and the report
    facts["login_warnings"] = sorted({probe["warning"] for probe in facts["probes"]
                                      if probe.get("warning")})
    return facts
