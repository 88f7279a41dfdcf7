# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where log lines come from: files (globs, rotated and gzipped) and CloudWatch Logs."""
from __future__ import annotations

import datetime as dt
import functools
import glob
import gzip
import os
from collections.abc import Iterator

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AwsError,
    botocore_exceptions,
    client,
    describe_aws_error,
    error_code,
)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.logscan import (
    LINE_LIMIT,
    Scanner,
    parse_since,
)


class LogSourceError(PgauthError):
    """A log source could not be read; the message names it."""


def expand(patterns: list[str]) -> list[str]:
    """Files matching the globs, oldest first, so rotated files are read in order."""
    paths = {path for pattern in patterns for path in glob.glob(os.path.expanduser(pattern))
             if os.path.isfile(path)}
    return sorted(paths, key=lambda path: (os.path.getmtime(path), path))


def file_lines(path: str, since: dt.datetime | None) -> Iterator[str]:
    """The file's lines; one longer than the scanner reads is yielded cut (LINE_LIMIT + 1
    characters, so the scanner counts it as too long) and the rest of it is skipped, never
    held in memory nor read as lines of its own (it could start like a log line)."""
    if since is not None:
        modified = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc)
        if modified < since:
            return  # nothing in a file last written before the window
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            lines = iter(functools.partial(handle.readline, LINE_LIMIT + 1), "")
            for line in lines:
                yield line
                if len(line) > LINE_LIMIT and not line.endswith("\n"):
                    for rest in lines:
                        if rest.endswith("\n"):
                            break
    except OSError as err:
        raise LogSourceError(f"log file {path}: {err.strerror or err}") from None


def cloudwatch_lines(params: dict, group: str, since: dt.datetime | None,
                     streams: list[str] | None = None) -> Iterator[str]:
    """Messages of a log group (RDS exports one line per event), all pages."""
    try:
        logs = client(params, "logs")
    except AwsError as err:
        raise LogSourceError(f"CloudWatch log group {group}: {err}") from None
    kwargs = {"logGroupName": group}
    if since is not None:
        kwargs["startTime"] = int(since.timestamp() * 1000)
    if streams:
        kwargs["logStreamNames"] = streams
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                # an event holds at most 256 KB; the scanner drops lines over LINE_LIMIT
                yield from (event.get("message") or "").splitlines()
    except (botocore_exceptions().ClientError, botocore_exceptions().BotoCoreError) as err:
        if error_code(err) == "ResourceNotFoundException":
            raise LogSourceError(f"CloudWatch log group {group} does not exist") from None
        raise LogSourceError(f"CloudWatch log group {group}: " + describe_aws_error(
            err, "filter_log_events", "CloudWatch Logs", logs.meta.endpoint_url)) from None


def scan_logs(params: dict, files: list[str], groups: list[str], since: str | None,
              role: str | None, max_samples: int, warn=None,
              until: dt.datetime | None = None) -> dict:
    """pg_auth_log_scan: auth failures per role over the files' and log groups' lines
    (before until, when given)."""
    try:
        start = parse_since(since, dt.datetime.now(dt.timezone.utc))
    except ValueError as err:
        raise LogSourceError(str(err)) from None
    scanner = Scanner(start, role, max_samples, until)
    paths = expand(files)
    if files and not paths and warn is not None:
        warn(f"no log file matches {', '.join(files)}")
    for path in paths:
        for line in file_lines(path, start):
            scanner.feed(line)
    for group in groups:
        for line in cloudwatch_lines(params, group, start):
            scanner.feed(line)
    return {"sources": paths + list(groups), **scanner.result()}
