# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who a password rotation is for, chosen once per run by the strategy option.

single_user: the role itself.  alternating_users: whichever of ROLE and ROLE_clone the
stores do not hold now, so the user the clients hold keeps its password (the clone is made
on first use, see clone.py).  strategy=iam is not a password rotation: rotation_iam.py."""
from __future__ import annotations

import time

from ansible_collections.credops.pgauth.plugins.module_utils.clone import (
    clone_ready,
    ensure_clone,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

CLONE_SUFFIX = "_clone"


def clone_name(role: str) -> str:
    """The second login of alternating_users; it must fit PostgreSQL's 63 bytes."""
    name = role + CLONE_SUFFIX
    if len(name.encode("utf-8")) > 63:
        raise RotationError(f"alternating_users needs a second role {name!r}, longer than the "
                            "63 bytes PostgreSQL allows; shorten the role name")
    return name


class SingleUser:
    name = "single_user"
    # rds_api sets the master user's password: only the role itself can be that user
    allows_rds_api = True

    def __init__(self, params: dict):
        self.role = params["role"]
        self.set_role = params.get("clone_set_role", True)

    def validate(self, stores: list[Store]) -> None:
        """Refuse before anything is read what this strategy cannot do."""
        return None

    def target_user(self, current: Credential | None) -> str:
        """Who gets the new password, given the primary's current credential."""
        return self.role

    def needs_clone(self, user: str) -> bool:
        return False

    def clone_ready(self, cur, user: str) -> bool:
        return clone_ready(cur, self.role, user, self.set_role)

    def ensure_clone(self, cur, user: str) -> None:
        ensure_clone(cur, self.role, user, self.set_role)

    def drain(self, cur, user: str, timeout: float, sleep=time.sleep) -> str | None:
        """single_user: the clients' own user gets the new password; nothing to wait for."""
        return None


class AlternatingUsers(SingleUser):
    name = "alternating_users"
    allows_rds_api = False

    def validate(self, stores: list[Store]) -> None:
        clone_name(self.role)  # fails early when ROLE_clone would not fit 63 bytes
        bare = [store.name for store in stores if store.value_format == "password"]
        if bare:
            raise RotationError("alternating_users switches the user too, and these stores "
                                f"hold a bare password with no user: {', '.join(bare)}")

    def target_user(self, current: Credential | None) -> str:
        active = current.username if current and current.username else self.role
        clone = clone_name(self.role)
        if active not in (self.role, clone):
            raise RotationError(f"the primary store's username is {active!r}, neither "
                                f"{self.role!r} nor {clone!r}")
        return clone if active == self.role else self.role

    def needs_clone(self, user: str) -> bool:
        return user != self.role

    def drain(self, cur, user: str, timeout: float, sleep=time.sleep) -> str | None:
        """The classic outage of alternating users: clients that never re-read the stores
        since the last rotation still log in as the user that is about to get a new password,
        and fail at their next reconnect.  Wait until no session of that user is open (but
        ours), up to timeout seconds; then refuse, naming the clients.  Returns what was
        waited for, for the report."""
        deadline = time.monotonic() + max(float(timeout), 0.0)
        waited = False
        while True:
            cur.execute(_SESSIONS_OF, (user,))
            sessions = cur.fetchall()
            if not sessions:
                return f"waited for the sessions of {user} to end" if waited else None
            if time.monotonic() >= deadline:
                shown = "; ".join(f"{addr or 'local socket'} {app!r} since {started}"
                                  for addr, app, started in sessions[:10])
                more = f" (and {len(sessions) - 10} more)" if len(sessions) > 10 else ""
                raise RotationError(
                    f"{len(sessions)} session(s) of {user!r} are still open after "
                    f"{timeout:g} s: {shown}{more}. They belong to clients that have not "
                    f"re-read the stores since the last rotation; a new password for {user!r} "
                    "would break them at their next connection. Make them re-read the stores "
                    "(restart them), or raise pgauth_drain_timeout; nothing was changed")
            waited = True
            sleep(min(DRAIN_POLL, max(deadline - time.monotonic(), 0.05)))


DRAIN_POLL = 0.5
# the user's sessions other than this run's own connections
_SESSIONS_OF = ("SELECT host(client_addr), application_name, backend_start::text "
                "FROM pg_catalog.pg_stat_activity WHERE usename = %s "
                "AND pid <> pg_backend_pid() ORDER BY backend_start")


def drain_guard(strategy: SingleUser, execute, cur, user: str, params: dict) -> None:
    """The Drain step (rotation_plan.py): alternating_users only, and not in check mode (a
    check-mode run waits for nobody)."""
    if execute.check_mode or strategy.name != AlternatingUsers.name:
        return
    execute.run("drain:" + user, [], strategy.drain, cur, user,
                float(params.get("drain_timeout") or 0))


PASSWORD_STRATEGIES = {strategy.name: strategy for strategy in (SingleUser, AlternatingUsers)}
