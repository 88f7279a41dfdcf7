"""OpenBao's database secrets engine against the lab PostgreSQL: a real second rotator.

A static role makes OpenBao own one PostgreSQL role's password: OpenBao sets it as soon as
the static role is written, and again every rotation period.  That is what the
``rotation_conflict`` finding must detect, so the lab runs it for real (the dev server has
``postgresql-database-plugin`` built in; nothing is downloaded).

OpenBao logs in as a PostgreSQL role of its own (CREATEROLE, not superuser: it only has to
ALTER another role's password), over TLS verified against the lab CA.  Its password is
random, held only by OpenBao and never printed.  ``password_authentication=scram-sha-256``
makes OpenBao send ALTER ROLE with a SCRAM verifier rather than the plaintext, which
matters here: the lab logs every statement (``log_statement=all``).

API paths used (the Vault database engine's, which OpenBao keeps):
    POST   sys/mounts/<mount>                 {"type": "database"}
    POST   <mount>/config/<connection>        plugin_name, connection_url, username, ...
    POST   <mount>/static-roles/<name>        db_name, username, rotation_period, ...
    GET    <mount>/static-creds/<name>        the password OpenBao set
    DELETE sys/mounts/<mount>
"""
from __future__ import annotations

import re
import secrets
from urllib.parse import quote

import hvac
from psycopg2 import sql

from .postgres import Postgres
from .services import vault_client
from .settings import HOST, Lab

PLUGIN = "postgresql-database-plugin"
CONNECTION = "lab-postgres"        # the connection's name under <mount>/config/
ADMIN_PREFIX = "pgauth_lab_bao_"   # OpenBao's own PostgreSQL roles, one per mount
ADMIN_COMMENT = "credops.pgauth lab: OpenBao database engine admin (mount {mount})"
# {{password}} is replaced by a SCRAM verifier (password_authentication below), so the
# statement OpenBao sends, which the lab's server logs, carries no plaintext
ROTATION_STATEMENTS = ["ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'"]
DEFAULT_ROTATION_PERIOD = 86400    # a day: no second rotation during a scenario or a test


def admin_role(mount: str) -> str:
    """OpenBao's PostgreSQL login for one mount (per mount, so that a test's throwaway
    mount and a scenario's mount can be disabled independently)."""
    return ADMIN_PREFIX + re.sub(r"[^a-z0-9_]", "_", mount.strip("/").lower())[:40]


def _ensure_admin_role(pg: Postgres, mount: str, managed_role: str) -> tuple[str, str]:
    name = admin_role(mount)
    password = secrets.token_urlsafe(32)  # URL-safe: it goes into OpenBao's connection URL
    with pg.admin_cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        ident = sql.Identifier(name)
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(sql.SQL(verb + " ROLE {} LOGIN CREATEROLE NOSUPERUSER").format(ident))
        pg.set_password(cur, name, password)  # a client-made SCRAM verifier: nothing logged
        cur.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
            ident, sql.Literal(ADMIN_COMMENT.format(mount=mount))))
        cur.execute("SHOW server_version_num")
        if int(cur.fetchone()[0]) >= 160000:
            # PostgreSQL 16+: CREATEROLE alone no longer lets it alter roles it did not make
            cur.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
                sql.Identifier(managed_role), ident))
    return name, password


def enable_database_engine(lab: Lab, pg: Postgres, state: dict, role: str, *,
                           mount: str = "database", static_role: str = "app",
                           rotation_period: int = DEFAULT_ROTATION_PERIOD) -> str:
    """Mount the database engine at mount, connect it to the lab PostgreSQL and make
    static_role manage the existing PostgreSQL role ``role``.  Returns the password OpenBao
    has just set on that role (the caller writes it into the app's stores).

    state (the lab's persisted secrets) is taken like every scenario helper's; OpenBao is
    driven with the lab's dev root token and PostgreSQL over the admin Unix socket, so it
    is not read today.  Safe to run again: it re-keys OpenBao's admin role and rewrites the
    connection and the static role; rewriting an existing static role for the same username
    does not rotate again, so the password returned is then the one set the first time."""
    del state
    mount = mount.strip("/")
    client = vault_client(lab)
    admin, admin_password = _ensure_admin_role(pg, mount, role)
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    existing = mounts.get(f"{mount}/")
    if existing is None:
        client.sys.enable_secrets_engine("database", path=mount,
                                         description="credops.pgauth lab: a second rotator")
    elif existing.get("type") != "database":
        raise RuntimeError(f"OpenBao mount {mount}/ exists and is a {existing.get('type')} "
                           "engine, not database")
    allowed = {static_role}
    try:
        current = client.secrets.database.read_connection(CONNECTION, mount_point=mount)
        allowed.update(current["data"].get("allowed_roles") or [])
    except hvac.exceptions.InvalidPath:
        pass
    # pgx (OpenBao's driver) takes libpq's sslmode/sslrootcert in the URL; {{username}} and
    # {{password}} are filled by OpenBao, so the URL it stores and shows holds no secret
    url = (f"postgresql://{{{{username}}}}:{{{{password}}}}@{HOST}:{lab.pg_port}/postgres"
           f"?sslmode=verify-full&sslrootcert={quote(str(pg.ca_cert), safe='/')}")
    client.secrets.database.configure(
        name=CONNECTION, plugin_name=PLUGIN, mount_point=mount, verify_connection=True,
        allowed_roles=sorted(allowed), connection_url=url, username=admin,
        password=admin_password, password_authentication="scram-sha-256")
    # writing the static role makes OpenBao rotate the role's password right away
    client.secrets.database.create_static_role(
        name=static_role, db_name=CONNECTION, username=role,
        rotation_statements=ROTATION_STATEMENTS, rotation_period=rotation_period,
        mount_point=mount)
    creds = client.secrets.database.get_static_credentials(static_role, mount_point=mount)
    return creds["data"]["password"]


def disable_database_engine(lab: Lab, *, mount: str | None = None) -> list[str]:
    """Undo enable_database_engine: disable the mount (every database-engine mount when
    mount is None, for the lab's reset) and drop OpenBao's admin role(s).  The role a static
    role managed is left as it is.  Returns the mounts disabled; safe to run again.

    Run it before the PostgreSQL reset drops roles, or after: either order leaves nothing,
    but with the mount disabled first OpenBao holds no connection for a dropped role."""
    client = vault_client(lab)
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if mount is None:
        targets = [path.rstrip("/") for path, info in mounts.items()
                   if info.get("type") == "database"]
    else:
        targets = [mount.strip("/")] if f"{mount.strip('/')}/" in mounts else []
    for path in targets:
        client.sys.disable_secrets_engine(path)
    pg = Postgres(lab)
    with pg.admin_cursor() as cur:
        if mount is None:
            cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                        (ADMIN_PREFIX,))
            admins = [name for (name,) in cur.fetchall()]
        else:
            admins = [admin_role(mount)]
        for name in admins:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE usename = %s", (name,))
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    return targets
