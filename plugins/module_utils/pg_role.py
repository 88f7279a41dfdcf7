# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Login roles: read their state, plan the DDL that reaches a desired state, apply it.

Passwords reach the server only as SCRAM-SHA-256 verifiers made on the client,
so neither the wire (beyond TLS) nor the server log (log_statement=all) ever
holds a plaintext password; where the session may, statement logging is off while a
verifier is sent, so the log does not hold the verifier either.  Every statement is built
with psycopg2.sql.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    login_kwargs,
    psycopg2,
    try_login,
)
from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    hash_type,
    verify_md5,
    verify_password,
)

if psycopg2 is not None:
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password

NAMEDATALEN = 64  # PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes
REDACTED = "'********'"


def check_role_name(name: str) -> None:
    """Refuse names PostgreSQL would silently truncate or cannot store."""
    if not name:
        raise PgError("role name is empty")
    if "\x00" in name:
        raise PgError("role name contains a NUL character")
    size = len(name.encode("utf-8"))
    if size >= NAMEDATALEN:
        raise PgError(f"role name is {size} bytes; PostgreSQL keeps only {NAMEDATALEN - 1} "
                      "and would truncate it to a different name")


def check_password(password: str) -> None:
    if "\x00" in password:
        raise PgError("password contains a NUL character, which PostgreSQL cannot store")
    if password == "":
        raise PgError("password is empty; use state=present without password to keep it")


@dataclass
class RoleState:
    name: str
    exists: bool = False
    can_login: bool | None = None
    valid_until: str | None = None  # text as the server prints it in UTC; None = no limit
    conn_limit: int | None = None
    # None when pg_authid is not readable by the admin (RDS, CREATEROLE-only admins)
    stored_password: str | None = None
    authid_readable: bool = False
    memberships: list[str] = field(default_factory=list)

    @property
    def password_kind(self) -> str:
        return hash_type(self.stored_password) if self.authid_readable else "unknown"

    def facts(self) -> dict:
        return {
            "name": self.name,
            "exists": self.exists,
            "can_login": self.can_login,
            "valid_until": self.valid_until,
            "conn_limit": self.conn_limit,
            "password_hash": self.password_kind if self.exists else None,
            "memberships": sorted(self.memberships),
        }


def authid_readable(cur) -> bool:
    cur.execute("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')")
    return bool(cur.fetchone()[0])


