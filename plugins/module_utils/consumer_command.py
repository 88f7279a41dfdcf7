# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command consumer: a restart that makes an application read its stores again
(``systemctl restart app``, ``docker compose up -d``, ``kubectl rollout restart deploy/app``).

Refresh runs ``argv`` - a list, no shell - through the same safe runner as the command store
(cmd_runner: a clean environment, a timeout that kills the whole process group, stderr
redacted of the credential and of anything secret-looking, the exit code checked).  The
credential is never given to the command: a restart re-reads the stores itself.  Confirming
is the shared part: ``health_url`` and ``sessions``; a command consumer without either is
confirmed by its exit code alone, and says so.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.cmd_runner import (
    CommandError,
    run_command,
)
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    Consumer,
    ConsumerContext,
)

DEFAULT_COMMAND_TIMEOUT = 120.0


class CommandConsumer(Consumer):
    TYPE = "command"
    KEYS = frozenset({"argv", "command_timeout", "env", "inherit_env", "cwd"})
    REQUIRED = ("argv",)
    MANUAL = "run the restart by hand and check the application's log for its database login"

    def __init__(self, spec: dict):
        super().__init__(spec)
        argv = spec.get("argv")
        if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
            raise self.error("argv is a list of strings (no shell: one item per argument)")

    def refresh(self, ctx: ConsumerContext) -> str:
        secrets = [ctx.credential.password] if ctx.credential and ctx.credential.password \
            else []
        try:
            done = run_command(self.spec["argv"], secrets=secrets,
                               timeout=float(self.spec.get("command_timeout")
                                             or DEFAULT_COMMAND_TIMEOUT),
                               env=self.spec.get("env"),
                               inherit_env=self.spec.get("inherit_env") or (),
                               cwd=self.spec.get("cwd"))
        except CommandError as err:
            raise self.error(str(err)) from None
        return f"{self.spec['argv'][0]} exited 0 after {done.seconds:.1f} s"

    def confirm_own(self, ctx: ConsumerContext) -> str | None:
        if not (self.spec.get("health_url") or self.spec.get("sessions")):
            return "no health_url or sessions: confirmed by the restart's exit code only"
        return None

    def left_behind(self, ctx: ConsumerContext) -> bool:
        # without a health URL or sessions nothing tells a restarted application from one
        # that was not: it is refreshed after every promote, never "left behind" on its own
        if not (self.spec.get("health_url") or self.spec.get("sessions")):
            return False
        return super().left_behind(ctx)
