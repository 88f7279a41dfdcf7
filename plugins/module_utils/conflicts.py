# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts for ``rotation_conflict``: another rotator that already owns the credential.

Two rotators on one password take turns breaking it (ours promotes, theirs rotates an hour
later and the stores we do not know about go stale, or the other way round), so diagnose
warns and rotate refuses.  Detected, read-only:

- ``secretsmanager_rotation``: a Secrets Manager store whose secret has rotation enabled
  (a rotation Lambda and a schedule);
- ``rds_managed_secret``: a Secrets Manager store holding an RDS-managed master secret
  (``OwningService`` rds, a name starting ``rds!``): RDS rotates it, nobody else may;
- ``vault_database_static_role``: a Vault/OpenBao database-engine static role whose
  ``username`` is the role (asked once per Vault address and namespace of the stores).

Only non-secret facts come back (names, ARNs, schedules, mounts); a static role's
credentials are never read.  What cannot be asked is an error string naming the stores.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    StoreNotFound,
)
from ansible_collections.credops.pgauth.plugins.module_utils.vault import (
    VaultError,
    shown_url,
    vault_client,
    vault_modules,
)

MAX_STATIC_ROLES = 200     # per mount: each is one read, and diagnose's wall time counts
MAX_DATABASE_MOUNTS = 20   # per Vault: the same bound on a Vault with many databases
FALLBACK_MOUNT = "database"
_RULE_KEYS = ("AutomaticallyAfterDays", "ScheduleExpression", "Duration")
_STATIC_ROLE_KEYS = ("db_name", "rotation_period", "rotation_schedule", "rotation_window",
                     "last_vault_rotation", "credential_type")


