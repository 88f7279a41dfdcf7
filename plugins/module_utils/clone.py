# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The second login of the alternating_users strategy.

ROLE_clone is a member of ROLE, so it has every privilege ROLE has, including those of an
owner on ROLE's objects, and it follows later grants to ROLE with no copying.  With
set_role, its sessions start with SET ROLE ROLE, so tables it creates belong to ROLE, not
to the clone: the ownership split that bites copies-of-grants designs does not happen.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.pg import PgError, psycopg2
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    is_member,
    role_exists,
)

if psycopg2 is not None:
    from psycopg2 import sql


def _role_setting(cur, clone: str) -> str | None:
    cur.execute("SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s "
                "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
                "WHERE r.rolname = %s AND s.setdatabase = 0", (clone,))
    row = cur.fetchone()
    for item in (row[0] if row and row[0] else []):
        key, _sep, value = item.partition("=")
        if key == "role":
            return value
    return None


def clone_ready(cur, role: str, clone: str, set_role: bool = True) -> bool:
    return (role_exists(cur, clone) and is_member(cur, clone, role)
            and (not set_role or _role_setting(cur, clone) == role))


def ensure_clone(cur, role: str, clone: str, set_role: bool = True) -> None:
    """CREATE the clone when missing, make it a member of role, and (set_role) make its
    sessions act as role."""
    if not role_exists(cur, role):
        raise PgError(f"role {role!r} does not exist: alternating_users clones an existing role")
    statements = []
    if not role_exists(cur, clone):
        statements.append(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(clone)))
    if not is_member(cur, clone, role):
        statements.append(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role),
                                                           sql.Identifier(clone)))
    if set_role and _role_setting(cur, clone) != role:
        statements.append(sql.SQL("ALTER ROLE {} SET role = {}").format(
            sql.Identifier(clone), sql.Literal(role)))
    for statement in statements:
        text = statement.as_string(cur)
        try:
            cur.execute(statement)
        except psycopg2.Error as err:
            raise PgError(f"alternating_users: {text} failed: "
                          f"{str(err).strip().splitlines()[0]}") from None
