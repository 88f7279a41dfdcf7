# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an ECS container's ``secrets`` entry points at: the store dict of the Secrets Manager
secret or SSM parameter its ``valueFrom`` names, or why it is refused.  Pure but for the
caller's account, asked once through a callable."""
from __future__ import annotations

import re
from collections.abc import Callable

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# arn:aws:secretsmanager:region:account:secret:name[:json-key:version-stage:version-id]
_SECRET_ARN = re.compile(r"^(?P<arn>arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d+:"
                         r"secret:[^:]+)(?::(?P<key>[^:]*):(?P<stage>[^:]*):(?P<vid>[^:]*))?$")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:")
# the JSON keys of an RDS-style secret a variable may take its value from
CREDENTIAL_KEYS = ("password",)


class ValueFromError(PgauthError):
    """A valueFrom this collection does not follow; the message says why (no secret in it)."""


def value_from_store(ref: str, base: dict, label: str, value_format: str | None,
                     caller_account: Callable[[], str]) -> dict:
    """The store dict valueFrom ref names.  base: the profile and region to reach it with
    (never ECS's endpoint: a VPC endpoint of ECS must not receive Secrets Manager or SSM
    requests); the ARN's own region wins."""
    secret = _SECRET_ARN.match(ref)
    if secret:
        account = secret.group("arn").split(":")[4]
        if account != caller_account():
            # a revision anyone may register could send every new password there
            raise ValueFromError(f"valueFrom names a secret in account {account}, not the one "
                                 "these AWS credentials use: a secret of another account is "
                                 "not written from here")
        key = secret.group("key")
        if key and key not in CREDENTIAL_KEYS:
            raise ValueFromError(f"valueFrom takes JSON key {key!r} of the secret: only "
                                 f"{', '.join(CREDENTIAL_KEYS)} is a credential field")
        if secret.group("stage") or secret.group("vid"):
            raise ValueFromError("valueFrom pins a version stage or id of the secret: the "
                                 "task would not see a rotation")
        return {**base, "name": label, "type": "aws_secretsmanager",
                "secret_id": secret.group("arn"), "region": secret.group("region"),
                "format": "json" if key else value_format or "password"}
    if _SSM_ARN.match(ref) or ref.startswith("/") or ":" not in ref:
        # an SSM ARN's account is checked by the parameter store itself
        return {**base, "name": label, "type": "aws_ssm", "parameter": ref}
    raise ValueFromError(f"valueFrom {ref!r} is neither a Secrets Manager secret nor an SSM "
                         "parameter")
