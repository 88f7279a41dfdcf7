# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's Vault/OpenBao scope: a KV v1 or v2 subtree listed recursively (bounded by
max_depth; the engine bounds the count and the time) into vault store dicts.

A secret's fields are looked at only to choose the store: an RDS-style object (a password
field) is ``format: json``; otherwise the first field holding a DSN is ``format: dsn`` with
``key``, or a lone password-named field ``format: password`` with ``key``.
"""
from __future__ import annotations

import re

from ansible_collections.credops.pgauth.plugins.module_utils.credential import looks_like_dsn
from ansible_collections.credops.pgauth.plugins.module_utils.discover_aws import ScopeError
from ansible_collections.credops.pgauth.plugins.module_utils.vault import (
    VaultError,
    vault_client,
)

try:
    import hvac
except ImportError:
    hvac = None

_PASSWORD_FIELD = re.compile(r"(?i)(^|[_.-])(password|passwd|pwd|pass)$")


def choose_field(data: dict) -> dict | None:
    """format (and key) for a KV secret's data, or None when nothing in it is a credential."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("password"), str):
        return {"format": "json"}
    for field, value in data.items():
        if isinstance(value, str) and looks_like_dsn(value):
            return {"format": "dsn", "key": field}
    for field, value in data.items():
        if isinstance(value, str) and value and _PASSWORD_FIELD.search(str(field)):
            return {"format": "password", "key": field}
    return None


class _Kv:
    """list and read for one KV version."""

    def __init__(self, api, version: int, mount: str):
        self.api, self.version, self.mount = api, version, mount

    def list(self, path: str) -> list[str]:
        try:
            if self.version == 2:
                answer = self.api.secrets.kv.v2.list_secrets(path=path, mount_point=self.mount)
            else:
                answer = self.api.secrets.kv.v1.list_secrets(path=path, mount_point=self.mount)
        except hvac.exceptions.InvalidPath:
            return []
        return list(((answer or {}).get("data") or {}).get("keys") or [])

    def read(self, path: str) -> dict | None:
        try:
            if self.version == 2:
                answer = self.api.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True)
                return ((answer or {}).get("data") or {}).get("data")
            return ((self.api.secrets.kv.v1.read_secret(path=path, mount_point=self.mount)
                     or {}).get("data"))
        except hvac.exceptions.InvalidPath:
            return None


def vault_kv(scope: dict, options: dict, run):
    kind = scope["type"]
    version = 2 if kind == "vault_kv2" else 1
    mount = scope.get("mount_point") or ("secret" if version == 2 else "kv1")
    root = (scope.get("path") or "").strip("/")
    max_depth = int(scope.get("max_depth") or 5)
    try:
        kv = _Kv(vault_client(options), version, mount)
    except VaultError as err:
        raise ScopeError(f"{run.label}: {err}") from None
    pending = [(root, 0)]
    while pending:
        path, depth = pending.pop(0)
        run.check_time()
        try:
            keys = kv.list(path)
        except (hvac.exceptions.VaultError, OSError) as err:
            raise ScopeError(f"{run.label}: listing {mount}/{path or ''} failed "
                             f"({type(err).__name__})") from None
        for key in sorted(keys):
            child = f"{path}/{key}".strip("/") if path else key.strip("/")
            if key.endswith("/"):
                if depth + 1 < max_depth:
                    pending.append((child, depth + 1))
                else:
                    run.warn(f"{mount}/{child}/ is deeper than max_depth {max_depth}: not listed")
                continue
            run.tick()
            try:
                data = kv.read(child)
            except (hvac.exceptions.VaultError, OSError):
                run.skip(f"{mount}/{child}: unreadable")
                continue
            chosen = choose_field(data)
            if chosen:
                yield {"type": kind, "mount_point": mount, "path": child, **chosen}
