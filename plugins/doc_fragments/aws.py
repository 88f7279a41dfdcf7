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
      - Must be C(https://), or C(http://) to this machine, unless O(insecure_endpoint_ok);
        the same holds for a store's C(endpoint_url), which receives these credentials.
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
  insecure_endpoint_ok:
    description:
      - Allow an AWS C(endpoint_url) or Vault C(url) that is neither C(https://) nor plain
        C(http://) to this machine (C(127.0.0.0/8), C(::1), C(localhost)). Without it such an
        endpoint is refused before anything is sent, naming the endpoint, where it came from
        (this option, E(AWS_ENDPOINT_URL), E(VAULT_ADDR), a profile, or a store's own
        C(endpoint_url) or C(url)) and the store.
      - The check applies to the endpoint wherever it came from, because the endpoint receives
        the module's credentials (AWS keys and request signatures, the Vault token or AppRole
        secret id) and the secrets read or written. A store's C(endpoint_url) or C(url)
        override receives them too, so whoever may edit a store dict may choose where they go;
        this is a module option, not a store key, so that the same person cannot also allow
        cleartext.
      - Turn it on only for a test server on another host or a network you trust with these
        credentials in cleartext. amazon.aws and community.hashi_vault have no such check.
    type: bool
    default: false
requirements:
  - boto3
"""
