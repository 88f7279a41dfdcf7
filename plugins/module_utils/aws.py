# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connection options (the amazon.aws names) and botocore client factories, and the one
endpoint check that the AWS and Vault client factories share (DESIGN §7)."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import ipaddress
import sys
import threading
from types import SimpleNamespace
from urllib.parse import urlsplit

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    AWS_OPTIONS,
    ENDPOINT_OPTIONS,
    argument_spec,
)

# botocore is imported on the first AWS client, not with this file: its import is about
# 0.15 s of CPU in every module process (issue 20), and a target whose stores, logs and login
# need no AWS never pays it.  Whether it is installed is known without importing it.
BOTO3_IMPORT_ERROR = (None if importlib.util.find_spec("boto3") and
                      importlib.util.find_spec("botocore") else
                      "ModuleNotFoundError: No module named 'boto3' (or 'botocore')")


class _NotRaised(Exception):
    """Stands for botocore's exceptions before botocore is imported: before the first client
    nothing can raise one."""


_NO_BOTOCORE = SimpleNamespace(**{name: _NotRaised for name in (
    "ClientError", "BotoCoreError", "EndpointConnectionError", "ConnectTimeoutError",
    "ReadTimeoutError", "NoCredentialsError", "ProfileNotFound", "ParamValidationError")})


def botocore_exceptions():
    """botocore.exceptions for except clauses, without importing botocore: until a client
    was made (which imports it) no call can have raised one, and the names match nothing."""
    return sys.modules.get("botocore.exceptions") or _NO_BOTOCORE


def call_errors() -> tuple:
    """What a botocore call raises when it fails (WaiterError is a BotoCoreError), for an
    except clause in every module that calls AWS, without importing botocore first."""
    exceptions = botocore_exceptions()
    return (exceptions.ClientError, exceptions.BotoCoreError)


def _botocore():
    """botocore, imported on first use (AwsError when it is not installed)."""
    if BOTO3_IMPORT_ERROR:
        raise AwsError("boto3 is required for AWS access (pip install boto3)")
    for name in ("botocore.config", "botocore.exceptions", "botocore.session"):
        importlib.import_module(name)
    return sys.modules["botocore"]


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
    exceptions = botocore_exceptions()
    if isinstance(err, (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError,
                        exceptions.ReadTimeoutError)):
        return f"cannot reach {service} at {shown_url(endpoint_url or '')}"
    if isinstance(err, exceptions.NoCredentialsError):
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


# One botocore session per set of credentials, for the life of the process: a new session loads
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
    """The process's botocore session for these credentials (call under _SESSION_LOCK).  A
    botocore session, not a boto3 one: boto3's adds resources and s3transfer (about 0.05 s
    of imports) and nothing these clients use."""
    botocore = _botocore()
    key = _session_key(params)
    if key not in _SESSIONS:
        made = botocore.session.Session(profile=params.get("profile"))
        try:
            made.get_scoped_config()  # as boto3's Session does: an unknown profile fails here
        except botocore.exceptions.ProfileNotFound as err:
            raise AwsError(f"AWS profile {params.get('profile')!r} not found") from err
        if params.get("access_key") or params.get("secret_key") or params.get("session_token"):
            made.set_credentials(params.get("access_key"), params.get("secret_key"),
                                 params.get("session_token"))
        if params.get("region"):
            made.set_config_variable("region", params["region"])
        _SESSIONS[key] = made
    return _SESSIONS[key]


# While reuse_clients() is on (one module run's gathering), a client asked for twice with
# the same settings is made once: making one costs about 0.05 s of CPU, and a store is read,
# probed and checked for rotators by three parts that each asked for their own.  botocore
# clients are thread-safe; the session that makes them is not (hence the lock).
_CLIENTS: dict[tuple, object] | None = None


@contextlib.contextmanager
def reuse_clients():
    """Within the block, client() hands back the client it made for the same settings."""
    global _CLIENTS
    with _SESSION_LOCK:
        _CLIENTS = {}
    try:
        yield
    finally:
        with _SESSION_LOCK:
            _CLIENTS = None


def client(params: dict, service: str, max_attempts: int | None = None,
           endpoint_source: str | None = None):
    """A botocore client for service; AwsError when the settings are not valid or the endpoint
    it would send the credentials to is refused (endpoint_refusal).  endpoint_source says
    where the endpoint came from, for that error (default: the option or the environment)."""
    with _SESSION_LOCK:
        sess = session(params)
    botocore = sys.modules["botocore"]
    region = sess.get_config_variable("region")
    if not region:
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
    cache_key = (_session_key(params), service, params.get("endpoint_url") or None,
                 repr(sorted(config.items())))
    try:
        with _SESSION_LOCK:
            made = None if _CLIENTS is None else _CLIENTS.get(cache_key)
            if made is None:
                # a copy of retries: botocore rewrites the dict it is given in place
                # (max_attempts -> total_max_attempts), which changed RETRY_CONFIG itself and
                # made every later one-shot max_attempts=1 check retry 8 times
                made = sess.create_client(service, region_name=region,
                                          endpoint_url=params.get("endpoint_url") or None,
                                          config=botocore.config.Config(**{
                                              **config, "retries": dict(config["retries"])}))
                if _CLIENTS is not None:
                    _CLIENTS[cache_key] = made
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
    except botocore_exceptions().NoCredentialsError as err:
        raise AwsError("cannot make an RDS IAM token: no AWS credentials found") from err


def caller_account(params: dict) -> str:
    """The account of the AWS identity these settings use (sts:GetCallerIdentity): where a
    write may go when an ARN names another account."""
    sts = client(params, "sts")
    try:
        return str(sts.get_caller_identity()["Account"])
    except (botocore_exceptions().ClientError, botocore_exceptions().BotoCoreError) as err:
        raise AwsError(describe_aws_error(err, "get_caller_identity", "STS",
                                          sts.meta.endpoint_url)) from None
