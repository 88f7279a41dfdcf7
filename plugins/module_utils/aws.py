# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connection options (the amazon.aws names) and boto3 client factories."""
from __future__ import annotations

import traceback

from ansible.module_utils.basic import env_fallback

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    BOTO3_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    boto3 = None
    BOTO3_IMPORT_ERROR = traceback.format_exc()

AWS_ARGSPEC = {
    "region": {"type": "str", "aliases": ["aws_region"],
               "fallback": (env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])},
    "profile": {"type": "str", "aliases": ["aws_profile"],
                "fallback": (env_fallback, ["AWS_PROFILE"])},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"],
                     "fallback": (env_fallback, ["AWS_ENDPOINT_URL"])},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False,
                   "fallback": (env_fallback, ["AWS_ACCESS_KEY_ID"])},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True,
                   "fallback": (env_fallback, ["AWS_SECRET_ACCESS_KEY"])},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True,
                      "fallback": (env_fallback, ["AWS_SESSION_TOKEN"])},
    "aws_config": {"type": "dict"},
}

# Standard retry mode backs off on throttling (Secrets Manager and RDS both throttle).
RETRY_CONFIG = {"retries": {"mode": "standard", "max_attempts": 8},
                "connect_timeout": 10, "read_timeout": 30}


class AwsError(Exception):
    """An AWS call failed; the message names the service and what was asked."""


def session(params: dict):
    if boto3 is None:
        raise AwsError("boto3 is required for AWS access (pip install boto3)")
    try:
        return boto3.session.Session(
            profile_name=params.get("profile"),
            aws_access_key_id=params.get("access_key"),
            aws_secret_access_key=params.get("secret_key"),
            aws_session_token=params.get("session_token"),
            region_name=params.get("region"))
    except botocore.exceptions.ProfileNotFound as err:
        raise AwsError(f"AWS profile {params.get('profile')!r} not found") from err


def client(params: dict, service: str, max_attempts: int | None = None):
    sess = session(params)
    if not sess.region_name:
        raise AwsError(f"{service}: no AWS region (set region, or AWS_REGION)")
    config = dict(RETRY_CONFIG)
    user = dict(params.get("aws_config") or {})
    retries = user.pop("retries", None)
    config.update(user)
    if retries is not None:
        if not isinstance(retries, dict):
            raise AwsError(f"{service}: aws_config.retries must be a dict")
        # merged, so that giving max_attempts keeps the standard mode
        config["retries"] = {**RETRY_CONFIG["retries"], **retries}
    if max_attempts is not None:  # the caller's own limit wins (a one-shot check)
        config["retries"] = {**config["retries"], "max_attempts": max_attempts}
    try:
        return sess.client(service, endpoint_url=params.get("endpoint_url") or None,
                           config=botocore.config.Config(**config))
    except (TypeError, ValueError, AttributeError, botocore.exceptions.BotoCoreError) as err:
        raise AwsError(f"{service}: the client settings are not valid (check aws_config and "
                       f"endpoint_url): {type(err).__name__}: {err}") from None


def rds_auth_token(params: dict, host: str, port: int, user: str) -> str:
    """A fresh RDS IAM auth token (valid 15 minutes, for new connections only)."""
    try:
        rds = client(params, "rds")
        return rds.generate_db_auth_token(DBHostname=host, Port=int(port), DBUsername=user)
    except botocore.exceptions.NoCredentialsError as err:
        raise AwsError("cannot make an RDS IAM token: no AWS credentials found") from err
