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

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError
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
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import iam_facts
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import describe
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    with_store_credential,
)

GATHER_ERRORS = (PgError, StoreError, AwsError, LogSourceError)


def role_part(params: dict) -> dict:
    """pg_role_info over the admin connection; admin_error instead when it cannot log in."""
    try:
        conn = admin_connect(params)
    except PgError as err:
        return {"admin_error": f"{err.category or 'unknown'}: {err}", "server": None,
                "role": None, "sessions": [], "hba_rules": None}
    try:
        return {"admin_error": None, **gather(conn.cursor(), params["role"])}
    finally:
        conn.close()


def store_part(spec: dict, params: dict, fingerprint_key: str) -> dict:
    """secret_value_info of one store, readable=false with the reason when it cannot be read."""
    try:
        return describe(Store(spec, params), "current", fingerprint_key, False)
    except StoreError as err:
        return {"store": spec.get("name") or spec.get("type"), "readable": False,
                "error": str(err)}


def probe_part(spec: dict, params: dict, hide) -> dict:
    """pg_login_probe with the store's credential, the way the application logs in."""
    name = spec.get("name") or spec.get("type")
    try:
        login = with_store_credential(params, {"store": spec, "stage": "current"}, hide)
    except StoreError as err:
        return {"store": name, "ok": False, "category": "store_unreadable", "sqlstate": None,
                "message": str(err), "probed": False}
    result = probe(login, login["user"], login.get("password")).as_dict()
    result.pop("authenticated", None)
    return {"store": name, "probed": True, **result}


def _timed(timings: dict, label: str, work, *args):
    started = time.monotonic()
    try:
        return work(*args)
    finally:
        timings[label] = round(time.monotonic() - started, 3)


def gather_facts(params: dict, hide) -> dict:
    """All parts, in parallel; hide(value) registers a secret the module must mask."""
    # random per run, never given: a known key would make the fingerprints in the report a
    # target for offline password guessing
    key = secrets.token_hex(32)
    # the log scan stops where this run starts: its own probes are not the incident
    started = dt.datetime.now(dt.timezone.utc)
    stores, timings, errors = params.get("stores") or [], {}, []
    # the application's login: the admin's user, password and IAM choice do not apply
    probe_params = {**params, "user": params["role"], "login_user": None, "login_password": None,
                    "login_db": params.get("dbname") or params.get("login_db"),
                    "login_iam": (params.get("auth") or "password") == "iam"}
    with ThreadPoolExecutor(max_workers=4 + 2 * len(stores)) as pool:
        role = pool.submit(_timed, timings, "role", role_part, params)
        infos = [pool.submit(_timed, timings, f"store:{index}", store_part, spec, params, key)
                 for index, spec in enumerate(stores)]
        probes = ([pool.submit(_timed, timings, f"probe:{index}", probe_part, spec,
                               probe_params, hide)
                   for index, spec in enumerate(stores)] if params.get("probe", True) else [])
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
                 "probes": [found.result() for found in probes], "iam": None, "logs": None}
        for part, future in (("iam", iam), ("logs", logs)):
            if future is None:
                continue
            try:
                facts[part] = future.result()
            except GATHER_ERRORS as err:
                errors.append(f"{part}: {err}")
    facts["errors"] = errors
    facts["timings"] = timings
    # an opted-out IAM login over unverified TLS says so in the output and the report
    facts["warnings"] = sorted({probe["warning"] for probe in facts["probes"]
                                if probe.get("warning")})
    return facts
