# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one executor every rotation step goes through: timing, check mode, the report's
step records and the failpoint hook.  The IAM conversion, rds_api and the stores' promote
use it too, so a step is recorded and timed the same way whoever runs it."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# Test hook for the fault-injection harness: PGAUTH_FAILPOINT=<boundary> kills the process
# with SIGKILL right after that boundary, as an operator's Ctrl-C or an OOM kill would; with
# PGAUTH_FAILPOINT_ACTION=stop it stops itself (SIGSTOP) there instead, so the harness can
# break a server at that exact moment and then let the run go on (SIGCONT).  The module
# reads them once (env_failpoint) and hands the hook to the executor: no step reads them.
FAILPOINT_ENV = "PGAUTH_FAILPOINT"
FAILPOINT_ACTION_ENV = "PGAUTH_FAILPOINT_ACTION"
# steps that only look: they do not make a run "changed"
CHECK_STEPS = frozenset({"test_login", "token_login"})
CHECK_PREFIXES = ("confirm:", "drain:")  # a consumer's confirmation, the drain guard: looks only

# every outcome a run can report (rolled_back comes with a failure)
OutcomeName = Literal["unknown", "rotated", "resumed", "converged", "not_due", "converted",
                      "rolled_back", "consumers_refreshed"]
StepStatus = Literal["done", "planned", "skipped", "failed"]
FailpointHook = Callable[[str], None]


class RotationError(PgauthError):
    """A rotation could not go on; the message names the step, store or role at fault."""


class RotationFailed(RotationError):
    """A run that stopped: the message says why, outcome is the report so far (as_dict)."""

    def __init__(self, message: str, outcome: dict):
        super().__init__(message)
        self.outcome = outcome


# what a step can fail with: all of them name the store, role or API at fault
# every error of ours a step may raise: each is rolled back from, none is a traceback
STEP_ERRORS = (PgauthError,)


@dataclass
class Step:
    name: str
    stores: list = field(default_factory=list)
    status: StepStatus = "done"
    seconds: float = 0.0
    detail: str | None = None

    def as_dict(self) -> dict:
        return {"step": self.name, "stores": self.stores, "status": self.status,
                "seconds": round(self.seconds, 3), "detail": self.detail}


@dataclass
class Outcome:
    """What a run did; every field is safe to print (no secret)."""

    strategy: str
    role: str
    outcome: OutcomeName = "unknown"
    login_user: str | None = None  # the user the stores hold after the run
    steps: list = field(default_factory=list)
    versions_before: dict = field(default_factory=dict)
    versions_after: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    promoted: bool = False
    consumers: list = field(default_factory=list)  # one line per consumer (consumer_base)
    consumers_seconds: float | None = None  # from the first refresh to the last confirmation

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "role": self.role, "outcome": self.outcome,
                "login_user": self.login_user, "promoted": self.promoted,
                "consumers": self.consumers, "consumers_seconds": self.consumers_seconds,
                "steps": [step.as_dict() for step in self.steps],
                "versions_before": self.versions_before, "versions_after": self.versions_after,
                "notes": self.notes}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def env_failpoint() -> FailpointHook | None:
    """The harness's kill point, from the environment; None (no hook) when it is not set."""
    point = os.environ.get(FAILPOINT_ENV)
    if not point:
        return None
    sig = signal.SIGSTOP if os.environ.get(FAILPOINT_ACTION_ENV) == "stop" else signal.SIGKILL

    def hook(boundary: str) -> None:
        if boundary == point:
            os.kill(os.getpid(), sig)
    return hook


class Executor:
    """Runs steps: records each in out.steps, times it, only plans it in check mode, and
    calls the failpoint hook at the boundary after a step that succeeded."""

    def __init__(self, out: Outcome, check_mode: bool, failpoint: FailpointHook | None = None):
        self.out, self.check_mode, self.failpoint = out, check_mode, failpoint

    def boundary(self, name: str) -> None:
        """A point between two steps where the harness may kill the run."""
        if self.failpoint is not None:
            self.failpoint(name)

    def run(self, name: str, stores: list, work: Callable, *args, needed: bool = True,
            detail: str | None = None):
        """Run work(*args) as step name (stores: the Store objects it touches); skipped when
        not needed, planned in check mode.  Returns what work returned, else None."""
        step = self.record(Step(name, [store.name for store in stores], detail=detail))
        if not needed:
            step.status = "skipped"
            return None
        if self.check_mode:
            step.status = "planned"
            return None
        started = time.monotonic()
        try:
            result = work(*args)
        except Exception:
            step.status = "failed"
            raise
        finally:
            step.seconds = time.monotonic() - started
        self.boundary(name)
        return result

    def skip(self, name: str, stores: list, detail: str) -> Step:
        return self.record(Step(name, [store.name for store in stores], "skipped",
                                detail=detail))

    def record(self, step: Step) -> Step:
        self.out.steps.append(step)
        return step

    @staticmethod
    def timed(work: Callable, *args) -> float:
        """work(*args)'s seconds, for steps that run in parallel and are recorded after."""
        started = time.monotonic()
        work(*args)
        return time.monotonic() - started


def result_of(outcome: Outcome, check_mode: bool) -> dict:
    """The module's result: the report, and whether a step changed something."""
    result = outcome.as_dict()
    acted = [step for step in outcome.steps
             if step.status in ("done", "planned") and step.name not in CHECK_STEPS
             and not step.name.startswith(CHECK_PREFIXES)]
    result["changed"] = bool(acted)
    result["check_mode"] = check_mode
    return result
