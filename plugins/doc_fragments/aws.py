# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region. Falls back to E(AWS_REGION), then E(AWS_DEFAULT_REGION), then the profile.
    type: str
    aliases: [aws_region]
  profile:
    description:
      - Named profile from the AWS config files. Falls back to E(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description:
      - Use this endpoint instead of the AWS default (a VPC endpoint, or a test server).
        Falls back to E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  access_key:
    description:
      - AWS access key id. Falls back to E(AWS_ACCESS_KEY_ID), then boto3's credential chain
        (profile, instance or task role, web identity).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - AWS secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY).
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description:
      - AWS session token for temporary credentials. Falls back to E(AWS_SESSION_TOKEN).
    type: str
    aliases: [aws_session_token]
  aws_config:
    description:
      - Settings for botocore's C(Config) that override this collection's defaults
        (C(connect_timeout=10), C(read_timeout=30), standard retries with 8 attempts).
      - For example a C(read_timeout) of 5 and C(retries) of C(max_attempts=2) give up
        quickly on an endpoint that does not answer.
    type: dict
requirements:
  - boto3
"""
