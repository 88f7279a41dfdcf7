# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's variable in an ECS task definition as a store.

The store reads the latest ACTIVE revision of ``family`` and finds ``variable`` in the
``container``'s definition:

- in ``environment`` (a plaintext value: ``RDS_PASSWORD=DB``), the store is the task
  definition itself.  A write registers a new revision that differs from the latest only in
  that value; every other field of the revision is copied as it is, and the old revision
  stays ACTIVE for rollback.  Running tasks keep the old value until the service gets a new
  deployment (the ``aws_ecs_service`` consumer).  The value is shown in clear to anyone
  allowed ecs:DescribeTaskDefinition: diagnose reports it as ``store_plaintext_env``.
- in ``secrets`` (``valueFrom`` a Secrets Manager secret, with or without a JSON key, or an
  SSM parameter), the store is the secret or parameter it references: reads, writes and the
  pending stage are that store's, and the task definition is only its user.

Revisions are version ids (``family:revision``): they count registrations, nothing else.
"""
from __future__ import annotations

import copy
from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.aws import caller_account
from ansible_collections.credops.pgauth.plugins.module_utils.ecs_value_from import (
    ValueFromError,
    value_from_store,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Backend,
    StoredValue,
    StoreNotFound,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_aws import (
    AwsBackend,
    SecretsManagerBackend,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_aws_ssm import (
    SsmParameterBackend,
)

# what DescribeTaskDefinition returns that RegisterTaskDefinition does not take
_READ_ONLY = ("taskDefinitionArn", "revision", "status", "requiresAttributes",
              "compatibilities", "registeredAt", "registeredBy", "deregisteredAt")


def revision_input(task: dict) -> dict:
    """RegisterTaskDefinition's arguments for a copy of a described revision (with its tags)."""
    new = {key: copy.deepcopy(val) for key, val in task.items()
           if key not in _READ_ONLY and not key.startswith("_")}
    if task.get("_tags"):
        new["tags"] = copy.deepcopy(task["_tags"])
    return new


