# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rds_targets inventory's AWS calls: per region, describe_db_instances and
describe_db_clusters, list_secrets, and get_secret_value for the secrets worth reading.
Every value read is reduced at once to its address (inventory_rds.rds_secret_fields): no
password is kept, returned, cached or logged.  Errors name the region and the call."""
from __future__ import annotations

from collections.abc import Callable

from ansible_collections.credops.pgauth.plugins.module_utils import inventory_rds as mapping
from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    call_errors,
    client,
    describe_aws_error,
    error_code,
)


def _pages(api, call: str, key: str, region: str, **kwargs) -> list[dict]:
    """Every item of a paginated call; AwsError naming the region and the call."""
    items: list[dict] = []
    try:
        for page in api.get_paginator(call).paginate(**kwargs):
            items.extend(page.get(key) or [])
    except call_errors() as err:
        raise AwsError(f"region {region}: "
                       + describe_aws_error(err, call, api.meta.service_model.service_name,
                                            api.meta.endpoint_url)) from None
    return items


def _secret_fields(sm, region: str, entry: dict, warn: Callable[[str], None]) -> dict | None:
    """The address held by one secret, or None (with a warning naming the secret) when it is
    not RDS-style JSON, has been deleted meanwhile, or may not be read."""
    name = entry.get("Name") or entry.get("ARN")
    try:
        value = sm.get_secret_value(SecretId=entry["ARN"])
    except call_errors() as err:
        code = error_code(err)
        if code == "ResourceNotFoundException":
            return None  # deleted between list and read
        if not code:  # no answer (endpoint, network, credentials): the source fails
            raise AwsError(f"region {region}: " + describe_aws_error(
                err, "get_secret_value", "Secrets Manager", sm.meta.endpoint_url)) from None
        # AWS answered for this one secret (a KMS key or a policy may deny one): skip it
        warn(f"rds_targets: skipped in {region}: secret {name!r}: "
             + describe_aws_error(err, "get_secret_value", "Secrets Manager",
                                  sm.meta.endpoint_url))
        return None
    try:
        return mapping.rds_secret_fields(name, value.get("SecretString"))
    except mapping.BrokenSecret as err:
        warn(f"rds_targets: skipped in {region}: {err}")
        return None
    finally:
        value = None  # the value (and its password) is not kept past this point


def secrets_of(params: dict, region: str, prefixes: list[str], secret_tag: str,
               warn: Callable[[str], None]) -> list[dict]:
    """The RDS-style secrets of a region: [{"name", "arn", "tags", "fields"}]."""
    sm = client({**params, "region": region}, "secretsmanager")
    found = []
    for entry in _pages(sm, "list_secrets", "SecretList", region):
        if not mapping.wanted_secret(entry, prefixes, secret_tag):
            continue
        fields = _secret_fields(sm, region, entry, warn)
        if fields is not None:
            found.append({"name": entry["Name"], "arn": entry["ARN"],
                          "tags": mapping.tags_of(entry), "fields": fields,
                          "created": _timestamp(entry.get("CreatedDate"))})
    return found


def _timestamp(value) -> float | None:
    """A list_secrets CreatedDate (a datetime from boto3) as seconds, None when absent."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def region_hosts(params: dict, region: str, options: dict,
                 warn: Callable[[str], None]) -> list[dict]:
    """The hosts of one region (a secret addresses a database of its own region only)."""
    rds = client({**params, "region": region}, "rds")
    instances = _pages(rds, "describe_db_instances", "DBInstances", region)
    clusters = (_pages(rds, "describe_db_clusters", "DBClusters", region)
                if options["include_clusters"] else [])
    records = mapping.databases(instances, clusters, region, options["filters"],
                                options["include_clusters"])
    if not records:
        return []  # no secret is read in a region without a database to match
    secrets = secrets_of(params, region, options["secret_prefixes"], options["secret_tag"],
                         warn)
    warnings: list[str] = []
    hosts = mapping.build_hosts(records, secrets, options["connect"], options["secret_tag"],
                                options["hostname_template"],
                                bool(options.get("master_extra_stores")), warnings)
    for warning in warnings:
        warn(f"{warning} (region {region})")
    return hosts


def collect(params: dict, options: dict, warn: Callable[[str], None]) -> list[dict]:
    """The inventory's hosts over every region of options['regions'] (none: the region of
    params, from the option, the environment or the profile)."""
    regions = options.get("regions") or [params.get("region")]
    if not all(regions):
        raise AwsError("no AWS region: set regions (or region, or AWS_REGION)")
    return mapping.merge_regions([region_hosts(params, region, options, warn)
                                  for region in dict.fromkeys(regions)])
