# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What modules do with store dicts before they use a Store: argument specs, validation of a
list of stores, and the logins made with a store's credential (the application's, never the
admin's) or with an admin password read from a store."""
from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AWS_ARGSPEC,
    BOTO3_IMPORT_ERROR,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    client_sslmode,
)
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    STORE_OPTION,
    STORE_REF_OPTIONS,
    argument_spec,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    HOLDS_VERIFIER,
    STORE_OPTION_SPEC,
    Store,
    StoreError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.vault import (
    HVAC_IMPORT_ERROR,
    VAULT_ARGSPEC,
)


def store_argument_spec(**extra: dict) -> dict:
    """The store option plus the AWS and Vault connection options."""
    spec = argument_spec(STORE_OPTION)
    spec.update({name: dict(option) for name, option in AWS_ARGSPEC.items()})
    spec.update({name: dict(option) for name, option in VAULT_ARGSPEC.items()})
    spec.update(extra)
    return spec


def fail_if_store_libs_missing(module) -> None:
    kind = (module.params.get("store") or {}).get("type", "")
    if kind.startswith("aws_") and BOTO3_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
    if kind.startswith("vault") and HVAC_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("hvac"), exception=HVAC_IMPORT_ERROR)


# A reference to a store's credential, for modules that read the secret themselves.
STORE_REF_SPEC = argument_spec(STORE_REF_OPTIONS)


def read_credential(ref: dict, options: dict) -> Credential:
    """The credential a store reference points at; StoreError when there is none."""
    store = Store(ref["store"], options)
    cred, _stored = store.read(ref.get("stage") or "current")
    if cred is None:
        raise StoreError(f"store {store.name!r}: no {ref.get('stage') or 'current'} value")
    return cred


def with_store_credential(params: dict, ref: dict, hide) -> dict:
    """params for a login the way the application makes it, with a store's credential and
    nothing else: the credential's username, password, host, port, dbname and sslmode win
    where it has them; ``user`` and the login_host/port/db options fill the gaps; auth=iam
    asks for a token.  The admin's login_user and login_password are dropped: a store's
    endpoint never receives the admin's secret, and no password in the store means none is
    sent.  An IAM token (minted with the operator's AWS identity) is only minted for the
    configured endpoint, never for one the store names.
    hide(password) registers the secret with the module's no_log values."""
    cred = read_credential(ref, params)
    if cred.password:
        hide(cred.password)
    if cred.verifier:
        hide(cred.verifier)
        name = ref["store"].get("name") or ref["store"].get("type")
        raise StoreError(f"store {name!r}: not applicable: holds a verifier (PgBouncer's "
                         "auth_file), not a password, so nothing can log in with it; it is "
                         "checked by agreement with the other stores", HOLDS_VERIFIER)
    iam = bool(params.get("login_iam")) or cred.auth == "iam"
    # the TLS the credential's client would use: asyncpg's ssl=require, JDBC's ssl=true
    from_store = {"user": cred.username or params.get("user"), "login_host": cred.host,
                  "login_port": cred.port, "login_db": cred.dbname,
                  "ssl_mode": client_sslmode(cred)}
    login = {**params, **{key: value for key, value in from_store.items() if value is not None},
             "password": cred.password or None, "login_user": None, "login_password": None,
             "login_unix_socket": None if cred.host else params.get("login_unix_socket"),
             "login_iam": iam}
    moved = [(option, params.get(option), login.get(option))
             for option in ("login_host", "login_port") if login.get(option) != params.get(option)]
    if iam and moved:
        where = ", ".join(f"{option.removeprefix('login_')} {new!r} (configured: {old!r})"
                          for option, old, new in moved)
        login["iam_endpoint_refused"] = (
            f"store {ref['store'].get('name') or ref['store'].get('type')!r} addresses "
            f"{where}: no IAM token is minted for an endpoint that came from a store")
    return login


def with_admin_from_store(params: dict, hide) -> dict:
    """params whose login_password (and login_user, when not given) come from the store that
    login_password_from points at: an admin password never passes through playbook vars."""
    ref = params.get("login_password_from")
    if not ref:
        return params
    cred = read_credential(ref, params)
    if not cred.password:
        raise StoreError(f"store {ref['store'].get('name') or ref['store']['type']!r}: "
                         "the admin credential has no password")
    hide(cred.password)
    return {**params, "login_user": params.get("login_user") or cred.username,
            "login_password": cred.password}


def validated_stores(items: list, option: str) -> list[dict]:
    """Store dicts from a list option, checked against STORE_OPTION_SPEC (a module option
    that takes a list of stores declares it without suboptions, so its docs stay short)."""
    validator = ArgumentSpecValidator(STORE_OPTION_SPEC)
    stores = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise StoreError(f"{option}[{index}]: a store must be a dict, got "
                             f"{type(item).__name__}")
        checked = validator.validate(item)
        if checked.error_messages:
            label = item.get("name") or index
            raise StoreError(f"{option}[{label}]: {'; '.join(checked.error_messages)}")
        stores.append(checked.validated_parameters)
    return stores


def prepare_runbook_params(params: dict, hide) -> dict:
    """A runbook module's parameters, checked and completed: ``stores`` validated, the admin
    password read from ``login_password_from`` when given."""
    params = dict(params)
    params["stores"] = validated_stores(params.get("stores") or [], "stores")
    ref = params.get("login_password_from")
    if ref is not None:
        if not isinstance(ref.get("store"), dict):
            raise StoreError("login_password_from needs store: a store dict")
        params["login_password_from"] = {
            "store": validated_stores([ref["store"]], "login_password_from.store")[0],
            "stage": ref.get("stage") or "current"}
    return with_admin_from_store(params, hide)