def fetch_role(cur, name: str) -> RoleState:
    state = RoleState(name=name, authid_readable=authid_readable(cur))
    cur.execute(
        "SELECT r.rolcanlogin, r.rolvaliduntil::text, r.rolconnlimit, "
        "  ARRAY(SELECT g.rolname FROM pg_catalog.pg_auth_members m "
        "        JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) "
        "FROM pg_catalog.pg_roles r WHERE r.rolname = %s", (name,))
    row = cur.fetchone()
    if row is None:
        return state
    state.exists = True
    state.can_login, state.valid_until, state.conn_limit, state.memberships = row
    if state.valid_until == "infinity":
        state.valid_until = None
    if state.authid_readable:
        cur.execute("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (name,))
        state.stored_password = cur.fetchone()[0]
    return state


def normalize_valid_until(cur, value: str | None) -> str | None:
    """The server's own reading of a timestamp (UTC text); None for 'infinity'."""
    if value is None:
        return None
    try:
        cur.execute("SELECT %s::timestamptz::text", (value,))
    except psycopg2.DataError as err:
        raise PgError(f"valid_until {value!r} is not a timestamp PostgreSQL understands: "
                      f"{str(err).strip().splitlines()[0]}") from None
    text = cur.fetchone()[0]
    return None if text == "infinity" else text


def check_can_alter(cur, role: str) -> None:
    """Refuse up front what ALTER ROLE would refuse later, once secrets are staged: a
    connected user that is neither superuser nor CREATEROLE (nor the role itself, nor
    holding ADMIN OPTION on it) cannot change the role's password, and only a superuser can
    change a superuser's.  PostgreSQL 16's stricter CREATEROLE rule is left to the server."""
    cur.execute("""
        SELECT me.rolname, me.rolsuper, me.rolcreaterole, target.rolsuper,
               pg_catalog.pg_has_role(me.oid, target.oid, 'MEMBER WITH ADMIN OPTION')
        FROM pg_catalog.pg_roles me, pg_catalog.pg_roles target
        WHERE me.rolname = current_user AND target.rolname = %s""", (role,))
    row = cur.fetchone()
    if row is None:
        return
    admin, admin_super, createrole, target_super, admin_option = row
    if admin_super or admin == role:
        return
    if target_super:
        raise PgError(f"{admin!r} is not a superuser, so it cannot change the password of "
                      f"superuser {role!r}")
    if not (createrole or admin_option):
        raise PgError(f"{admin!r} has neither CREATEROLE nor ADMIN OPTION on {role!r}, so it "
                      "cannot change that role's password: connect as the RDS master user or "
                      "a role with CREATEROLE")


@dataclass
class PasswordCheck:
    needs_change: bool
    how: str  # how we know: pg_authid, login, new role, on_create, ...
    warning: str | None = None


def check_password_current(state: RoleState, password: str, params: dict) -> PasswordCheck:
    """Does the role already have this password?  Never reports a change it cannot see."""
    if state.authid_readable:
        kind = hash_type(state.stored_password)
        if kind == "scram":
            return PasswordCheck(not verify_password(password, state.stored_password), "pg_authid")
        if kind == "md5":
            same = verify_md5(password, state.name, state.stored_password)
            return PasswordCheck(True, "pg_authid", "the stored password is an md5 hash"
                                 + ("; re-storing the same password as SCRAM-SHA-256" if same
                                    else ""))
        return PasswordCheck(True, "pg_authid")
    # pg_authid is hidden (RDS): ask the server by logging in with the candidate.
    result = try_login(login_kwargs(params, state.name, password))
    if result.authenticated:
        return PasswordCheck(False, "login")
    if result.category == "store_password_mismatch":
        return PasswordCheck(True, "login")
    return PasswordCheck(True, "unverifiable",
                         f"could not verify the current password by logging in as "
                         f"{state.name!r} ({result.category}); setting it")


@dataclass
class Plan:
    statements: list = field(default_factory=list)  # (composed SQL, redacted text)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    password_changed: bool = False
    password_check: str | None = None  # how the current password was compared

    @property
    def changed(self) -> bool:
        return bool(self.statements)


def _public_view(state: RoleState) -> dict:
    if not state.exists:
        return {"exists": False}
    return {"exists": True, "login": state.can_login,
            "valid_until": state.valid_until or "infinity",
            "conn_limit": state.conn_limit,
            "password": "(unreadable)" if not state.authid_readable
            else ("(none)" if state.stored_password is None else "(set)")}


def plan_present(cur, state: RoleState, params: dict) -> Plan:
    plan = Plan(before=_public_view(state))
    options, redacted = [], []
    name = sql.Identifier(state.name)

    login = params.get("login")
    if login is None and not state.exists:
        login = True  # this module manages login roles
    if login is not None and login != state.can_login:
        options.append(sql.SQL("LOGIN" if login else "NOLOGIN"))
        redacted.append("LOGIN" if login else "NOLOGIN")

    password = params.get("password")
    if password is not None:
        check_password(password)
        if not state.exists:
            check = PasswordCheck(True, "new role")
        elif params.get("update_password") == "on_create":
            check = PasswordCheck(False, "on_create")
        else:
            check = check_password_current(state, password, params)
        plan.password_check = check.how
        if check.warning:
            plan.warnings.append(check.warning)
        if check.needs_change:
            verifier = encrypt_password(password, state.name, cur.connection, "scram-sha-256")
            options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier)))
            redacted.append(f"PASSWORD {REDACTED}")
            plan.password_changed = True

    wanted_until = None
    if params.get("valid_until") is not None:
        wanted_until = normalize_valid_until(cur, params["valid_until"]) or "infinity"
        if wanted_until != (state.valid_until or "infinity") or not state.exists:
            options.append(sql.SQL("VALID UNTIL {}").format(sql.Literal(wanted_until)))
            redacted.append(f"VALID UNTIL '{wanted_until}'")

    conn_limit = params.get("conn_limit")
    if conn_limit is not None:
        if conn_limit < -1:
            raise PgError(f"conn_limit {conn_limit} is invalid: use -1 (no limit) or more")
        if conn_limit != state.conn_limit:
            options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(conn_limit)))
            redacted.append(f"CONNECTION LIMIT {conn_limit}")

    if not state.exists or options:
        verb = "ALTER ROLE" if state.exists else "CREATE ROLE"
        statement = sql.SQL(verb + " {} WITH {}").format(name, sql.SQL(" ").join(options)) \
            if options else sql.SQL(verb + " {}").format(name)
        text = f"{verb} {name.as_string(cur)}" + (" WITH " + " ".join(redacted) if redacted else "")
        plan.statements.append((statement, text))

    plan.after = dict(plan.before) if state.exists else {
        "exists": True, "login": login, "valid_until": "infinity", "conn_limit": -1,
        "password": "(none)"}
    plan.after["exists"] = True
    if login is not None:
        plan.after["login"] = login
    if wanted_until is not None:
        plan.after["valid_until"] = wanted_until
    if conn_limit is not None:
        plan.after["conn_limit"] = conn_limit
    if plan.password_changed:
        plan.after["password"] = "(changed)"
    return plan