def _when(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _secretsmanager(spec: dict, options: dict) -> list[dict]:
    """The rotator owning a Secrets Manager store's secret, if any; StoreError otherwise."""
    store = Store(spec, options)  # the store's own client and endpoint checks
    name = store.name  # the name every other finding gives this store
    try:
        # errors name the store and carry no secret
        described = store.metadata() or {}
    except StoreNotFound:
        return []  # no such secret: store_unreadable's business, not a conflict
    rules = {key: value for key, value in (described.get("RotationRules") or {}).items()
             if key in _RULE_KEYS}
    tags = {tag.get("Key"): tag.get("Value") for tag in described.get("Tags") or []}
    owner = described.get("OwningService") or tags.get("aws:secretsmanager:owningService")
    secret = described.get("Name") or spec["secret_id"]
    common = {"secret_id": secret, "arn": described.get("ARN"),
              "rotation_enabled": bool(described.get("RotationEnabled")),
              "rotation_rules": rules,
              "last_rotated_date": _when(described.get("LastRotatedDate")),
              "next_rotation_date": _when(described.get("NextRotationDate"))}
    if owner == "rds" or secret.startswith("rds!"):
        # RDS-managed (ManageMasterUserPassword): RDS rotates it, with or without a
        # RotationEnabled flag; one entry, the more specific one
        resources = {key: value for key, value in tags.items()
                     if key and key.startswith("aws:rds:")}
        return [{"store": name, "rotator": "rds_managed_secret",
                 "detail": {**common, "owning_service": owner or "rds",
                            "rds_resources": resources}}]
    if described.get("RotationEnabled"):
        return [{"store": name, "rotator": "secretsmanager_rotation",
                 "detail": {**common, "rotation_lambda_arn": described.get("RotationLambdaARN")}}]
    return []


class _Denied(Exception):
    """Vault said 403 to one request."""


def _vault_get(what: str, func, *args, **kwargs):
    """One Vault request; None on 404 (no such mount/role), _Denied on 403, VaultError
    otherwise (the exception's type only: hvac's text may echo a request)."""
    hvac, requests = vault_modules()  # imported by the vault_client that func belongs to
    try:
        return func(*args, **kwargs)
    except hvac.exceptions.InvalidPath:
        return None
    except hvac.exceptions.Forbidden:
        raise _Denied(what) from None
    except hvac.exceptions.Unauthorized:
        raise VaultError(f"the Vault token is not valid ({what})") from None
    except hvac.exceptions.VaultDown:
        raise VaultError(f"Vault is sealed or down ({what})") from None
    except hvac.exceptions.VaultError as err:
        raise VaultError(f"{what} failed: {type(err).__name__}") from None
    except requests.exceptions.RequestException as err:
        raise VaultError(f"cannot reach Vault ({what}): {type(err).__name__}") from None


def _database_mounts(client) -> list[str]:
    """The database-engine mounts ("path/") this token can see.  sys/mounts needs a policy
    most app tokens lack; sys/internal/ui/mounts answers any token with the mounts it has
    some access to (so nothing it could ask is missed); when even that is refused, only the
    engine's default mount is tried."""
    try:
        got = _vault_get("read sys/mounts", client.sys.list_mounted_secrets_engines)
        if got is None:  # 404: what OpenBao and Vault answer for a namespace that is not there
            raise VaultError("read sys/mounts: not found (is the namespace right?)")
        mounts = got.get("data") or got
    except _Denied:
        try:
            got = _vault_get("read sys/internal/ui/mounts", client.adapter.get,
                             "/v1/sys/internal/ui/mounts")
            mounts = ((got or {}).get("data") or {}).get("secret") or {}
        except (_Denied, VaultError):
            return [FALLBACK_MOUNT + "/"]
    return sorted(path for path, info in mounts.items()
                  if isinstance(info, dict) and info.get("type") == "database")


def _static_roles(client, mount: str, role: str, errors: list[str], where: str) -> list[dict]:
    """The static roles of one mount that manage role (case-sensitive, as PostgreSQL is)."""
    point = mount.rstrip("/")
    try:
        listed = _vault_get(f"list {mount}static-roles",
                            client.secrets.database.list_static_roles, mount_point=point)
    except _Denied:
        errors.append(f"{where}: permission denied to list {mount}static-roles; a static role "
                      f"managing {role!r} there cannot be ruled out")
        return []
    # names ending in "/" are folders (hierarchical names): not followed, bounded below
    names = [key for key in ((listed or {}).get("data") or {}).get("keys") or []
             if isinstance(key, str) and not key.endswith("/")]
    if len(names) > MAX_STATIC_ROLES:
        errors.append(f"{where}: {mount} has {len(names)} static roles; only the first "
                      f"{MAX_STATIC_ROLES} were read")
        names = names[:MAX_STATIC_ROLES]
    found, denied = [], 0
    for name in names:
        try:
            got = _vault_get(f"read {mount}static-roles/{name}",
                             client.secrets.database.read_static_role, name, mount_point=point)
        except _Denied:
            denied += 1
            continue
        data = (got or {}).get("data") or {}
        if data.get("username") == role:
            found.append({"mount": mount, "static_role": name,
                          **{key: data[key] for key in _STATIC_ROLE_KEYS if key in data}})
    if denied:
        errors.append(f"{where}: permission denied to read {denied} of {len(names)} static "
                      f"roles in {mount}")
    return found


def _vault(group: list[dict], options: dict, role: str, errors: list[str]) -> list[dict]:
    """Ask one Vault (address, namespace) about its database engine, for all its stores."""
    spec = group[0]
    names = [store["name"] for store in group]
    merged = dict(options)
    for key in ("url", "namespace"):
        if spec.get(key):
            merged[key] = spec[key]
    shown = shown_url(merged["url"]) if merged.get("url") else "Vault"
    namespace = f", namespace {merged['namespace']}" if merged.get("namespace") else ""
    where = (f"store{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)} "
             f"(Vault at {shown}{namespace})")
    try:
        client = vault_client(merged, "this store's url" if spec.get("url") else
                              "the url option or VAULT_ADDR/BAO_ADDR")
        mounts = _database_mounts(client)
        if len(mounts) > MAX_DATABASE_MOUNTS:
            errors.append(f"{where}: {len(mounts)} database mounts; only the first "
                          f"{MAX_DATABASE_MOUNTS} were asked")
            mounts = mounts[:MAX_DATABASE_MOUNTS]
        found = []
        for mount in mounts:
            found += _static_roles(client, mount, role, errors, where)
    except VaultError as err:
        errors.append(f"{where}: the database engine cannot be asked: {err}")
        return []
    detail = {"vault": shown, "namespace": merged.get("namespace"), "stores": names}
    return [{"store": names[0], "rotator": "vault_database_static_role",
             "detail": {**detail, **entry}} for entry in found]


def other_rotators(stores: list[dict], options: dict, role: str) -> tuple[list[dict], list[str]]:
    """(rotators, errors): every other rotator that owns role's credential in these stores,
    as {"store", "rotator", "detail"}, and what could not be asked, as messages naming the
    store.  Read-only; never raises for a store or an API that fails."""
    rotators: list[dict] = []
    errors: list[str] = []
    vaults: dict[tuple, list[dict]] = {}
    for spec in stores:
        kind = spec.get("type")
        if kind == "aws_secretsmanager":
            try:
                rotators += _secretsmanager(spec, options)
            except StoreError as err:
                errors.append(str(err))
        elif kind in ("vault_kv2", "vault_kv1"):
            # one question per Vault, not per store: the engine is the server's, not a path's
            url = (spec.get("url") or options.get("url") or "").rstrip("/")
            key = (url, spec.get("namespace") or options.get("namespace"))
            # labelled as the store backend labels it (VaultKvBackend.describe)
            mount = spec.get("mount_point") or ("secret" if kind == "vault_kv2" else "kv1")
            name = spec.get("name") or f"{kind} {mount}/{spec.get('path')}"
            vaults.setdefault(key, []).append({**spec, "name": name})
        # files and other types have no rotator of their own
    for group in vaults.values():
        rotators += _vault(group, options, role, errors)
    return rotators, errors
