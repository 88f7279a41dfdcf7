# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connection options (the amazon.aws names) and boto3 client factories, and the one
endpoint check that the AWS and Vault client factories share (DESIGN §7)."""
from __future__ import annotations

import ipaddress
import threading
import traceback
from urllib.parse import urlsplit

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    AWS_OPTIONS,
    ENDPOINT_OPTIONS,
    argument_spec,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    BOTO3_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    boto3 = None
    BOTO3_IMPORT_ERROR = traceback.format_exc()

# The opt-in for an endpoint that is neither https nor loopback: one option (ENDPOINT_OPTIONS)
# in both AWS_ARGSPEC and VAULT_ARGSPEC, since a module with stores takes both specs.
INSECURE_ENDPOINT_OPTION = "insecure_endpoint_ok"
INSECURE_ENDPOINT_SPEC = argument_spec(ENDPOINT_OPTIONS)[INSECURE_ENDPOINT_OPTION]

# the amazon.aws names and AWS_* fallbacks, from the option registry
AWS_ARGSPEC = argument_spec({**AWS_OPTIONS, **ENDPOINT_OPTIONS})

# Standard retry mode backs off on throttling (Secrets Manager and RDS both throttle).
RETRY_CONFIG = {"retries": {"mode": "standard", "max_attempts": 8},
                "connect_timeout": 10, "read_timeout": 30}


class AwsError(PgauthError):
    """An AWS call failed; the message names the service and what was asked."""


ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException",
                                 "UnauthorizedOperation", "UnrecognizedClientException"})


def error_code(err: BaseException) -> str:
    """The AWS error code of a botocore ClientError; '' for any other error."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return ""
    return str((response.get("Error") or {}).get("Code") or "")


