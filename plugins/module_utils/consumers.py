# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The consumer types (one table: a new type is one file, consumer_<type>.py, and one row
here) and what rotate and verify do with a list of consumers: refresh each, then confirm
each, one report line per consumer."""
from __future__ import annotations

import time

from ansible_collections.credops.pgauth.plugins.module_utils.consumer_aws_ecs_service import (
    AwsEcsServiceConsumer,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    Consumer,
    ConsumerContext,
    ConsumerError,
    ConsumerLine,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_command import (
    CommandConsumer,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_http import HttpConsumer
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_pgbouncer import (
    PgBouncerConsumer,
)
from ansible_collections.credops.pgauth.plugins.module_utils.verification import url_secrets

CONSUMER_TYPES: dict[str, type[Consumer]] = {
    consumer.TYPE: consumer for consumer in (PgBouncerConsumer, HttpConsumer,
                                             AwsEcsServiceConsumer, CommandConsumer)}

__all__ = ["CONSUMER_TYPES", "ConsumerContext", "ConsumerError", "ConsumerLine",
           "confirm_all", "consumer_secrets", "make_consumers"]


def consumer_secrets(specs) -> set[str]:
    """The secrets written inside consumer items, found without validating them (a module
    registers them before anything can fail, or its invocation.module_args would show them):
    an inline admin password, and what redact_url hides of a url or health_url."""
    found: set[str] = set()
    for spec in specs if isinstance(specs, list) else ():
        if not isinstance(spec, dict):
            continue
        admin = spec.get("admin")
        if isinstance(admin, dict) and isinstance(admin.get("password"), str):
            found.add(admin["password"])
        for key in ("url", "health_url"):
            if isinstance(spec.get(key), str):
                found.update(url_secrets(spec[key]))
    return {value for value in found if value}


def make_consumers(specs: list[dict] | None, hide=None) -> list[Consumer]:
    """Consumer objects from pgauth_consumers items; ConsumerError on a bad item (before
    anything changed).  hide(secret) registers the secrets consumer_secrets finds."""
    if hide is not None:
        for secret in consumer_secrets(specs):
            hide(secret)
    consumers: list[Consumer] = []
    for index, spec in enumerate(specs or []):
        if not isinstance(spec, dict):
            raise ConsumerError(f"consumer #{index + 1}: each item is a dict with a type")
        kind = spec.get("type")
        if kind not in CONSUMER_TYPES:
            raise ConsumerError(f"consumer {spec.get('name') or '#' + str(index + 1)!r}: "
                                f"unknown type {kind!r}; known: {', '.join(CONSUMER_TYPES)}")
        consumers.append(CONSUMER_TYPES[kind](spec))
    names = [consumer.name for consumer in consumers]
    if len(set(names)) != len(names):
        raise ConsumerError("consumer names must be unique (they label report lines)")
    return consumers


def database_now(cur):
    cur.execute("SELECT clock_timestamp()")
    return cur.fetchone()[0]


def confirm_all(consumers: list[Consumer], ctx: ConsumerContext,
                lines: dict[str, ConsumerLine]) -> list[ConsumerLine]:
    """Confirm each consumer (retried up to its timeout), filling its line; the lines of the
    ones that failed."""
    failed = []
    for consumer in consumers:
        line = lines.setdefault(consumer.name, ConsumerLine(consumer.name, consumer.TYPE))
        started = time.monotonic()
        try:
            line.checks = consumer.confirm(ctx)
            line.confirmed, line.error, line.left = True, None, None
        except ConsumerError as err:
            line.error, line.left = str(err), consumer.MANUAL
            failed.append(line)
        line.seconds = round(line.seconds + time.monotonic() - started, 3)
    return failed