class EcsTaskDefinitionBackend(AwsBackend):
    service, service_title = "ecs", "ECS"
    # DescribeTaskDefinition of a family with no ACTIVE revision is a ClientException
    not_found: ClassVar[dict[str, str]] = {}

    def __init__(self, spec: dict, options: dict):
        super().__init__(spec, options)
        self._options = options
        self._resolved: tuple[dict, Backend | None] | None = None

    def check_spec(self) -> None:
        for key in ("family", "container", "variable"):
            if not self.spec.get(key):
                raise self.error(f"{key} is required")

    def shared_resource(self) -> str | None:
        # two variables of one family (DATABASE_URL and DB_PASSWORD) are two stores: written
        # at once, each would register a copy of the same revision with only its own change
        _task, inner = self._resolve()
        if inner is not None:
            return inner.shared_resource()
        return f"ecs:{self.api.meta.region_name}:{self.spec['family']}"

    def describe(self) -> str:
        return (f"aws_ecs_task_definition {self.spec.get('family')} "
                f"[{self.spec.get('container')}.{self.spec.get('variable')}]")

    def known_error(self, code: str, err: Exception):
        if code == "ClientException" and "describe" in str(err).lower():
            return self.error("the family has no ACTIVE revision (or does not exist)")
        return None

    # -- what the variable is -------------------------------------------------------------
    def _latest(self) -> dict:
        described = self._call("describe_task_definition", taskDefinition=self.spec["family"],
                               include=["TAGS"])
        task = described.get("taskDefinition") or {}
        if task.get("status") not in (None, "ACTIVE"):
            raise self.error("the family has no ACTIVE revision")
        task["_tags"] = described.get("tags") or []
        return task

    def _container(self, task: dict) -> dict:
        names = [c.get("name") for c in task.get("containerDefinitions") or []]
        for container in task.get("containerDefinitions") or []:
            if container.get("name") == self.spec["container"]:
                return container
        raise self.error(f"revision {task.get('revision')} has no container "
                         f"{self.spec['container']!r} (it has {', '.join(map(str, names))})")

    def _resolve(self) -> tuple[dict, Backend | None]:
        """(the latest revision, the backend of the secret the variable references or None
        for a plaintext environment variable)."""
        if self._resolved is None:
            task = self._latest()
            container = self._container(task)
            name = self.spec["variable"]
            if any(env.get("name") == name for env in container.get("environment") or []):
                self._resolved = (task, None)
            else:
                ref = next((s.get("valueFrom") for s in container.get("secrets") or []
                            if s.get("name") == name), None)
                if ref is None:
                    raise self.error(f"container {self.spec['container']!r} has no variable "
                                     f"{name} in environment or secrets (revision "
                                     f"{task.get('revision')})")
                inner = self._referenced(ref)
                if not inner.exists():
                    # a write would create it: the task would still fail, and the user would
                    # not learn that its valueFrom is wrong
                    raise self.error(f"valueFrom names {ref}, which does not exist",
                                     StoreNotFound)
                self._resolved = (task, inner)
        return self._resolved

    def _referenced(self, ref: str) -> Backend:
        """The backend of the store a ``secrets`` entry's valueFrom names."""
        base = {key: self.spec[key] for key in ("profile", "region") if self.spec.get(key)}
        try:
            spec = value_from_store(ref, base, f"{self.label} -> {ref}", self.spec.get("format"),
                                    lambda: caller_account(self._aws_settings()))
        except ValueFromError as err:
            raise self.error(str(err)) from None
        kind = SecretsManagerBackend if spec["type"] == "aws_secretsmanager" \
            else SsmParameterBackend
        return kind(spec, self._options)

    @property
    def supports_pending(self) -> bool:  # type: ignore[override]
        _task, inner = self._resolve()
        return inner.supports_pending if inner is not None else False

    @property
    def default_format(self) -> str:  # type: ignore[override]
        _task, inner = self._resolve()
        return inner.spec.get("format") or inner.default_format if inner else "password"

    def plaintext_exposure(self) -> str | None:
        task, inner = self._resolve()
        if inner is not None:
            return None
        return (f"a plaintext environment variable of task definition "
                f"{self.spec['family']}:{task.get('revision')}: shown in clear to anyone "
                "allowed ecs:DescribeTaskDefinition")

    # -- the Backend interface --------------------------------------------------------------
    def exists(self) -> bool:
        _task, inner = self._resolve()
        return inner.exists() if inner is not None else True

    def read(self, stage: str) -> StoredValue | None:
        _task, inner = self._resolve()
        if inner is not None:
            return inner.read(stage)
        if stage != "current":
            return None
        task = self._latest()  # the revision now: a read is what a write is checked against
        value = next((env.get("value") for env in self._container(task).get("environment")
                      or [] if env.get("name") == self.spec["variable"]), None)
        if value is None:
            raise self.error(f"revision {task.get('revision')} no longer has "
                             f"{self.spec['variable']} in its environment")
        registered = task.get("registeredAt")
        return StoredValue(value, f"{self.spec['family']}:{task.get('revision')}", ["current"],
                           registered.isoformat() if hasattr(registered, "isoformat") else None)

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        _task, inner = self._resolve()
        if inner is not None:
            return inner.write(value, stage, previous)
        if stage != "current":
            raise self.error("a plaintext environment variable has no pending stage")
        latest = self._latest()  # now, not when the rotation began
        read_revision = f"{self.spec['family']}:{latest.get('revision')}"
        if previous is not None and previous.version != read_revision:
            raise self.error(f"revision {latest.get('revision')} was registered after "
                             f"{previous.version} was read (a deploy?); nothing was "
                             "registered: run again")
        revision = self._register(latest, value)
        self._resolved = None  # the next read sees the new revision
        return f"{self.spec['family']}:{revision}"

    def _register(self, task: dict, value: str) -> int:
        new = revision_input(task)
        for env in self._container(new).get("environment"):
            if env.get("name") == self.spec["variable"]:
                env["value"] = value
        registered = self._call("register_task_definition", **new)
        return (registered.get("taskDefinition") or {}).get("revision")

    def move_to_secrets(self, value_from: str, check_mode: bool) -> str | None:
        """Register a revision whose container takes the variable from ``secrets`` (valueFrom
        value_from) instead of a plaintext ``environment`` entry; every other field copied.
        Returns the new revision (None in check mode, or when the variable is already a
        secrets entry)."""
        task, inner = self._resolve()
        if inner is not None:
            return None
        new = revision_input(task)
        container = self._container(new)
        name = self.spec["variable"]
        container["environment"] = [env for env in container.get("environment") or []
                                    if env.get("name") != name]
        container["secrets"] = [*(container.get("secrets") or []),
                                {"name": name, "valueFrom": value_from}]
        if check_mode:
            return None
        registered = self._call("register_task_definition", **new)
        self._resolved = None
        return f"{self.spec['family']}:{(registered.get('taskDefinition') or {}).get('revision')}"

    def execution_role(self) -> str | None:
        task, _inner = self._resolve()
        return task.get("executionRoleArn")

    def make_current(self, pending: StoredValue, current: StoredValue | None) -> str | None:
        _task, inner = self._resolve()
        if inner is None:
            return super().make_current(pending, current)
        return inner.make_current(pending, current)

    def discard_pending(self, pending: StoredValue) -> None:
        _task, inner = self._resolve()
        if inner is None:
            super().discard_pending(pending)
            return
        inner.discard_pending(pending)

    def leftover_pending(self) -> StoredValue | None:
        _task, inner = self._resolve()
        return inner.leftover_pending() if inner is not None else None

    def metadata(self) -> dict | None:
        _task, inner = self._resolve()
        return inner.metadata() if inner is not None else None