def plan_absent(cur, state: RoleState) -> Plan:
    plan = Plan(before=_public_view(state), after={"exists": False})
    if state.exists:
        ident = sql.Identifier(state.name)
        plan.statements.append((sql.SQL("DROP ROLE {}").format(ident),
                                f"DROP ROLE {ident.as_string(cur)}"))
    return plan


# The settings under which the server writes a statement's text to its log: a statement
# that carries a SCRAM verifier (an offline guessing target) is run with them off.
QUIET_STATEMENT_LOGGING = (("log_statement", "none"), ("log_min_error_statement", "panic"),
                           ("log_min_duration_statement", "-1"),
                           ("log_min_duration_sample", "-1"))


def quiet_statement_logging(cur) -> list[str]:
    """Turns statement logging off for this session where it may (a superuser, or a role
    granted SET on these parameters; not the RDS master user).  Returns what it turned off,
    for restore_statement_logging; an empty list when it could change nothing."""
    quieted = []
    for name, value in QUIET_STATEMENT_LOGGING:
        try:
            cur.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            quieted.append(name)
        except psycopg2.Error:
            # permission denied, or a server without this setting: the others still count
            if cur.connection.get_transaction_status() != 0:
                cur.connection.rollback()
    return quieted


def restore_statement_logging(cur, quieted: list[str]) -> None:
    for name in quieted:
        cur.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))


def apply(cur, plan: Plan, target: str) -> None:
    carries_verifier = any("PASSWORD" in text for _statement, text in plan.statements)
    quieted = quiet_statement_logging(cur) if carries_verifier else []
    try:
        for statement, text in plan.statements:
            try:
                cur.execute(statement)
            except psycopg2.Error as err:
                detail = getattr(getattr(err, "diag", None), "message_detail", None)
                logged = ("; the server may have logged the statement with the password's "
                          "SCRAM verifier (this session may not turn log_min_error_statement "
                          "off)" if carries_verifier and "log_min_error_statement"
                          not in quieted else "")
                raise PgError(f"{target}: {text.split(' WITH ')[0]} failed: "
                              f"{str(err).strip().splitlines()[0]}"
                              + (f" ({detail})" if detail else "") + logged) from None
    finally:
        if quieted:
            restore_statement_logging(cur, quieted)


def role_exists(cur, name: str) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s)", (name,))
    return bool(cur.fetchone()[0])


def is_member(cur, role: str, group: str) -> bool:
    """Direct membership (what GRANT/REVOKE change)."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m "
                "JOIN pg_catalog.pg_roles g ON g.oid = m.roleid "
                "JOIN pg_catalog.pg_roles r ON r.oid = m.member "
                "WHERE g.rolname = %s AND r.rolname = %s)", (group, role))
    return bool(cur.fetchone()[0])


def plan_membership(cur, role: str, group: str, member: bool) -> Plan:
    current = is_member(cur, role, group)
    plan = Plan(before={"member_of_" + group: current}, after={"member_of_" + group: member})
    if current != member:
        template = "GRANT {} TO {}" if member else "REVOKE {} FROM {}"
        statement = sql.SQL(template).format(sql.Identifier(group), sql.Identifier(role))
        plan.statements.append((statement, statement.as_string(cur)))
    return plan