def describe_aws_error(err: BaseException, what: str, service: str,
                       endpoint_url: str | None) -> str:
    """One sentence for a failed AWS call (what: 'describe_secret', 'describing DB instance
    x'), the same for every caller: never the request, never a credential.  Callers handle
    the codes that mean something to them (not found) before asking for this."""
    code = error_code(err)
    if code in ACCESS_DENIED_CODES:
        return f"access denied for {what} ({code})"
    if code:
        return f"{what} failed: {code}"
    if boto3 is not None and isinstance(err, (botocore.exceptions.EndpointConnectionError,
                                              botocore.exceptions.ConnectTimeoutError,
                                              botocore.exceptions.ReadTimeoutError)):
        return f"cannot reach {service} at {shown_url(endpoint_url or '')}"
    if boto3 is not None and isinstance(err, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found"
    return f"{what} failed: {type(err).__name__}"


# A character here can make URL parsers disagree about the host (urllib.parse here, urllib3 in
# botocore and requests): with a backslash before an "@", one reads 127.0.0.1 and another the
# attacker's host.  A loopback endpoint never needs any of them.
_AMBIGUOUS_URL_CHARS = frozenset("\\@ \t\r\n") | frozenset(chr(c) for c in range(32))


def shown_url(url: str) -> str:
    """url for an error message: scheme, host and port only (a user:password, a path or a
    query may carry a secret)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unparsable URL>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "<a URL without a scheme>"


def is_loopback_url(url: str) -> bool:
    """Whether url names this machine unambiguously: 127.0.0.0/8, ::1 or localhost, with no
    user info or character that parsers read differently."""
    if any(char in _AMBIGUOUS_URL_CHARS for char in url.strip()):
        return False
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost":  # exactly: "localhost." or "x.localhost" go to a resolver
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name (other than localhost) may resolve anywhere; 0x7f.1 is refused
    return address.is_loopback  # 127.0.0.0/8 or ::1


def endpoint_refusal(url: str | None, service: str, source: str, params: dict) -> str | None:
    """Why url must not receive credentials, or None when it may.

    The one check for every endpoint that gets the operator's credentials (Vault token or
    AppRole secret, AWS keys and request signatures, and the secrets that come back): https,
    or plain http to loopback (a test server on this machine), unless the module option
    insecure_endpoint_ok says otherwise.  source says where url came from, for the message
    (a store's override, an option, the environment); the message never holds a credential.
    """
    if not url or params.get(INSECURE_ENDPOINT_OPTION):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme == "https":
        return None
    if scheme == "http" and is_loopback_url(url):
        return None
    if scheme == "http" and any(char in _AMBIGUOUS_URL_CHARS for char in url.strip()):
        why = ("an http URL with user info, a backslash or a space is not taken for loopback "
               "(URL parsers disagree about its host)")
    elif scheme == "http":
        why = ("plain http to a host that is not loopback (127.0.0.0/8, ::1, localhost) would "
               "send them unencrypted")
    else:
        why = f"the scheme is {scheme!r}, not https" if scheme else "the URL has no https:// scheme"
    return (f"refusing to send credentials to {service} at {shown_url(url)} (from {source}): "
            f"{why}; use an https endpoint, or set the option {INSECURE_ENDPOINT_OPTION}: true "
            "(of the module or lookup, not of a store) to allow it")


# One boto3 session per set of credentials, for the life of the process: a new session loads
# botocore's endpoint and service models again (about 0.1 s of CPU per client), and one
# diagnose makes clients for every store, the IAM checks and the rotator check at once.
# A session is not thread-safe: it is made, and makes clients, under the lock; the clients
# it makes are.
_SESSIONS: dict[tuple, object] = {}
_SESSION_LOCK = threading.Lock()


def _session_key(params: dict) -> tuple:
    return tuple(params.get(name) for name in
                 ("profile", "access_key", "secret_key", "session_token", "region"))


def session(params: dict):
    """The process's boto3 session for these credentials (call under _SESSION_LOCK)."""
    if boto3 is None:
        raise AwsError("boto3 is required for AWS access (pip install boto3)")
    key = _session_key(params)
    if key not in _SESSIONS:
        try:
            _SESSIONS[key] = boto3.session.Session(
                profile_name=params.get("profile"),
                aws_access_key_id=params.get("access_key"),
                aws_secret_access_key=params.get("secret_key"),
                aws_session_token=params.get("session_token"),
                region_name=params.get("region"))
        except botocore.exceptions.ProfileNotFound as err:
            raise AwsError(f"AWS profile {params.get('profile')!r} not found") from err
    return _SESSIONS[key]


def client(params: dict, service: str, max_attempts: int | None = None,
           endpoint_source: str | None = None):
    """A boto3 client for service; AwsError when the settings are not valid or the endpoint
    it would send the credentials to is refused (endpoint_refusal).  endpoint_source says
    where the endpoint came from, for that error (default: the option or the environment)."""
    with _SESSION_LOCK:
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
        with _SESSION_LOCK:
            made = sess.client(service, endpoint_url=params.get("endpoint_url") or None,
                               config=botocore.config.Config(**config))
    except (TypeError, ValueError, AttributeError, botocore.exceptions.BotoCoreError) as err:
        raise AwsError(f"{service}: the client settings are not valid (check aws_config and "
                       f"endpoint_url): {type(err).__name__}: {err}") from None
    # Checked on the endpoint botocore resolved, not only on the option: AWS_ENDPOINT_URL,
    # AWS_ENDPOINT_URL_<SERVICE> and a profile's endpoint_url reach it without the option.
    # Making a client sends nothing, so nothing has left yet.
    if endpoint_source is None:
        endpoint_source = ("the endpoint_url option or AWS_ENDPOINT_URL"
                           if params.get("endpoint_url") else
                           "the AWS environment or config: AWS_ENDPOINT_URL_<SERVICE>, or the "
                           "profile's endpoint_url")
    refusal = endpoint_refusal(made.meta.endpoint_url, service, endpoint_source, params)
    if refusal:
        raise AwsError(refusal)
    return made


def rds_auth_token(params: dict, host: str, port: int, user: str) -> str:
    """A fresh RDS IAM auth token (valid 15 minutes, for new connections only)."""
    try:
        rds = client(params, "rds")
        return rds.generate_db_auth_token(DBHostname=host, Port=int(port), DBUsername=user)
    except botocore.exceptions.NoCredentialsError as err:
        raise AwsError("cannot make an RDS IAM token: no AWS credentials found") from err


def caller_account(params: dict) -> str:
    """The account of the AWS identity these settings use (sts:GetCallerIdentity): where a
    write may go when an ARN names another account."""
    sts = client(params, "sts")
    try:
        return str(sts.get_caller_identity()["Account"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
        raise AwsError(describe_aws_error(err, "get_caller_identity", "STS",
                                          sts.meta.endpoint_url)) from None
