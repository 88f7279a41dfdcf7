# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS Systems Manager Parameter Store as a store: one String or SecureString parameter.

Parameter Store has no stage that readers do not see: GetParameter by name returns the
newest version, so a version written "pending" would be live for every application at once,
before the database has the password.  This store therefore has no pending stage (like a
file): a rotation writes it during promote, after the database change was tested, and a
Secrets Manager or Vault store is the primary.  Each write records the version it replaced
under the label ``pgauth-previous`` (Parameter Store moves a label to the version it is
given), so what the rotation replaced can be read back as ``/name:pgauth-previous``.

Version ids are Parameter Store's own version numbers: they count writes and say nothing
about the value (DESIGN §7).  A parameter is addressed by name or by ARN.
"""
from __future__ import annotations

import re
from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.aws import caller_account
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    StoredValue,
    StoreError,
    StoreNotFound,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_aws import AwsBackend

PREVIOUS_LABEL = "pgauth-previous"
_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:(?P<region>[a-z0-9-]*):(?P<account>\d*):"
                  r"parameter(?P<name>/.+)$")


def parameter_name(ref: str) -> tuple[str, str | None, str | None]:
    """(the parameter's name, the region and the account of its ARN, or None) for a name or
    an ARN.  An ARN holds a hierarchical name whole (parameter/app/db is /app/db) and a flat
    one after one slash (parameter/db is db)."""
    match = _ARN.match(ref)
    if not match:
        return ref, None, None
    name = match.group("name")
    flat = name.count("/") == 1
    return ((name[1:] if flat else name), match.group("region") or None,
            match.group("account") or None)


class SsmParameterBackend(AwsBackend):
    supports_pending = False
    value_is_text = True
    default_format = "password"
    service, service_title = "ssm", "Parameter Store"
    not_found: ClassVar[dict[str, str]] = {
        "ParameterNotFound": "no such parameter",
        "ParameterVersionNotFound": "no such parameter version"}

    def __init__(self, spec: dict, options: dict):
        name, region, account = parameter_name(spec.get("parameter") or "")
        if region:
            # an ARN names its region: the same name elsewhere is another parameter
            spec = {**spec, "region": region}
        self.parameter, self.account = name, account
        super().__init__(spec, options)
        if account and account != caller_account(self._aws_settings()):
            # by name only: the parameter with this name in the caller's account would be
            # read and written instead of the one the ARN names
            raise self.error(f"the parameter is in account {account}, not the one these AWS "
                             "credentials use: a parameter of another account is not "
                             "rotated from here")

    def check_spec(self) -> None:
        if not self.spec.get("parameter"):
            raise self.error("parameter is required (a name or an ARN)")

    def describe(self) -> str:
        return f"aws_ssm {self.spec.get('parameter')}"

    def known_error(self, code: str, err: Exception):
        if code == "ParameterAlreadyExists":
            return self.error("the parameter was created by someone else meanwhile")
        if code in ("InvalidKeyId", "KMSAccessDenied", "KMSDisabled"):
            return self.error(f"KMS refused the parameter's key ({code})")
        return None

    def _get(self) -> dict | None:
        try:
            return self._call("get_parameter", Name=self.parameter,
                              WithDecryption=True)["Parameter"]
        except StoreNotFound:
            return None

    def exists(self) -> bool:
        return self._get() is not None

    def metadata(self) -> dict | None:
        found = self._get()
        if found is None:
            raise self.error("no such parameter", StoreNotFound)
        # everything but the value
        return {key: value for key, value in found.items() if key != "Value"}

    def read(self, stage: str) -> StoredValue | None:
        if stage != "current":
            return None
        found = self._get()
        if found is None:
            return None
        if found.get("Type") == "StringList":
            raise self.error("the parameter is a StringList: a credential is a String or "
                             "SecureString")
        changed = found.get("LastModifiedDate")
        return StoredValue(found.get("Value"), str(found.get("Version")), ["current"],
                           changed.isoformat() if hasattr(changed, "isoformat") else None)

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        if stage != "current":
            raise self.error("Parameter Store has no pending stage (a new version is what "
                             "every reader gets at once)")
        existing = self._get()
        if existing is not None and existing.get("Type") == "StringList":
            raise self.error("the parameter is a StringList: a credential is a String or "
                             "SecureString")
        if existing is not None and existing.get("Value") == value:
            return str(existing.get("Version"))  # a write called again after it landed
        kind = existing.get("Type") if existing else "SecureString"
        extra = {}
        if kind == "SecureString" and self.spec.get("kms_key_id"):
            extra["KeyId"] = self.spec["kms_key_id"]
        if existing is None and self.spec.get("description"):
            extra["Description"] = self.spec["description"]
        put = self._call("put_parameter", Name=self.parameter, Value=value, Type=kind,
                         Overwrite=existing is not None, **extra)
        if existing is not None:
            if int(put.get("Version") or 0) != int(existing["Version"]) + 1:
                # PutParameter has no condition: someone wrote between the read and this
                self.warnings.append(f"store {self.label!r}: another write landed between "
                                     f"version {existing['Version']} and this one "
                                     f"({put.get('Version')}): check the parameter's history")
            try:
                # what the write replaced stays readable by label, for whoever must undo it
                self._call("label_parameter_version", Name=self.parameter,
                           ParameterVersion=int(existing["Version"]), Labels=[PREVIOUS_LABEL])
            except StoreError as err:
                self.warnings.append(f"{err} (the new value was written; only the label of "
                                     "the previous version is missing)")
        return str(put.get("Version"))

    def delete(self) -> None:
        try:
            self._call("delete_parameter", Name=self.parameter)
        except StoreNotFound:
            return
