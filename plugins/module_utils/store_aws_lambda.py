# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Lambda function's environment variable as a store.

Lambda keeps environment variables in the function's configuration: a write is one
UpdateFunctionConfiguration that sends every variable back with only this one changed, made
conditional on the RevisionId read just before (a concurrent change of the configuration
fails the write instead of being overwritten), then waits until the update is applied.

What a write reaches: the unpublished version ($LATEST), which new execution environments
use at once.  A published version is immutable; with ``alias`` set, a write also publishes a
new version and points the alias at it, so callers of the alias get the new value (the old
version stays, for rollback by moving the alias back).  Without ``alias``, callers of a
published version or of an alias keep the old value: name the alias.

Environment variables are shown in clear to anyone allowed lambda:GetFunctionConfiguration,
so a password here is reported as ``store_plaintext_env``.  Version ids are Lambda's
RevisionId (random) and, with an alias, the published version number.
"""
from __future__ import annotations

from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.aws import call_errors
from ansible_collections.credops.pgauth.plugins.module_utils.store import StoredValue
from ansible_collections.credops.pgauth.plugins.module_utils.store_aws import AwsBackend

UPDATE_WAIT = {"Delay": 2, "MaxAttempts": 60}   # at most two minutes


class LambdaEnvironmentBackend(AwsBackend):
    supports_pending = False
    value_is_text = True
    default_format = "password"
    service, service_title = "lambda", "Lambda"
    not_found: ClassVar[dict[str, str]] = {"ResourceNotFoundException": "no such function"}

    def check_spec(self) -> None:
        for key in ("function", "variable"):
            if not self.spec.get(key):
                raise self.error(f"{key} is required")

    def shared_resource(self) -> str | None:
        # two variables of one function: one configuration, written whole by each
        return f"lambda:{self.api.meta.region_name}:{self.spec['function']}"

    def describe(self) -> str:
        return f"aws_lambda_environment {self.spec.get('function')} [{self.spec.get('variable')}]"

    def known_error(self, code: str, err: Exception):
        if code == "PreconditionFailedException":
            return self.error("the function's configuration changed while it was being "
                              "written; nothing was written: run again")
        if code == "ResourceConflictException":
            return self.error("an update of the function is in progress; run again when it "
                              "is done")
        return None

    def _configuration(self, qualifier: str | None = None) -> dict:
        where = {"Qualifier": qualifier} if qualifier else {}
        return self._call("get_function_configuration", FunctionName=self.spec["function"],
                          **where)

    def _variables(self, config: dict) -> dict:
        return dict(((config.get("Environment") or {}).get("Variables")) or {})

    def plaintext_exposure(self) -> str | None:
        return ("a Lambda environment variable: shown in clear to anyone allowed "
                "lambda:GetFunctionConfiguration")

    def read(self, stage: str) -> StoredValue | None:
        if stage != "current":
            return None
        # with an alias, what its callers get: the version it points at, not $LATEST
        config = self._configuration(self.spec.get("alias"))
        variables = self._variables(config)
        if self.spec["variable"] not in variables:
            raise self.error(f"the function has no environment variable "
                             f"{self.spec['variable']} (it has "
                             f"{', '.join(sorted(variables)) or 'none'})")
        return StoredValue(variables[self.spec["variable"]], self._version(config),
                           ["current"], config.get("LastModified"))

    @staticmethod
    def _version(config: dict) -> str | None:
        # RevisionId changes with every update; where an API leaves it out (moto), the
        # update's time does too, and neither says anything about the value
        return config.get("RevisionId") or config.get("LastModified")

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        if stage != "current":
            raise self.error("a Lambda environment has no pending stage")
        config = self._configuration()
        variables = self._variables(config)
        name = self.spec["variable"]
        if name not in variables:
            raise self.error(f"the function has no environment variable {name}: add it "
                             "first (a rotation changes variables, it does not create them)")
        revision = config.get("RevisionId")
        version = self._version(config)
        if variables[name] != value:
            variables[name] = value
            # conditional on the revision read, where the API reports one
            condition = {"RevisionId": revision} if revision else {}
            updated = self._call("update_function_configuration",
                                 FunctionName=self.spec["function"],
                                 Environment={"Variables": variables}, **condition)
            revision, version = updated.get("RevisionId"), self._version(updated)
            self._wait_updated()
        if self.spec.get("alias"):
            return self._publish_to_alias(revision)
        return version

    def _wait_updated(self) -> None:
        try:
            self.api.get_waiter("function_updated_v2").wait(
                FunctionName=self.spec["function"], WaiterConfig=UPDATE_WAIT)
        except call_errors() as err:
            raise self.error(f"the update did not finish: {type(err).__name__}") from None

    def _publish_to_alias(self, revision: str | None) -> str:
        alias = self._call("get_alias", FunctionName=self.spec["function"],
                           Name=self.spec["alias"])
        served = self._configuration(self.spec["alias"])
        latest = self._configuration()
        if self._variables(served).get(self.spec["variable"]) == \
                self._variables(latest).get(self.spec["variable"]):
            return f"{revision}:{alias.get('FunctionVersion')}"  # the alias serves it already
        others = {key: value for key, value in self._variables(latest).items()
                  if key != self.spec["variable"]}
        served_others = {key: value for key, value in self._variables(served).items()
                         if key != self.spec["variable"]}
        if latest.get("CodeSha256") != served.get("CodeSha256") or others != served_others:
            # publishing $LATEST would also release its unreleased code or configuration
            raise self.error(f"$LATEST differs from version {alias.get('FunctionVersion')} "
                             f"that alias {self.spec['alias']} serves in more than "
                             f"{self.spec['variable']} (code or other variables): release "
                             "those first; $LATEST has the new value, the alias does not")
        published = self._call("publish_version", FunctionName=self.spec["function"],
                               **({"RevisionId": revision} if revision else {}))
        version = published.get("Version")
        if alias.get("FunctionVersion") != version:
            self._call("update_alias", FunctionName=self.spec["function"],
                       Name=self.spec["alias"], FunctionVersion=version)
        return f"{revision}:{version}"
