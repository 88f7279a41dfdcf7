# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault / OpenBao KV (v2 and v1) as a store.

KV has no stages, so a pending value lives at a sibling path, ``<path>__pgauth_pending``
in the same mount (a policy that can write ``<path>`` needs the same on the sibling).
Promotion copies it to ``<path>`` (KV v2: with check-and-set on the version read) and
deletes the sibling; if that is interrupted, the next run sees the pending value already
current and only deletes the sibling.  KV v2 writes use CAS, so a concurrent change
fails loudly instead of being overwritten, and an equal value writes no new version.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Backend,
    StoredValue,
    StoreNotFound,
)
from ansible_collections.credops.pgauth.plugins.module_utils.vault import (
    VaultError,
    hvac,
    requests,
    shown_url,
    vault_client,
)

PENDING_SUFFIX = "__pgauth_pending"


class VaultKvBackend(Backend):
    supports_pending = True
    default_format = "json"

    def __init__(self, spec: dict, options: dict):
        self.version = 2 if spec["type"] == "vault_kv2" else 1
        self.mount = spec.get("mount_point") or ("secret" if self.version == 2 else "kv1")
        super().__init__(spec, options)
        if not spec.get("path"):
            raise self.error("path is required")
        self.field = spec.get("key")
        # with a key, the value is one field of the secret (a password or a DSN string)
        self.value_is_text = bool(self.field)
        merged = dict(options)
        for key in ("url", "namespace"):
            if spec.get(key):
                merged[key] = spec[key]
        # the error (the backend's, so it names the store) says a refused url is the store's
        # own: the module's token would go where whoever wrote the store dict chose
        self.url = shown_url(merged["url"]) if merged.get("url") else None
        try:
            self.client = vault_client(merged, "this store's url" if spec.get("url") else
                                       "the url option or VAULT_ADDR/BAO_ADDR")
        except VaultError as err:
            raise self.error(str(err)) from None

    def describe(self) -> str:
        return f"{self.spec['type']} {self.mount}/{self.spec.get('path')}"

    def _path(self, stage: str) -> str:
        return self.spec["path"] + (PENDING_SUFFIX if stage == "pending" else "")

    def _call(self, what: str, func, **kwargs):
        try:
            return func(mount_point=self.mount, **kwargs)
        except hvac.exceptions.InvalidPath:
            raise self.error(f"{what}: no such path", StoreNotFound) from None
        except hvac.exceptions.Forbidden:
            raise self.error(self._why_forbidden(what)) from None
        except hvac.exceptions.Unauthorized:
            raise self.error(f"the Vault token is not valid ({what})") from None
        except hvac.exceptions.VaultDown:
            raise self.error(f"Vault at {self.url} is sealed or down") from None
        except hvac.exceptions.InvalidRequest as err:
            if "check-and-set" in str(err):
                raise self.error("the secret changed while we were writing it (CAS "
                                 "mismatch); nothing was written") from None
            raise self.error(f"{what}: invalid request") from None
        except hvac.exceptions.VaultError as err:
            raise self.error(f"{what} failed: {type(err).__name__}") from None
        except requests.exceptions.RequestException as err:
            raise self.error(f"cannot reach Vault at {self.url}: {type(err).__name__}") from None

    def _why_forbidden(self, what: str) -> str:
        """Vault answers 403 both for a bad token and for a policy that says no."""
        try:
            self.client.auth.token.lookup_self()
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException):
            return f"the Vault token is not valid (or expired) ({what})"
        return f"permission denied to {what} {self.mount}/{self.spec['path']} by policy"

    def _select(self, data: dict | None):
        if data is None or not self.field:
            return data
        if self.field not in data:
            raise self.error(f"the secret has no field {self.field!r}")
        return data[self.field]

    def exists(self) -> bool:
        if self.version == 1:
            return self.read("current") is not None
        try:
            self._call("read metadata", self.client.secrets.kv.v2.read_secret_metadata,
                       path=self._path("current"))
        except StoreNotFound:
            return False
        return True

    def read(self, stage: str) -> StoredValue | None:
        path = self._path(stage)
        if self.version == 1:
            try:
                got = self._call("read", self.client.secrets.kv.v1.read_secret, path=path)
            except StoreNotFound:
                return None
            return StoredValue(self._select(got.get("data")), None, [stage])
        try:
            got = self._call("read", self.client.secrets.kv.v2.read_secret_version, path=path,
                             raise_on_deleted_version=False)
        except StoreNotFound:
            return None
        meta = (got.get("data") or {}).get("metadata") or {}
        data = (got.get("data") or {}).get("data")
        deleted = bool(meta.get("deletion_time")) or bool(meta.get("destroyed"))
        return StoredValue(None if deleted else self._select(data), str(meta.get("version")),
                           [stage], meta.get("created_time"), deleted)

    def _document(self, value, path: str) -> dict:
        """The whole secret to write: value itself, or value placed in its field."""
        if not self.field:
            return value
        try:
            current = self._call("read", self.client.secrets.kv.v1.read_secret, path=path) \
                if self.version == 1 else self._call(
                    "read", self.client.secrets.kv.v2.read_secret_version, path=path,
                    raise_on_deleted_version=False)
            data = current.get("data") if self.version == 1 else \
                (current.get("data") or {}).get("data")
        except StoreNotFound:
            data = None
        return {**(data or {}), self.field: value}

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        path = self._path(stage)
        document = self._document(value, path)
        if self.version == 1:
            self._call("write", self.client.secrets.kv.v1.create_or_update_secret, path=path,
                       secret=document)
            return None
        cas = int(previous.version) if previous is not None and previous.version else 0
        written = self._call("write", self.client.secrets.kv.v2.create_or_update_secret,
                             path=path, secret=document, cas=cas)
        return str(written["data"]["version"])

    def make_current(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        if current is not None and current.value == pending.value:
            return current.version
        return self.write(pending.value, "current", current)

    def discard_pending(self, pending: StoredValue) -> None:
        path = self._path("pending")
        try:
            if self.version == 1:
                self._call("delete", self.client.secrets.kv.v1.delete_secret, path=path)
            else:
                self._call("delete", self.client.secrets.kv.v2.delete_metadata_and_all_versions,
                           path=path)
        except StoreNotFound:
            return

    def delete(self) -> None:
        try:
            if self.version == 1:
                self._call("delete", self.client.secrets.kv.v1.delete_secret,
                           path=self.spec["path"])
            else:
                self._call("delete", self.client.secrets.kv.v2.delete_metadata_and_all_versions,
                           path=self.spec["path"])
        except StoreNotFound:
            return
