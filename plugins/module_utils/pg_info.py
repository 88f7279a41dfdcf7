# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only facts about a role and its server, gathered over one connection."""
from __future__ import annotations

# the one pg_hba.conf redaction, the log scan's too (hba_redact, so that it needs no psycopg2)
from ansible_collections.credops.pgauth.plugins.module_utils.hba_redact import redact_hba_options
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import fetch_role

IAM_GROUP = "rds_iam"


def server_facts(cur) -> dict:
    cur.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
        "  current_setting('password_encryption'), current_setting('ssl'), "
        "  current_setting('max_connections')::int, "
        "  current_setting('superuser_reserved_connections')::int "
        "  + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int, "
        "  (SELECT count(*) FROM pg_catalog.pg_stat_activity "
        "   WHERE backend_type = 'client backend'), "
        "  EXISTS (SELECT 1 FROM pg_catalog.pg_roles "
        "          WHERE rolname IN ('rds_superuser', 'rdsadmin')), "
        "  EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s), "
        "  current_user, "
        "  (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), "
        "  has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE')",
        (IAM_GROUP,))
    (version, version_num, encryption, ssl, max_conn, reserved, in_use, rds_like,
     has_iam_group, user, is_super, hba_readable) = cur.fetchone()
    return {
        "version": version, "version_num": version_num, "password_encryption": encryption,
        "ssl": ssl == "on", "max_connections": max_conn, "reserved_connections": reserved,
        "connections": in_use, "connections_by_user": connections_by_user(cur),
        "rds_like": rds_like, "has_rds_iam_role": has_iam_group, "login_user": user,
        "login_user_is_superuser": is_super, "hba_readable": bool(hba_readable and is_super),
    }


def connections_by_user(cur, limit: int = 5) -> list[dict]:
    """Who holds the client connections, most first: when the slots run out, the first row is
    usually the leak."""
    cur.execute(
        "SELECT usename, count(*) FROM pg_catalog.pg_stat_activity "
        "WHERE backend_type = 'client backend' GROUP BY usename ORDER BY 2 DESC, 1 LIMIT %s",
        (limit,))
    return [{"user": user, "connections": count} for user, count in cur.fetchall()]


def role_facts(cur, name: str) -> dict:
    state = fetch_role(cur, name)
    facts = state.facts()
    facts.update(expired=None, connections=0, password_set=None, member_of_all=[],
                 rds_iam_member=False)
    if not state.exists:
        return facts
    cur.execute(
        "SELECT rolvaliduntil IS NOT NULL AND rolvaliduntil < now(), "
        "  (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = %s) "
        "FROM pg_catalog.pg_roles WHERE rolname = %s", (name, name))
    facts["expired"], facts["connections"] = cur.fetchone()
    facts["member_of_all"] = member_of_all(cur, name)
    facts["rds_iam_member"] = IAM_GROUP in facts["member_of_all"]
    if facts["password_hash"] != "unknown":
        facts["password_set"] = facts["password_hash"] != "none"
    return facts


def sessions(cur, name: str) -> list[dict]:
    cur.execute(
        "SELECT a.pid, a.datname, host(a.client_addr), a.application_name, a.state, "
        "  a.backend_start::text, round(extract(epoch FROM now() - a.backend_start))::int, "
        "  s.ssl "
        "FROM pg_catalog.pg_stat_activity a "
        "LEFT JOIN pg_catalog.pg_stat_ssl s ON s.pid = a.pid "
        "WHERE a.usename = %s AND a.pid <> pg_backend_pid() ORDER BY a.backend_start", (name,))
    keys = ("pid", "database", "client_addr", "application_name", "state", "backend_start",
            "age_seconds", "ssl")
    return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def hba_rules(cur, name: str, groups: list[str]) -> list[dict]:
    """pg_hba.conf rows whose user column could match the role (superuser only)."""
    cur.execute(
        "SELECT line_number, type, database, user_name, address, netmask, auth_method, "
        "  options, error FROM pg_catalog.pg_hba_file_rules ORDER BY line_number")
    keys = ("line_number", "type", "database", "user_name", "address", "netmask", "auth_method",
            "options", "error")
    wanted = {"all", name, *(f"+{group}" for group in groups)}
    rows = []
    for row in cur.fetchall():
        rule = dict(zip(keys, row, strict=True))
        rule["options"] = redact_hba_options(rule["options"])
        if rule["user_name"] is None or wanted & set(rule["user_name"]):
            rows.append(rule)
    return rows


def member_of_all(cur, name: str) -> list[str]:
    """Every group the role belongs to, directly or through other groups."""
    cur.execute(
        "SELECT g.rolname FROM pg_catalog.pg_roles g "
        "WHERE g.rolname <> %s AND pg_has_role(%s, g.oid, 'MEMBER') ORDER BY 1", (name, name))
    return [row[0] for row in cur.fetchall()]


def gather(cur, name: str) -> dict:
    server = server_facts(cur)
    role = role_facts(cur, name)
    result = {"server": server, "role": role, "sessions": [], "hba_rules": None}
    if role["exists"]:
        result["sessions"] = sessions(cur, name)
        if server["hba_readable"]:
            result["hba_rules"] = hba_rules(cur, name, role["member_of_all"])
    return result
