# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One interface over every secret store, and the store dict that addresses one.

    - name: aws-app                  # label in reports and errors
      type: aws_secretsmanager       # aws_secretsmanager | vault_kv2 | vault_kv1 | file |
                                     # command (store_command.py: read/write argv lists)
      secret_id: prod/app_user       # aws
      mount_point: secret            # vault (default: secret for kv2, kv1 for kv1)
      path: app/db                   # vault: secret path; file: file path
      format: json                   # aws/vault: json | password | dsn
                                     # file: the file's syntax (store_file.py lists them)
      key: DATABASE_URL              # vault: field holding a password/dsn; file: the key in
                                     #   the file's syntax (docs/stores.md), or keys: a
                                     #   credential over several ({password: ..., dsn: ...})
      value_format: dsn              # file only: password | dsn | json (default: guessed)

Backends read and write a *value* (a string, or a mapping for Vault data and YAML/JSON
nodes); ``credential`` turns values into credentials.  Stages are ``current`` and
``pending``; a pending value exists only between the first and last steps of a rotation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
    encode,
    looks_like_dsn,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential_keys import (
    KEYS_FORMAT,
    decode_value,
    encode_value,
    same_stored,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential_verifier import (
    VERIFIER_FORMAT,
)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    STORE_KEYS,
    STORE_TYPES,
    argument_spec,
)

# how a credential is written inside a secret (a file's own syntax is its format)
VALUE_FORMATS = ("json", "password", "dsn")
# keys that only a command store reads: elsewhere they would be ignored, silently
COMMAND_KEYS = ("read", "write", "value_encoding", "write_only", "timeout", "env", "inherit_env")
# StoreError.code of a read of a write-only store: diagnose and verify list it as not checked
WRITE_ONLY = "write_only"
# StoreError.code of a login asked of a store that holds a verifier: not applicable
HOLDS_VERIFIER = "holds_verifier"
# The store dict as an argument spec (suboptions), shared by every module taking a store.
STORE_OPTION_SPEC = argument_spec(STORE_KEYS)


class StoreError(PgauthError):
    """A store operation failed.  The message starts with the store's name and never
    contains a secret; code, when set, is the CredentialError code of a value that cannot be
    read (diagnosis decides on it, never on the text)."""


class StoreNotFound(StoreError):
    """What the store was asked for does not exist (no such secret, path or version): a
    caller may treat it as an empty stage, unlike a store that cannot be asked at all."""


class StoreValueError(StoreError):
    """The store answered, but its value cannot be read as a credential (a broken URL, bad
    JSON): a rotation may replace it.  Other StoreErrors (access, network) it may not."""


@dataclass
class StoredValue:
    value: object                 # str or dict; None when the latest version is deleted
    version: str | None = None
    stages: list[str] = field(default_factory=list)
    changed_at: str | None = None
    deleted: bool = False         # Vault: the latest version is soft-deleted


