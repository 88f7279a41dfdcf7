# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's AWS scopes: Secrets Manager, Parameter Store, ECS task definitions and Lambda
environments, each listed into store dicts (DESIGN §3) that Store then reads.

A value is looked at only to choose the store's ``format`` (a JSON object, a DSN or a bare
password) or which variable of a container or function to take; the credential itself is
read again through Store, so the generated vars.yml reads exactly what discover read.  A
scope that cannot be listed raises ScopeError (the engine reports it and goes on).
"""
from __future__ import annotations

import json
import re

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    call_errors,
    client,
    describe_aws_error,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import looks_like_dsn
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# an environment variable that holds a password (DB_PASSWORD, PGPASSWORD, RDS_PASSWORD)
_PASSWORD_VAR = re.compile(r"(?i)(^|_|PG)(PASSWORD|PASSWD|PWD|PASS)$")


class ScopeError(PgauthError):
    """A scope could not be listed (no permission, unreachable): names the scope, never a
    value."""


def value_format(value) -> str | None:
    """json, dsn or password for a secret's text; None for an empty value."""
    if not isinstance(value, str) or not value:
        return None
    if value.lstrip().startswith("{"):
        # an object, or a broken one: read as JSON, a broken one is skipped and counted
        # (as a bare password it would be one long unrelated "password")
        return "json"
    try:
        if isinstance(json.loads(value), dict):
            return "json"
    except ValueError:
        pass
    return "dsn" if looks_like_dsn(value) else "password"


def variable_format(name: str, value) -> str | None:
    """password or dsn for an environment variable that holds one, else None."""
    if not isinstance(value, str) or not value:
        return None
    if looks_like_dsn(value):
        return "dsn"
    return "password" if _PASSWORD_VAR.search(name) else None


def _client(options: dict, service: str, label: str):
    # options come bounded from the scope (ScopeRun.bounded): 2 attempts, timeouts no longer
    # than the time left; max_attempts given here too, whatever aws_config says
    try:
        return client(options, service, max_attempts=2)
    except AwsError as err:
        raise ScopeError(f"{label}: {err}") from None


def _call(label: str, service: str, options: dict, what: str, function, **kwargs):
    try:
        return function(**kwargs)
    except call_errors() as err:  # described without the request
        reason = describe_aws_error(err, what, service, options.get("endpoint_url"))
        raise ScopeError(f"{label}: {reason}") from None


def secretsmanager(scope: dict, options: dict, run):
    label = run.label
    sm = _client(options, "secretsmanager", label)
    filters = [{"Key": "name", "Values": [prefix]} for prefix in scope.get("name_prefixes") or []]
    for key, value in (scope.get("tags") or {}).items():
        filters += [{"Key": "tag-key", "Values": [str(key)]},
                    {"Key": "tag-value", "Values": [str(value)]}]
    prefixes = scope.get("name_prefixes") or [""]
    tags = {str(key): str(value) for key, value in (scope.get("tags") or {}).items()}
    token = None
    while True:
        run.check_time()
        kwargs = {"MaxResults": 100, **({"NextToken": token} if token else {}),
                  **({"Filters": filters} if filters else {})}
        page = _call(label, "secretsmanager", options, "list_secrets", sm.list_secrets,
                     **kwargs)
        for secret in page.get("SecretList") or []:
            name = secret.get("Name") or ""
            # the filters are prefix matches on words: checked exactly here
            if not any(name.startswith(prefix) for prefix in prefixes):
                continue
            held = {tag.get("Key"): tag.get("Value") for tag in secret.get("Tags") or []}
            if any(held.get(key) != value for key, value in tags.items()):
                continue
            run.tick()
            try:
                peek = sm.get_secret_value(SecretId=secret["ARN"]).get("SecretString")
            except call_errors():  # unreadable: the Store read below says why, by name
                peek = None
            yield {"type": "aws_secretsmanager", "secret_id": name,
                   "format": value_format(peek) or "json"}
        token = page.get("NextToken")
        if not token:
            return


