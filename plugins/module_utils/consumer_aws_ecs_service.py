# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The aws_ecs_service consumer: an ECS service whose tasks read the credential only when
they start (an environment variable, or a secrets entry ECS resolves at start).

Refresh: a new deployment (UpdateService with forceNewDeployment) on the latest ACTIVE
revision of the service's task-definition family, so a revision the rotation registered (a
plaintext variable rewritten, or moved into a secret) is the one deployed.  Confirm: the
service is stable the way AWS's own services_stable waiter defines it - one deployment left,
as many tasks running as desired - retried until the consumer's timeout (bounded).
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    call_errors,
    client,
    describe_aws_error,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    Consumer,
    ConsumerContext,
)


class AwsEcsServiceConsumer(Consumer):
    TYPE = "aws_ecs_service"
    KEYS = frozenset({"cluster", "service", "region", "endpoint_url", "profile"})
    REQUIRED = ("cluster", "service")
    MANUAL = ("look at the service's events (aws ecs describe-services): its new tasks do not "
              "start or do not become healthy; they read the new credential at start")

    def _ecs(self, ctx: ConsumerContext):
        settings = {**ctx.params, **{key: self.spec[key] for key in
                                     ("region", "endpoint_url", "profile") if self.spec.get(key)}}
        try:
            return client(settings, "ecs")
        except AwsError as err:
            raise self.error(str(err)) from None

    def _call(self, ecs, operation: str, **kwargs):
        try:
            return getattr(ecs, operation)(**kwargs)
        except call_errors() as err:
            raise self.error(describe_aws_error(err, operation, "ECS",
                                                ecs.meta.endpoint_url)) from None

    def _service(self, ecs) -> dict:
        found = self._call(ecs, "describe_services", cluster=self.spec["cluster"],
                           services=[self.spec["service"]])
        services = [s for s in found.get("services") or [] if s.get("status") != "INACTIVE"]
        if not services:
            raise self.error(f"no active service {self.spec['service']!r} in cluster "
                             f"{self.spec['cluster']!r}")
        return services[0]

    def refresh(self, ctx: ConsumerContext) -> str:
        ecs = self._ecs(ctx)
        service = self._service(ecs)
        family = service["taskDefinition"].rsplit("/", 1)[-1].rsplit(":", 1)[0]
        latest = self._call(ecs, "describe_task_definition", taskDefinition=family)[
            "taskDefinition"]["taskDefinitionArn"]
        updated = self._call(ecs, "update_service", cluster=self.spec["cluster"],
                             service=self.spec["service"], taskDefinition=latest,
                             forceNewDeployment=True)["service"]
        primary = next((d for d in updated.get("deployments") or []
                        if d.get("status") == "PRIMARY"), {})
        return (f"new deployment {primary.get('id') or '?'} of "
                f"{latest.rsplit('/', 1)[-1]}")

    def confirm_own(self, ctx: ConsumerContext) -> str | None:
        service = self._service(self._ecs(ctx))
        deployments = service.get("deployments") or []
        running, desired = service.get("runningCount"), service.get("desiredCount")
        if len(deployments) != 1 or running != desired:
            raise self.error(f"not stable yet: {len(deployments)} deployments, {running} of "
                             f"{desired} tasks running")
        return (f"stable: {running} of {desired} tasks running "
                f"{service['taskDefinition'].rsplit('/', 1)[-1]}")

    def left_behind(self, ctx: ConsumerContext) -> bool:
        # ECS cannot say which credential a running task read: a service is refreshed after
        # every promote, and only an unstable one counts as left behind
        return super().left_behind(ctx)
