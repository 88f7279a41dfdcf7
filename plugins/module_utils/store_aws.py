# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS Secrets Manager as a store: stages map to AWSCURRENT and AWSPENDING.

Promotion is what Secrets Manager rotation does in its finishSecret step: AWSCURRENT
moves to the pending version (the old one becomes AWSPREVIOUS automatically), then
the AWSPENDING label is removed so "a pending version exists" means "a rotation is
in progress".  Reads always name a stage explicitly.

Version ids are random (DESIGN §7): the ClientRequestToken of a write becomes the
VersionId, which DescribeSecret, ListSecretVersionIds, CloudTrail and our own results
and reports show to anyone, so it must not be computable from the value.  A write is
still made once: botocore resends one call's token on its own retries, and a write
that is called again (the answer was lost, the run died) first reads the stage and
finds the value there.
"""
from __future__ import annotations

import uuid
from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    call_errors,
    client,
    describe_aws_error,
    error_code,
    shown_url,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Backend,
    StoredValue,
    StoreError,
    StoreNotFound,
)

STAGE_LABELS = {"current": "AWSCURRENT", "pending": "AWSPENDING"}


class AwsBackend(Backend):
    """What every AWS store shares: one client per store, built with the store's own region,
    endpoint and profile over the module's, and one call wrapper whose errors name the store
    and never hold a value."""

    service = ""           # the boto3 service name
    service_title = ""     # for error messages
    # error codes meaning "what the store addresses is not there"
    not_found: ClassVar[dict[str, str]] = {}

    def __init__(self, spec: dict, options: dict):
        super().__init__(spec, options)
        self.check_spec()
        merged = dict(options)
        for key in ("region", "endpoint_url", "profile"):
            if spec.get(key):
                merged[key] = spec[key]
        # where a refused endpoint came from, for the error: this store's own settings, or
        # (None) the module's, which client() tells apart from the AWS environment and config
        source = None
        if spec.get("endpoint_url"):
            source = "this store's endpoint_url"
        elif spec.get("profile") and not merged.get("endpoint_url"):
            source = "the AWS config of this store's profile"
        self._settings = merged
        try:
            self.api = client(merged, self.service, endpoint_source=source)
        except AwsError as err:
            raise self.error(str(err)) from None
        self.endpoint = shown_url(self.api.meta.endpoint_url)

    def _aws_settings(self) -> dict:
        """The AWS settings this store's client was made with (the module's, overridden by
        the store's region, endpoint and profile)."""
        return dict(self._settings)

    def check_spec(self) -> None:
        """Raise an error naming the store when a key it needs is missing."""

    def known_error(self, code: str, err: Exception) -> StoreError | None:
        """A clearer error than the generic one for this service's error codes, or None."""
        return None

    def _call(self, operation: str, **kwargs):
        try:
            return getattr(self.api, operation)(**kwargs)
        except call_errors() as err:
            code = error_code(err)
            if code in self.not_found:
                raise self.error(self.not_found[code], StoreNotFound) from None
            known = self.known_error(code, err)
            if known is not None:
                raise known from None
            raise self.error(describe_aws_error(err, operation, self.service_title,
                                                self.api.meta.endpoint_url)) from None


