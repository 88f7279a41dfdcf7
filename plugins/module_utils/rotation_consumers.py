# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotate's consumers: after promote each one is refreshed, then confirmed, through the
executor (so each is a recorded, timed step with a kill point after it).  observe asks them
which are left behind, so a run that died or failed after promote is finished by the next
one, which refreshes and confirms what was left and never rotates again.

After promote there is no rollback: a consumer that cannot be confirmed fails the run with
a message that says what is done and exactly what is left."""
from __future__ import annotations

import time

from ansible_collections.credops.pgauth.plugins.module_utils.consumers import (
    ConsumerContext,
    ConsumerError,
    ConsumerLine,
    confirm_all,
    database_now,
    make_consumers,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg import psycopg2
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
    Executor,
    Outcome,
    RotationError,
    Step,
)


class RotationConsumers:
    def __init__(self, params: dict, cur, execute: Executor, out: Outcome, hide):
        try:
            self.consumers = make_consumers(params.get("consumers"), hide)
        except ConsumerError as err:
            raise RotationError(f"{err}; nothing was changed") from None
        self.params, self.cur, self.execute, self.out, self.hide = (
            params, cur, execute, out, hide)
        self.role = params["role"]

    @property
    def names(self) -> tuple:
        return tuple(consumer.name for consumer in self.consumers)

    def context(self, cred: Credential | None, since=None) -> ConsumerContext:
        return ConsumerContext(self.cur, self.params, self.role, cred, since, self.hide)

    def left_behind(self, trusted: Credential | None) -> tuple:
        """The consumers that do not work with the trusted credential now (observe)."""
        left = []
        for consumer in self.consumers:
            try:
                behind = consumer.left_behind(self.context(trusted))
            except (ConsumerError, psycopg2.Error):
                behind = True  # cannot tell: refreshing and confirming it is the safe side
            if behind:
                left.append(consumer.name)
        return tuple(left)

    def prepare(self, cred: Credential) -> None:
        """Before promote, with the new password in the database: the consumers that can
        take it ahead of the stores do (a pooler's auth_file).  A failure here is a note, not
        a failed run: refresh after promote does the same work again and fails loudly."""
        ctx = self.context(cred)
        for consumer in self.consumers:
            if not consumer.PREPARES:
                continue
            try:
                self.execute.run("prepare:" + consumer.name, [], consumer.prepare, ctx)
            except (ConsumerError, psycopg2.Error) as err:
                self.out.note(f"{err}; not prepared before promote, refreshed after it")

    def refresh_and_confirm(self, names: tuple, cred: Credential | None) -> None:
        """Refresh each named consumer, then confirm each; RotationError naming what is left
        when one fails (the lines say which and why)."""
        chosen = [consumer for consumer in self.consumers if consumer.name in names]
        if not chosen:
            return
        started = time.monotonic()
        lines = {consumer.name: ConsumerLine(consumer.name, consumer.TYPE)
                 for consumer in chosen}
        self.out.consumers = [line.as_dict() for line in lines.values()]
        ctx = self.context(cred, None if self.execute.check_mode else database_now(self.cur))
        broken = []
        for consumer in chosen:
            line = lines[consumer.name]
            step_started = time.monotonic()
            try:
                line.detail = self.execute.run("refresh:" + consumer.name, [], consumer.refresh,
                                               ctx)
                line.refreshed = not self.execute.check_mode
            except ConsumerError as err:
                line.error, line.left = str(err), consumer.MANUAL
                broken.append(line)
            line.seconds = round(time.monotonic() - step_started, 3)
        if self.execute.check_mode:
            for consumer in chosen:
                self.execute.skip("confirm:" + consumer.name, [], "check mode: not confirmed")
            self.out.consumers = [line.as_dict() for line in lines.values()]
            return
        for consumer in chosen:
            line = lines[consumer.name]
            if not line.refreshed:
                continue
            confirm_started = time.monotonic()
            broken += confirm_all([consumer], ctx, lines)
            self.execute.record(Step("confirm:" + consumer.name, [],
                                     "done" if line.confirmed else "failed",
                                     time.monotonic() - confirm_started,
                                     line.error or "; ".join(line.checks)))
        self.out.consumers = [line.as_dict() for line in lines.values()]
        self.out.consumers_seconds = round(time.monotonic() - started, 3)
        if broken:
            raise RotationError(self.failure(broken))

    def failure(self, broken: list[ConsumerLine]) -> str:
        promoted = self.out.promoted
        head = ("the stores and the database hold the new credential (after promote there is "
                "no rollback)" if promoted else "the stores and the database agree")
        parts = [f"{line.error}; left to do: {line.left}" for line in broken]
        return (f"{head}, but {len(broken)} consumer(s) not confirmed: " + " | ".join(parts)
                + ". Run rotate again once fixed: it refreshes and confirms what is left "
                "and does not rotate again")
