# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What diagnose and verify learn about the consumers (pgauth_consumers), in the facts:

- poolers: for each pgbouncer consumer, the stores whose credential points at it (the app
  logs in through the pooler: its probe went there), each of those probed once more at the
  database itself, and whether the auth_file holds the database's verifier;
- consumers (verify): each consumer's confirmation, one attempt, with the primary store's
  credential.
No secret is returned: logins say ok and a category, the auth_file comparison a boolean."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    ConsumerContext,
    ConsumerError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumers import make_consumers
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    admin_connect,
    probe,
    psycopg2,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import StoreError
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    read_credential,
    with_store_credential,
)


def _points_at(store: dict, host: str, port: int) -> bool:
    cred = store.get("credential") or {}
    return (str(cred.get("host") or "").lower() == host.lower()
            and str(cred.get("port") or "") == str(port))


def _direct(spec: dict, probe_params: dict, hide) -> dict:
    """The store's credential at the target's endpoint (the database behind the pooler)."""
    try:
        login = with_store_credential(probe_params, {"store": spec, "stage": "current"}, hide)
    except StoreError as err:
        return {"ok": False, "category": "store_unreadable", "message": str(err)}
    login = {**login, "login_host": probe_params.get("login_host"),
             "login_port": probe_params.get("login_port")}
    result = probe(login, login["user"], login.get("password"))
    return {"ok": result.ok, "category": result.category}


def pooler_facts(params: dict, probe_params: dict, stores: list[dict], hide) -> list[dict]:
    specs = {spec.get("name") or spec.get("type"): spec for spec in params.get("stores") or []}
    out = []
    consumers = make_consumers(params.get("consumers"), hide)
    for consumer in consumers:
        if consumer.TYPE != "pgbouncer":
            continue
        endpoint = consumer.endpoint()
        host, port = endpoint["login_host"], endpoint["login_port"]
        pointing = [store["store"] for store in stores if _points_at(store, host, port)]
        item = {"consumer": consumer.name, "pooler": f"{host}:{port}", "stores": pointing,
                "direct": {name: _direct(specs[name], probe_params, hide)
                           for name in pointing if name in specs},
                "auth_file_current": None, "error": None}
        if consumer.auth_file:
            item["auth_file_current"], item["error"] = _auth_file_current(consumer, params)
        out.append(item)
    return out


def _auth_file_current(consumer, params: dict) -> tuple[bool | None, str | None]:
    try:
        conn = admin_connect(params)
    except PgError as err:
        return None, f"admin connection: {err}"
    try:
        ctx = ConsumerContext(conn.cursor(), params, params["role"], None)
        return consumer.file_entry(ctx.user) == consumer.database_verifier(ctx), None
    except ConsumerError as err:
        return None, str(err)
    finally:
        conn.close()


def consumer_checks(params: dict, hide) -> list[dict]:
    """verify: each consumer confirmed once with the primary store's credential."""
    specs = params.get("consumers") or []
    if not specs:
        return []
    try:
        consumers = make_consumers(specs, hide)
    except ConsumerError as err:
        return [{"consumer": "consumers", "type": None, "ok": False, "error": str(err)}]
    cred = None
    stores = params.get("stores") or []
    if stores:
        try:
            cred = read_credential({"store": stores[0]}, params)
            if cred.password:
                hide(cred.password)
        except StoreError:
            cred = None
    try:
        conn = admin_connect(params)
    except PgError as err:
        return [{"consumer": c.name, "type": c.TYPE, "ok": False,
                 "error": f"admin connection: {err}"} for c in consumers]
    out = []
    try:
        ctx = ConsumerContext(conn.cursor(), params, params["role"], cred)
        for consumer in consumers:
            try:
                checks = consumer.confirm_once(ctx)
                if consumer.TYPE == "pgbouncer" and consumer.auth_file and \
                        consumer.file_entry(ctx.user) != consumer.database_verifier(ctx):
                    raise consumer.error("its auth_file does not hold the database's verifier")
                out.append({"consumer": consumer.name, "type": consumer.TYPE, "ok": True,
                            "checks": checks})
            except (ConsumerError, psycopg2.Error) as err:
                out.append({"consumer": consumer.name, "type": consumer.TYPE, "ok": False,
                            "error": str(err).strip()})
    finally:
        conn.close()
    return out
