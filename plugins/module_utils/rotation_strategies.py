# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who a password rotation is for, chosen once per run by the strategy option.

single_user: the role itself.  alternating_users: whichever of ROLE and ROLE_clone the
stores do not hold now, so the user the clients hold keeps its password (the clone is made
on first use, see clone.py).  strategy=iam is not a password rotation: rotation_iam.py."""
from __future__ import annotations

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


PASSWORD_STRATEGIES = {strategy.name: strategy for strategy in (SingleUser, AlternatingUsers)}
