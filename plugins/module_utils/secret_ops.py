# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What secret_value and secret_value_info do, over the Store interface."""
from __future__ import annotations

import hashlib
import hmac

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    ALIASES,
    FIELDS,
    Credential,
    CredentialError,
    dsn_rejected,
    generate_password,
    is_placeholder,
)
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    GENERATE_OPTIONS,
    argument_spec,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError

# the one generate spec (pg_rotate takes the same), from the option registry
GENERATE_SPEC = argument_spec(GENERATE_OPTIONS)


# the fields of a credential that are not secret, under every name a store may use
PUBLIC_FIELDS = frozenset(name for name in (*FIELDS, *ALIASES) if ALIASES.get(name, name)
                          in FIELDS and ALIASES.get(name, name) != "password")


def unmask_public_fields(no_log_values: set, value) -> None:
    """``value`` is no_log, so Ansible masks every leaf of a dict value, usernames and ports
    included; unmask the known public fields (username, host, port, dbname, auth, sslmode),
    and only once the whole value is valid.  A misspelt key ("Password") stays masked: its
    value may well be the password, and the error about it must not show it."""
    if not isinstance(value, dict):
        return
    try:
        Credential().merged(value)
    except (CredentialError, TypeError, ValueError):
        return
    password = value.get("password")
    for key, field_value in value.items():
        if key in PUBLIC_FIELDS and field_value is not None and str(field_value) != password:
            no_log_values.discard(str(field_value))


def _view(cred) -> dict:
    return cred.public() if cred is not None else {}


def set_value(store: Store, params: dict, check_mode: bool, hide) -> dict:
    """state=present: write value (or a generated password) at stage.  hide(secret) registers
    a secret with Ansible's no_log masking before anything could print it."""
    stage = params["stage"]
    value, generate = params.get("value"), params.get("generate")
    if value is None and generate is None:
        raise StoreError(f"store {store.name!r}: give value, generate, or promote")
    update = dict(value) if isinstance(value, dict) else (
        {"password": str(value)} if value is not None else {})
    if "password" in update and update["password"] is not None:
        hide(str(update["password"]))
    result = {"store": store.name, "stage": stage, "generated": False, "pending_exists": False}
    if generate is not None:
        if stage == "pending" and store.pending() is not None:
            # never a second new password while a rotation is in progress: resume it
            cred, stored = store.read("pending")
            result.update(changed=False, pending_exists=True, version=stored.version,
                          credential=_view(cred))
            return result
        try:
            update["password"] = generate_password(**generate)
        except CredentialError as err:
            raise StoreError(f"store {store.name!r}: generate: {err}") from None
        hide(update["password"])
        result["generated"] = True
    plan = store.plan_write(update, stage)
    previous_version = plan.previous.version if plan.previous else None
    result.update(changed=plan.changed, previous_version=previous_version,
                  version=previous_version, credential=_view(plan.credential))
    result["diff"] = {"before": _view(plan.before),
                      "after": dict(_view(plan.credential),
                                    password="(changed)" if plan.changed and "password" in update
                                    else "(unchanged)")}
    if plan.changed and not check_mode:
        result["version"] = store.write(plan, stage)
    result["pending_exists"] = stage == "pending" and (plan.changed or plan.previous is not None)
    return result


def promote(store: Store, check_mode: bool) -> dict:
    pending = store.pending()
    result = {"store": store.name, "stage": "current", "changed": pending is not None,
              "promoted": pending is not None, "version": None}
    if pending is not None:
        result["pending_version"] = pending.version
        if not check_mode:
            _changed, result["version"] = store.promote()
    return result


def remove(store: Store, stage: str, check_mode: bool) -> dict:
    if stage == "pending":
        pending = store.pending()
        if pending is not None and not check_mode:
            store.discard_pending()
        return {"store": store.name, "stage": stage, "changed": pending is not None}
    _cred, stored = store.read("current")
    if stored is not None and not check_mode:
        store.delete()
    return {"store": store.name, "stage": stage, "changed": stored is not None}


def fingerprint(password: str, key: str) -> str:
    """A keyed hash to compare passwords across stores without revealing them."""
    return hmac.new(key.encode("utf-8"), password.encode("utf-8"), hashlib.sha256).hexdigest()


def describe(store: Store, stage: str, fingerprint_key: str | None,
             include_password: bool, keep: dict | None = None) -> dict:
    """secret_value_info's result.  keep, when given, gets the credential read under the
    store's name (for comparing a verifier store with the others; never returned)."""
    cred, stored = store.read(stage)
    if keep is not None:
        keep[store.name] = cred
    out = {"store": store.name, "type": store.spec["type"], "stage": stage,
           "exists": cred is not None, "readable": True,
           "version": stored.version if stored else None,
           "stages": stored.stages if stored else [],
           "changed_at": stored.changed_at if stored else None,
           "deleted": bool(stored and stored.deleted),
           "pending_exists": store.pending() is not None if stage == "current" else None,
           "credential": _view(cred)}
    exposure = store.plaintext_exposure()
    if exposure:
        out["plaintext_exposure"] = exposure
    if cred is not None and cred.verifier:
        # no password to judge or log in with: compared with the other stores' passwords
        # (verifier_stores.py), the verifier itself never shown
        out.update(holds_verifier=True, placeholder=False, checked_by="agreement")
    elif cred is not None:
        out["placeholder"] = is_placeholder(cred.password)
        out["password_length"] = len(cred.password or "")
        # what the DSN's own client refuses (asyncpg and sslmode=): names, never values
        if cred.dialect:
            out["dsn_rejected"] = dsn_rejected(cred)
        if fingerprint_key and cred.password:
            out["password_fingerprint"] = fingerprint(cred.password, fingerprint_key)
        if include_password:
            out["credential"]["password"] = cred.password
    return out