class Backend:
    """What every store type implements.  Methods raise StoreError with the store's name."""

    supports_pending = False
    value_is_text = True          # the raw value is a string (else a mapping)
    default_format = "json"
    write_only = False            # the store cannot be read back (read() raises)
    writable = True               # False: a read-only store (a command store without write)
    # the value format every value of the store has (a verifier entry), or None: the store's
    # format / value_format options decide
    fixed_value_format: str | None = None

    def __init__(self, spec: dict, options: dict):
        self.spec = spec
        self.options = options
        self.label = spec.get("name") or self.describe()
        # what a write did that the user should know (a file's comments lost): every module
        # that writes shows these as warnings, through Store.warnings
        self.warnings: list[str] = []

    def describe(self) -> str:
        raise NotImplementedError

    def error(self, message: str, kind: type[StoreError] = StoreError) -> StoreError:
        return kind(f"store {self.label!r} ({self.describe()}): {message}")

    def read(self, stage: str) -> StoredValue | None:
        raise NotImplementedError

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        """Store value at stage; returns the new version id."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the secret itself is there, with or without a value (a Secrets Manager
        secret created empty, Vault metadata with no version)."""
        return True

    def shared_resource(self) -> str | None:
        """What two stores may share so that their writes must not overlap (one file)."""
        return None

    def leftover_pending(self) -> StoredValue | None:
        """A pending value, even one that read() hides (a Secrets Manager AWSPENDING label
        left on the current version): for dropping it when no rotation is in progress."""
        return self.read("pending") if self.supports_pending else None

    def make_current(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        """The switch clients see: the pending value becomes current (the pending stage is
        left for discard_pending).  Returns the current version id."""
        raise self.error("this store type has no pending stage")

    def promote(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        """Make the pending value current and drop the pending stage."""
        version = self.make_current(pending, current)
        self.discard_pending(pending)
        return version

    def discard_pending(self, pending: StoredValue) -> None:
        raise self.error("this store type has no pending stage")

    def delete(self) -> None:
        raise self.error("deleting is not supported for this store type")

    def plaintext_exposure(self) -> str | None:
        """Where the value is shown in clear to anyone who may describe the resource (an ECS
        task definition's environment, a Lambda's), or None: store_plaintext_env."""
        return None

    def metadata(self) -> dict | None:
        """What the store's service says about the secret besides its value (rotation
        rules, owner, tags), or None where it says nothing; StoreNotFound when absent."""
        return None


def make_backend(spec: dict, options: dict) -> Backend:
    kind = spec.get("type")
    # imported when used: a module that reads a file store needs neither boto3 nor hvac
    if kind == "aws_secretsmanager":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_aws import (
            SecretsManagerBackend,
        )
        return SecretsManagerBackend(spec, options)
    if kind == "aws_ssm":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_aws_ssm import (
            SsmParameterBackend,
        )
        return SsmParameterBackend(spec, options)
    if kind == "aws_ecs_task_definition":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_aws_ecs import (
            EcsTaskDefinitionBackend,
        )
        return EcsTaskDefinitionBackend(spec, options)
    if kind == "aws_lambda_environment":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_aws_lambda import (
            LambdaEnvironmentBackend,
        )
        return LambdaEnvironmentBackend(spec, options)
    if kind in ("vault_kv2", "vault_kv1"):
        from ansible_collections.credops.pgauth.plugins.module_utils.store_vault import (
            VaultKvBackend,
        )
        return VaultKvBackend(spec, options)
    if kind == "file":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_file import (
            FileBackend,
        )
        return FileBackend(spec, options)
    if kind == "command":
        from ansible_collections.credops.pgauth.plugins.module_utils.store_command import (
            CommandBackend,
        )
        return CommandBackend(spec, options)
    raise StoreError(f"store {spec.get('name')!r}: unknown type {kind!r} "
                     f"(use {', '.join(STORE_TYPES)})")


@dataclass
class WritePlan:
    changed: bool
    value: object = None
    previous: StoredValue | None = None
    credential: Credential | None = None   # what would be stored
    before: Credential | None = None       # what the stage holds now


class Store:
    """A store as credentials: read, plan a write, write, promote, discard.  The only public
    face of a store: the backend behind it is private, so a new store type needs no change
    anywhere but its backend file."""

    def __init__(self, spec: dict, options: dict):
        self.spec = spec
        self._backend = make_backend(spec, options)
        self.name = self._backend.label
        kind = spec.get("type")
        if kind != "file" and spec.get("value_format"):
            # ignoring it would read the value in another format than the user meant
            raise self._backend.error(f"value_format is for file stores; a {kind} store's "
                                      f"value format is its format option "
                                      f"({', '.join(VALUE_FORMATS)})")
        stray = [key for key in COMMAND_KEYS if spec.get(key)] if kind != "command" else []
        if stray:
            raise self._backend.error(f"{', '.join(stray)} {'is' if len(stray) == 1 else 'are'}"
                                      " for command stores")
        if kind != "file" and spec.get("format") not in (None, *VALUE_FORMATS):
            raise self._backend.error(f"format must be one of {', '.join(VALUE_FORMATS)} for "
                                      f"a {kind} store")

    @property
    def supports_pending(self) -> bool:
        return self._backend.supports_pending

    @property
    def write_only(self) -> bool:
        """Never read back (a GitHub Actions secret): reads raise, a write always writes."""
        return self._backend.write_only

    @property
    def writable(self) -> bool:
        return self._backend.writable

    def error(self, message: str, kind: type[StoreError] = StoreError) -> StoreError:
        """An error that names this store (and never holds its secret)."""
        return self._backend.error(message, kind)

    def exists(self) -> bool:
        return self._backend.exists()

    def shared_resource(self) -> str | None:
        return self._backend.shared_resource()

    def metadata(self) -> dict | None:
        return self._backend.metadata()

    def plaintext_exposure(self) -> str | None:
        return self._backend.plaintext_exposure()

    def delete(self) -> None:
        self._backend.delete()

    def read_stored(self, stage: str = "current") -> StoredValue | None:
        """The stage's raw value and version, without reading it as a credential."""
        return self._backend.read(stage)

    def leftover_pending(self) -> StoredValue | None:
        return self._backend.leftover_pending()

    def make_current(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        """The switch of promote alone: pending becomes current, the pending stage stays."""
        return self._backend.make_current(pending, current)

    def discard_stored(self, pending: StoredValue) -> None:
        """Drop this pending value (read before, so a newer one is not dropped)."""
        self._backend.discard_pending(pending)

    @property
    def warnings(self) -> list[str]:
        """What the writes so far did that the user should know, one sentence each."""
        return list(self._backend.warnings)

    @property
    def holds_verifier(self) -> bool:
        """The store holds a verifier of the password (PgBouncer's auth_file), not the
        password: it cannot be logged in with, and is compared by checking passwords
        against it (verifier_stores.py)."""
        return self._backend.fixed_value_format == VERIFIER_FORMAT

    @property
    def value_format(self) -> str:
        if self._backend.fixed_value_format:
            return self._backend.fixed_value_format
        if self.spec.get("type") == "file":
            # a credential over several keys is one value of its own kind
            return KEYS_FORMAT if self.spec.get("keys") else self.spec.get("value_format") or ""
        return self.spec.get("format") or self._backend.default_format

    def _format_for(self, value) -> str:
        fmt = self.value_format
        if fmt:
            return fmt
        if isinstance(value, dict):
            return "json"
        return "dsn" if looks_like_dsn(value) else "password"

    def read(self, stage: str = "current") -> tuple[Credential | None, StoredValue | None]:
        stored = self._backend.read(stage)
        if stored is None or stored.value is None:
            return None, stored
        try:
            return decode_value(stored.value, self._format_for(stored.value)), stored
        except CredentialError as err:
            raise StoreValueError(str(self._backend.error(f"the {stage} value: {err}")),
                                  err.code) from None

    def _read_or_replace(self, stage: str, replace_unreadable: bool):
        try:
            return self.read(stage)
        except StoreValueError:
            if not replace_unreadable:
                raise
            # the value cannot be read as a credential (a broken DATABASE_URL): the write
            # replaces it whole, so nothing of it is kept
            return None, self._backend.read(stage)

    def plan_write(self, update: dict, stage: str = "current",
                   replace_unreadable: bool = False) -> WritePlan:
        """What writing update (credential fields) at stage would store, and whether that
        changes anything.  Pending values start from the current credential.  With
        replace_unreadable, a value that cannot be decoded is replaced by update alone."""
        if stage == "pending" and not self._backend.supports_pending:
            raise self._backend.error("this store type has no pending stage")
        if self._backend.write_only:
            return self._plan_blind(update)
        base_cred, previous = self._read_or_replace("current", replace_unreadable)
        base, before = previous, base_cred
        if stage == "pending":
            before, previous = self._read_or_replace("pending", replace_unreadable)
            if before is not None:
                base_cred, base = before, previous
        base_value = base.value if base else None
        fmt = self._format_for(base_value)
        try:
            cred = (base_cred or Credential()).merged(update)
            value = encode_value(cred, fmt, base_value, as_text=self._backend.value_is_text)
        except CredentialError as err:
            raise self._backend.error(str(err)) from None
        current_value = previous.value if previous else None
        changed = current_value is None or not same_stored(current_value, value, fmt)
        return WritePlan(changed, value, previous, cred, before)

    def _plan_blind(self, update: dict) -> WritePlan:
        """A write-only store: what it holds cannot be compared, so a write always writes
        (update alone, nothing merged from a value that cannot be read)."""
        try:
            cred = Credential().merged(update)
            value = encode(cred, self.value_format, None, as_text=self._backend.value_is_text)
        except CredentialError as err:
            raise self._backend.error(str(err)) from None
        return WritePlan(True, value, None, cred, None)

    def write(self, plan: WritePlan, stage: str = "current") -> str | None:
        return self._backend.write(plan.value, stage, plan.previous)

    def pending(self) -> StoredValue | None:
        if not self._backend.supports_pending:
            return None
        stored = self._backend.read("pending")
        return stored if stored is not None and stored.value is not None else None

    def promote(self) -> tuple[bool, str | None]:
        pending = self.pending()
        if pending is None:
            return False, None
        return True, self._backend.promote(pending, self._backend.read("current"))

    def discard_pending(self) -> bool:
        pending = self.pending()
        if pending is None:
            return False
        self._backend.discard_pending(pending)
        return True
