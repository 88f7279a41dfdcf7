#!/usr/bin/python3
"""PAM verifier that accepts an RDS IAM auth token exactly when RDS would.

Runs under pam_exec (``expose_authtok``) as the PostgreSQL server's OS user:
the client's password arrives on stdin, NUL-terminated, and the login role in
PAM_USER.  Standard library only, because the server user cannot read the
project's virtualenv.  Exit status 0 accepts the login, anything else denies.

A token is a SigV4 pre-signed ``connect`` request for service ``rds-db``::

    HOST:PORT/?Action=connect&DBUser=ROLE&X-Amz-Algorithm=AWS4-HMAC-SHA256
      &X-Amz-Credential=AKID/DATE/REGION/rds-db/aws4_request&X-Amz-Date=...
      &X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=...

One line per decision goes to the lab's IAM log: time, user, outcome, reason.
The token itself is never written anywhere.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import sys
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rds-db"
MAX_EXPIRES = 900
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# SDKs differ in what they put as the payload hash of a pre-signed GET:
# botocore hashes the empty body, others send the UNSIGNED-PAYLOAD constant.
PAYLOAD_HASHES = (EMPTY_SHA256, "UNSIGNED-PAYLOAD")


class Denied(Exception):
    """The token is not acceptable; the message is the logged reason."""


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _sign(("AWS4" + secret).encode("utf-8"), date)
    k = _sign(k, region)
    k = _sign(k, service)
    return _sign(k, "aws4_request")


def expected_signature(secret: str, host: str, params: list[tuple[str, str]],
                       date: str, region: str, payload_hash: str) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in params if k != "X-Amz-Signature")
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, f"host:{host}", "", "host", payload_hash])
    amz_date = dict(params)["X-Amz-Date"]
    scope = f"{date}/{region}/{SERVICE}/aws4_request"
    string_to_sign = "\n".join([
        ALGORITHM, amz_date, scope,
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = signing_key(secret, date, region, SERVICE)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def check_token(token: str, user: str, config: dict, now: dt.datetime) -> str:
    """Return the accepted access key id, or raise Denied with the reason."""
    host, sep, query = token.partition("/?")
    if not sep or not query:
        raise Denied("not an IAM token (no host/?query form)")
    if host not in config["endpoints"]:
        raise Denied(f"token signed for another endpoint ({host})")
    params = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    values: dict[str, str] = {}
    for key, value in params:
        if key in values:
            raise Denied(f"repeated query parameter {key}")
        values[key] = value
    for required in ("Action", "DBUser", "X-Amz-Algorithm", "X-Amz-Credential",
                     "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                     "X-Amz-Signature"):
        if required not in values:
            raise Denied(f"missing {required}")
    if values["Action"] != "connect":
        raise Denied("Action is not connect")
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise Denied("unsupported signing algorithm")
    if values["X-Amz-SignedHeaders"] != "host":
        raise Denied("signed headers must be exactly host")
    if values["DBUser"] != user:
        raise Denied("DBUser does not match the login role")
    try:
        access_key, date, region, service, terminator = values["X-Amz-Credential"].split("/")
    except ValueError:
        raise Denied("malformed credential scope") from None
    if service != SERVICE or terminator != "aws4_request":
        raise Denied(f"credential scope is not {SERVICE}")
    if region != config["region"]:
        raise Denied(f"signed for region {region}, the instance is in {config['region']}")
    try:
        signed_at = dt.datetime.strptime(values["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC)
        expires = int(values["X-Amz-Expires"])
    except ValueError:
        raise Denied("malformed X-Amz-Date or X-Amz-Expires") from None
    if signed_at.strftime("%Y%m%d") != date:
        raise Denied("credential date does not match X-Amz-Date")
    if not 0 < expires <= MAX_EXPIRES:
        raise Denied(f"X-Amz-Expires outside 1..{MAX_EXPIRES}")
    if signed_at > now + dt.timedelta(seconds=config.get("max_clock_skew", 300)):
        raise Denied("signed in the future")
    if now > signed_at + dt.timedelta(seconds=expires):
        raise Denied("token expired")
    secret = config["keys"].get(access_key)
    if secret is None:
        raise Denied("unknown access key")
    given = values["X-Amz-Signature"]
    for payload_hash in PAYLOAD_HASHES:
        wanted = expected_signature(secret, host, params, date, region, payload_hash)
        if hmac.compare_digest(wanted, given):
            return access_key
    raise Denied("signature does not match")


def log_decision(path: str | None, user: str, outcome: str, reason: str) -> None:
    if not path:
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    safe_user = user.replace("\n", "\\n")
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} user={safe_user!r} outcome={outcome} reason={reason}\n")
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: rds_iam_verifier.py CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    user = os.environ.get("PAM_USER", "")
    raw = sys.stdin.buffer.read(65536)
    token = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    try:
        key = check_token(token, user, config, dt.datetime.now(dt.UTC))
    except Denied as denied:
        log_decision(config.get("log"), user, "deny", str(denied))
        return 1
    except Exception as exc:  # noqa: BLE001 - a verifier crash must deny, and say why
        log_decision(config.get("log"), user, "deny", f"verifier error {type(exc).__name__}")
        return 1
    log_decision(config.get("log"), user, "allow", f"valid token from {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
