# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The http consumer: an application whose health URL must answer 2xx within a timeout once
the new credential is in its stores (it re-reads them, or a deployment restarted it).
Nothing to refresh; confirming is the URL (retried, bounded) and, when configured, the
application's new sessions."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    Consumer,
    ConsumerContext,
)

# one request never waits longer than this, whatever the consumer's overall timeout
REQUEST_TIMEOUT = 5.0


def _shown(url: str) -> str:
    """The URL without userinfo or query (either may carry a token)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_url(consumer: Consumer, url: str, spec: dict) -> str:
    """One GET; ConsumerError unless the answer is 2xx."""
    from ansible.module_utils.urls import open_url
    try:
        from urllib.error import HTTPError, URLError
        response = open_url(url, method="GET", timeout=min(REQUEST_TIMEOUT, consumer.timeout),
                            validate_certs=spec.get("validate_certs", True),
                            ca_path=spec.get("ca_cert"), follow_redirects="safe")
        status = response.getcode()
    except HTTPError as err:
        status = err.code
    except (URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err.__class__.__name__
        raise consumer.error(f"{_shown(url)} did not answer: {reason}") from None
    if not 200 <= int(status) < 300:
        raise consumer.error(f"{_shown(url)} answered {status}, not 2xx")
    return f"{_shown(url)} answered {status}"


class HttpConsumer(Consumer):
    TYPE = "http"
    KEYS = frozenset({"url"})
    REQUIRED = ("url",)
    MANUAL = "make the application re-read its stores (or restart it) until its URL answers 2xx"

    def refresh(self, ctx: ConsumerContext) -> str:
        return "nothing to refresh: the application reads the stores"

    def confirm_own(self, ctx: ConsumerContext) -> str | None:
        return check_url(self, self.spec["url"], self.spec)