class SecretsManagerBackend(AwsBackend):
    supports_pending = True
    value_is_text = True
    default_format = "json"
    service, service_title = "secretsmanager", "Secrets Manager"
    not_found: ClassVar[dict[str, str]] = {"ResourceNotFoundException": "no such secret"}

    def check_spec(self) -> None:
        if not self.spec.get("secret_id"):
            raise self.error("secret_id is required")

    @property
    def sm(self):
        return self.api

    def describe(self) -> str:
        return f"aws_secretsmanager {self.spec.get('secret_id')}"

    def known_error(self, code: str, err: Exception) -> StoreError | None:
        if code == "DecryptionFailure":
            return self.error("Secrets Manager cannot decrypt the secret with its KMS key")
        if code == "InvalidRequestException" and "deletion" in str(err).lower():
            return self.error("the secret is scheduled for deletion")
        return None

    def _stages(self) -> dict | None:
        try:
            described = self._call("describe_secret", SecretId=self.spec["secret_id"])
        except StoreNotFound:
            return None
        return described

    def exists(self) -> bool:
        return self._stages() is not None

    def metadata(self) -> dict | None:
        return self._call("describe_secret", SecretId=self.spec["secret_id"])

    def leftover_pending(self) -> StoredValue | None:
        described = self._stages() or {}
        for version, labels in described.get("VersionIdsToStages", {}).items():
            if STAGE_LABELS["pending"] in labels:
                return StoredValue(None, version, list(labels))
        return None

    def read(self, stage: str) -> StoredValue | None:
        described = self._stages()
        if described is None:
            return None
        return self._read_described(described, stage)

    def _read_described(self, described: dict, stage: str) -> StoredValue | None:
        by_version = described.get("VersionIdsToStages", {})
        label = STAGE_LABELS[stage]
        version = next((vid for vid, labels in by_version.items() if label in labels), None)
        if version is None:
            return None
        if stage == "pending" and "AWSCURRENT" in by_version[version]:
            return None  # a label left on the current version: no rotation in progress
        try:
            got = self._call("get_secret_value", SecretId=self.spec["secret_id"],
                             VersionId=version)
        except StoreNotFound:
            return None
        if "SecretString" not in got:
            raise self.error("the secret holds binary data, not a string")
        # when this version was made: LastChangedDate moves with any change to the secret
        # (a pending write, a label moved by a rolled-back run, a tag)
        changed = got.get("CreatedDate") or described.get("LastChangedDate")
        return StoredValue(got["SecretString"], version, list(by_version[version]),
                           changed.isoformat() if changed else None)

    @staticmethod
    def _token() -> str:
        # Random, one per write call: botocore sends the same token again on its own retries
        # of the call (so a throttled or timed-out PutSecretValue makes one version), and the
        # token - the new VersionId, shown to anyone who may DescribeSecret - says nothing
        # about the value.  A token derived from the value (it was uuid5 of its sha256) let
        # them test password guesses offline.
        return str(uuid.uuid4())

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        described = self._stages()
        if described is not None:
            # Called again after a write whose answer never came (botocore gave up, the run
            # died after AWS took it): the stage already holds exactly this value, so that
            # version is the write's; a new token would make a second, equal version.
            landed = self._read_described(described, stage)
            if landed is not None and landed.value == value:
                return landed.version
        if described is not None and described.get("OwningService"):
            # AWS refuses writes to a secret another service owns; say why before it does
            raise self.error(f"the secret is owned by {described['OwningService']} (a "
                             "managed secret): rotate it with rotate_via rds_managed")
        token = self._token()
        if described is None:
            if stage != "current":
                raise self.error("cannot stage a pending value: the secret does not exist")
            if self.spec["secret_id"].startswith("arn:"):
                # an ARN names a secret that exists; AWS would refuse the ARN as a new name
                raise self.error("no such secret (a secret is created by name, not by ARN)",
                                 StoreNotFound)
            extra = {key: val for key, val in (
                ("Description", self.spec.get("description")),
                ("KmsKeyId", self.spec.get("kms_key_id")),
                ("Tags", [{"Key": k, "Value": str(v)} for k, v in
                          (self.spec.get("tags") or {}).items()] or None)) if val}
            created = self._call("create_secret", Name=self.spec["secret_id"], SecretString=value,
                                 ClientRequestToken=token, **extra)
            return created.get("VersionId")
        put = self._call("put_secret_value", SecretId=self.spec["secret_id"], SecretString=value,
                         ClientRequestToken=token, VersionStages=[STAGE_LABELS[stage]])
        return put.get("VersionId")

    def make_current(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        move = {"MoveToVersionId": pending.version}
        if current is not None:
            move["RemoveFromVersionId"] = current.version
        self._call("update_secret_version_stage", SecretId=self.spec["secret_id"],
                   VersionStage="AWSCURRENT", **move)
        return pending.version

    def discard_pending(self, pending: StoredValue) -> None:
        self._call("update_secret_version_stage", SecretId=self.spec["secret_id"],
                   VersionStage="AWSPENDING", RemoveFromVersionId=pending.version)

    def delete(self) -> None:
        try:
            self._call("delete_secret", SecretId=self.spec["secret_id"],
                       RecoveryWindowInDays=7)
        except StoreNotFound:
            return
