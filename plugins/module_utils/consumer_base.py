# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A consumer: something that uses the credential and must pick up a new one (a pooler, a
service, a health URL).  After promote, rotate refreshes each consumer and then confirms it;
verify confirms it; rotate's observe asks it whether it is left behind.

One base class; one file per type (consumer_<type>.py) that says what refresh and confirm
mean for it, registered in consumers.CONSUMER_TYPES.  What every type shares is here:

- the spec's common keys (name, type, health_url, sessions, timeout, interval),
- the confirmation every type gets: the health URL answers 2xx, and pg_stat_activity shows
  sessions of the role opened after the switch from that consumer (by application_name or
  client address), retried until the timeout.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

COMMON_KEYS = {"name", "type", "health_url", "sessions", "timeout", "interval",
               "validate_certs", "ca_cert"}
DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 1.0


class ConsumerError(PgauthError):
    """A consumer could not be refreshed or confirmed; the message starts with its name."""


@dataclass
class ConsumerContext:
    """What a consumer needs from the run: never printed (credential holds the password)."""

    cur: object                      # the admin's cursor on the target database
    params: dict                     # the module's parameters (stores' clients, TLS options)
    role: str                        # the base role
    credential: Credential | None    # what the stores hold now (the new one after promote)
    since: object = None             # the database's clock when the refresh began
    hide: Callable[[str], None] = lambda _secret: None
    sleep: Callable[[float], None] = time.sleep

    @property
    def user(self) -> str:
        return (self.credential.username if self.credential else None) or self.role


@dataclass
class ConsumerLine:
    """The report's line for one consumer: safe to print."""

    consumer: str
    type: str
    refreshed: bool = False
    confirmed: bool = False
    seconds: float = 0.0
    detail: str | None = None
    error: str | None = None
    left: str | None = None          # what is left to do by hand, when not confirmed
    checks: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Consumer:
    """The interface.  Subclasses set TYPE, KEYS (their own spec keys) and REQUIRED, and
    override refresh, confirm_own and, where they can tell, left_behind."""

    TYPE: ClassVar[str] = ""
    KEYS: ClassVar[frozenset] = frozenset()
    REQUIRED: ClassVar[tuple] = ()
    # what is left to do when confirmation fails, for the failure message
    MANUAL: ClassVar[str] = "check the consumer and run rotate again"
    # whether prepare does something (the others get no prepare step)
    PREPARES: ClassVar[bool] = False

    def __init__(self, spec: dict):
        self.spec = spec
        self.name = str(spec.get("name") or self.TYPE)
        unknown = sorted(set(spec) - COMMON_KEYS - set(self.KEYS))
        if unknown:
            raise self.error(f"unknown keys {', '.join(unknown)} (a {self.TYPE} consumer takes "
                             f"{', '.join(sorted(COMMON_KEYS | set(self.KEYS)))})")
        missing = [key for key in self.REQUIRED if not spec.get(key)]
        if missing:
            raise self.error(f"missing {', '.join(missing)}")
        try:
            timeout, interval = spec.get("timeout"), spec.get("interval")
            self.timeout = float(DEFAULT_TIMEOUT if timeout is None else timeout)
            self.interval = float(DEFAULT_INTERVAL if interval is None else interval)
        except (TypeError, ValueError):
            raise self.error("timeout and interval are numbers of seconds") from None
        if self.timeout <= 0 or self.interval <= 0:
            raise self.error("timeout and interval must be above 0")
        sessions = spec.get("sessions")
        if sessions is not None and (not isinstance(sessions, dict) or not (
                sessions.keys() & {"application_name", "client_addr"})
                or sessions.keys() - {"application_name", "client_addr", "min"}):
            raise self.error("sessions is a dict of application_name and/or client_addr "
                             "(and min, the number of sessions to see; default 1)")

    def error(self, message: str) -> ConsumerError:
        return ConsumerError(f"consumer {self.name!r} ({self.TYPE}): {message}")

    # -- what a type says ---------------------------------------------------------------
    def refresh(self, ctx: ConsumerContext) -> str:
        """Make the consumer pick up ctx.credential; returns what was done (no secret)."""
        raise NotImplementedError

    def prepare(self, ctx: ConsumerContext) -> str | None:
        """Before promote, once the database holds the new password: take what can be taken
        ahead of the stores, so a client that reads the promoted stores finds it in place
        (a pooler's auth_file).  None: nothing to do for this type."""
        return None

    def confirm_own(self, ctx: ConsumerContext) -> str | None:
        """The type's own proof, one attempt; raises ConsumerError (retried) when not yet."""
        return None

    def left_behind(self, ctx: ConsumerContext) -> bool:
        """Whether the consumer still needs a refresh (rotate's observe): types that can
        tell say so; the others are confirmed when their checks fail now."""
        try:
            self.confirm_once(ctx)
        except ConsumerError:
            return True
        return False

    # -- shared by every type --------------------------------------------------------------
    def confirm_once(self, ctx: ConsumerContext) -> list[str]:
        checks = []
        own = self.confirm_own(ctx)
        if own:
            checks.append(own)
        if self.spec.get("health_url"):
            from ansible_collections.credops.pgauth.plugins.module_utils.consumer_http import (
                check_url,
            )
            checks.append(check_url(self, self.spec["health_url"], self.spec))
        if self.spec.get("sessions"):
            checks.append(self.check_sessions(ctx))
        return checks

    def confirm(self, ctx: ConsumerContext) -> list[str]:
        """confirm_once until it passes or the timeout ends (bounded: timeout / interval
        attempts); the last reason when it never does."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self.confirm_once(ctx)
            except ConsumerError:
                if time.monotonic() + self.interval > deadline:
                    raise
            ctx.sleep(self.interval)

    def check_sessions(self, ctx: ConsumerContext) -> str:
        """Sessions of the role (or its clone) from this consumer (application_name and/or
        client address), opened after the refresh began when there was one."""
        match = self.spec["sessions"]
        wanted = int(match.get("min") or 1)
        where, args = ["usename = ANY(%s)"], [sorted({ctx.role, ctx.user})]
        if ctx.since is not None:
            # after a refresh: only sessions opened since; observe and verify have no switch
            # to compare with and count the consumer's sessions of now
            where.append("backend_start >= %s")
            args.append(ctx.since)
        if match.get("application_name"):
            where.append("application_name = %s")
            args.append(match["application_name"])
        if match.get("client_addr"):
            where.append("client_addr = %s::inet")
            args.append(match["client_addr"])
        ctx.cur.execute("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE "
                        + " AND ".join(where), args)
        seen = ctx.cur.fetchone()[0]
        described = ", ".join(f"{key} {value!r}" for key, value in match.items() if key != "min")
        if seen < wanted:
            when = " opened since the switch" if ctx.since is not None else ""
            raise self.error(f"no new sessions: {seen} of {wanted} sessions of "
                             f"{' or '.join(args[0])}{when} with {described}")
        return f"{seen} new session(s) with {described}"
