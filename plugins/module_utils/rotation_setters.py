# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the database gets a password (rotate_via): ALTER ROLE with a client-made SCRAM
verifier (sql), or the RDS API for the master user (rds_api).  Chosen once per run; each
remembers what undoes its change, for the rollback."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg import PgError, psycopg2
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    Plan,
    apply,
    check_can_alter,
    fetch_role,
    plan_present,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import restore_source
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_rds import (
    set_master_password,
)

if psycopg2 is not None:
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password

LoginParams = Callable[[Credential], dict]


@dataclass
class Undo:
    """Set once the database changed: database_set, and the old stored verifier if known."""
    database_set: bool = False
    stored: str | None = None


class SqlSetter:
    name = "sql"

    def __init__(self, params: dict, cur, login_params: LoginParams):
        self.params, self.cur, self.login_params = params, cur, login_params
        self.undo = Undo()

    def preflight(self, role: str) -> None:
        """What would fail at set_database fails before a secret is staged."""
        check_can_alter(self.cur, role)

    def set(self, user: str, password: str) -> None:
        state = fetch_role(self.cur, user)
        if not state.exists:
            raise RotationError(f"role {user!r} does not exist; create it first "
                                "(credops.pgauth.pg_role)")
        plan = plan_present(self.cur, state, {
            "password": password, "valid_until": self.params.get("valid_until"),
            **self.login_params(Credential(username=user, password=password))})
        if plan.statements:
            apply(self.cur, plan, f"role {user!r}")
            self.undo = Undo(True, state.stored_password if state.authid_readable else None)

    def restore(self, user: str, stored: str | None, old_password: str | None,
                old_user: str | None) -> str:
        """Put the old password back; returns how, for the report."""
        source = restore_source(user, stored, old_password, old_user)
        if source == "verifier":
            secret, how = sql.Literal(stored), "the previous stored verifier"
        elif source == "store":
            secret = sql.Literal(encrypt_password(old_password, user, self.cur.connection,
                                                  "scram-sha-256"))
            how = "the previous password from the store"
        else:
            raise RotationError("the previous password is unknown (pg_authid is not readable "
                                "and no store holds it), so it cannot be put back")
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), secret)
        restore = Plan(statements=[(statement, f"ALTER ROLE {user} PASSWORD '********'")])
        try:
            apply(self.cur, restore, f"role {user!r}")
        except PgError as err:
            raise PgError(f"restoring the old password failed: {err}") from None
        return how


class RdsApiSetter:
    """For an admin that may not ALTER the master role: RDS changes it."""
    name = "rds_api"

    def __init__(self, params: dict, cur, login_params: LoginParams):
        self.params, self.login_params = params, login_params
        self.undo = Undo()

    def preflight(self, role: str) -> None:
        return None

    def set(self, user: str, password: str) -> None:
        # RDS applies it even if the wait for the login fails: undo is needed from then on
        set_master_password(self.params, user, password, self.login_params,
                            on_modified=lambda: setattr(self, "undo", Undo(True, None)))

    def restore(self, user: str, stored: str | None, old_password: str | None,
                old_user: str | None) -> str:
        if not old_password or old_user != user:
            raise RotationError("the previous master password is unknown, so it cannot be "
                                "put back")
        set_master_password(self.params, user, old_password, self.login_params)
        return "the previous password, through the RDS API"


class RdsManagedSetter:
    """rotate_via rds_managed: RDS makes and sets the password (rotation_rds); this run never
    sets one, so there is nothing of its own to undo."""
    name = "rds_managed"

    def __init__(self, params: dict, cur, login_params: LoginParams):
        self.undo = Undo()

    def preflight(self, role: str) -> None:
        return None

    def set(self, user: str, password: str) -> None:
        raise RotationError("with rotate_via rds_managed, RDS sets the master password")

    def restore(self, user: str, stored: str | None, old_password: str | None,
                old_user: str | None) -> str:
        raise RotationError("with rotate_via rds_managed, RDS owns the master password")


SETTERS = {setter.name: setter for setter in (SqlSetter, RdsApiSetter, RdsManagedSetter)}


def password_setter(params: dict, cur,
                    login_params: LoginParams) -> SqlSetter | RdsApiSetter | RdsManagedSetter:
    return SETTERS[params.get("rotate_via") or "sql"](params, cur, login_params)
