# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault/OpenBao connection options (the community.hashi_vault names) and an hvac client."""
from __future__ import annotations

import importlib.util

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    endpoint_refusal,
    shown_url,
)

# the endpoint check is the one the AWS clients use (DESIGN §7: one rule, one place)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    ENDPOINT_OPTIONS,
    VAULT_OPTIONS,
    argument_spec,
)

# hvac (and requests) are imported by the first Vault client, not with this file: about
# 0.1 s of CPU in every module process whose target has no Vault store (issue 20).
HVAC_IMPORT_ERROR = (None if importlib.util.find_spec("hvac") else
                     "ModuleNotFoundError: No module named 'hvac'")


def vault_modules() -> tuple:
    """(hvac, requests), imported on first use; (None, None) when hvac is not installed."""
    if HVAC_IMPORT_ERROR:
        return None, None
    import hvac
    import hvac.exceptions
    import requests.exceptions
    return hvac, requests


def __getattr__(name: str):
    """`from vault import hvac, requests` (the Vault store) imports them then (PEP 562)."""
    if name in ("hvac", "requests"):
        return vault_modules()[name == "requests"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# the community.hashi_vault names, VAULT_* and BAO_* fallbacks, from the option registry
VAULT_ARGSPEC = argument_spec({**VAULT_OPTIONS, **ENDPOINT_OPTIONS})


class VaultError(PgauthError):
    """Vault could not be reached or refused us; the message never holds a token."""


def vault_client(params: dict, url_source: str = "the url option or VAULT_ADDR/BAO_ADDR"):
    """An hvac client, logged in; VaultError when it cannot be, or when the address is one
    the token must not go to (endpoint_refusal: checked before hvac is even made, so the
    token and an AppRole secret_id never leave).  url_source says where params' url came
    from, for that error."""
    hvac, requests = vault_modules()
    if hvac is None:
        raise VaultError("hvac is required for Vault stores (pip install hvac)")
    url = params.get("url")
    if not url:
        raise VaultError("no Vault address (set url, or VAULT_ADDR)")
    refusal = endpoint_refusal(url, "Vault", url_source, params)
    if refusal:
        raise VaultError(refusal)
    verify = params.get("ca_cert") or params.get("validate_certs", True)
    client = hvac.Client(url=url, namespace=params.get("namespace"), verify=verify,
                         timeout=params.get("vault_timeout") or 10)
    method = params.get("auth_method") or "token"
    try:
        if method == "token":
            if not params.get("token"):
                raise VaultError("no Vault token (set token, or VAULT_TOKEN)")
            client.token = params["token"]
        else:
            if not (params.get("role_id") and params.get("secret_id")):
                raise VaultError("approle auth needs role_id and secret_id")
            client.auth.approle.login(role_id=params["role_id"], secret_id=params["secret_id"])
    except hvac.exceptions.VaultError as err:
        raise VaultError(f"{method} login to {shown_url(url)} failed: "
                         f"{type(err).__name__}") from None
    except requests.exceptions.RequestException as err:
        raise VaultError(f"cannot reach Vault at {shown_url(url)}: "
                         f"{type(err).__name__}") from None
    return client