def ssm(scope: dict, options: dict, run):
    label = run.label
    api = _client(options, "ssm", label)
    for path in scope.get("paths") or ["/"]:
        token = None
        while True:
            run.check_time()
            kwargs = {"Path": path, "Recursive": True, "WithDecryption": True,
                      "MaxResults": 10, **({"NextToken": token} if token else {})}
            page = _call(label, "ssm", options, f"get_parameters_by_path {path}",
                         api.get_parameters_by_path, **kwargs)
            for parameter in page.get("Parameters") or []:
                run.tick()
                fmt = value_format(parameter.get("Value"))
                if fmt:
                    yield {"type": "aws_ssm", "parameter": parameter["Name"], "format": fmt}
            token = page.get("NextToken")
            if not token:
                break


def _families(ecs, label: str, options: dict, prefixes: list[str]):
    for prefix in prefixes or [None]:
        token = None
        while True:
            kwargs = {"status": "ACTIVE", **({"familyPrefix": prefix} if prefix else {}),
                      **({"nextToken": token} if token else {})}
            page = _call(label, "ecs", options, "list_task_definition_families",
                         ecs.list_task_definition_families, **kwargs)
            yield from page.get("families") or []
            token = page.get("nextToken")
            if not token:
                break


def ecs_task_definitions(scope: dict, options: dict, run):
    label = run.label
    ecs = _client(options, "ecs", label)
    for family in _families(ecs, label, options, scope.get("family_prefixes") or []):
        run.check_time()
        task = _call(label, "ecs", options, f"describe_task_definition {family}",
                     ecs.describe_task_definition, taskDefinition=family)["taskDefinition"]
        for container in task.get("containerDefinitions") or []:
            for env in container.get("environment") or []:
                run.tick()
                fmt = variable_format(env.get("name") or "", env.get("value"))
                if fmt:
                    yield {"type": "aws_ecs_task_definition", "family": family,
                           "container": container.get("name"), "variable": env["name"],
                           "format": fmt}


def lambda_functions(scope: dict, options: dict, run):
    label = run.label
    api = _client(options, "lambda", label)
    prefixes = scope.get("function_prefixes") or [""]
    marker = None
    while True:
        run.check_time()
        page = _call(label, "lambda", options, "list_functions", api.list_functions,
                     **({"Marker": marker} if marker else {}))
        for function in page.get("Functions") or []:
            name = function.get("FunctionName") or ""
            if not any(name.startswith(prefix) for prefix in prefixes):
                continue
            variables = ((function.get("Environment") or {}).get("Variables") or {})
            for variable, value in variables.items():
                run.tick()
                fmt = variable_format(variable, value)
                if fmt:
                    yield {"type": "aws_lambda_environment", "function": name,
                           "variable": variable, "format": fmt}
        marker = page.get("NextMarker")
        if not marker:
            return


def ecs_consumers(scope: dict, options: dict, families: set[str], label: str,
                  check_time=lambda: None) -> list[dict]:
    """aws_ecs_service consumers: each service, in the scope's clusters, whose task
    definition belongs to a family where a copy was found.  check_time (the scope's
    deadline) is called before every call."""
    if not families or not scope.get("clusters"):
        return []
    ecs = _client(options, "ecs", label)
    found = []
    for cluster in scope["clusters"]:
        arns, token = [], None
        while True:
            check_time()
            page = _call(label, "ecs", options, f"list_services {cluster}", ecs.list_services,
                         cluster=cluster, **({"nextToken": token} if token else {}))
            arns += page.get("serviceArns") or []
            token = page.get("nextToken")
            if not token:
                break
        for start in range(0, len(arns), 10):
            check_time()
            described = _call(label, "ecs", options, f"describe_services {cluster}",
                              ecs.describe_services, cluster=cluster,
                              services=arns[start:start + 10])
            for service in described.get("services") or []:
                family = (service.get("taskDefinition") or "").rsplit("/", 1)[-1] \
                    .rsplit(":", 1)[0]
                if family in families:
                    found.append({"type": "aws_ecs_service", "cluster": cluster,
                                  "service": service.get("serviceName")})
    return found
