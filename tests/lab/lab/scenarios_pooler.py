"""The lab scenario of the PgBouncer in front of the database (kept apart from scenarios.py
so the pooler's parts stay together)."""
from __future__ import annotations

from urllib.parse import quote

from .pgbouncer import ADMIN_USER, PgBouncer
from .settings import HOST

APP_ROLE, APP_DB = "app_user", "appdb"


def pooler_consumer(seed) -> dict:
    """The pgauth_consumers item of the lab's PgBouncer (the admin password comes from the
    lab's state, as an operator's vars file would hold it)."""
    bouncer = PgBouncer(seed.lab, seed.pg)
    return {"name": "lab-pgbouncer", "type": "pgbouncer", "host": HOST,
            "port": seed.lab.pgbouncer_port, "dbname": APP_DB,
            "auth_file": str(bouncer.auth_file), "sslmode": "verify-full",
            "sslrootcert": str(seed.pg.ca_cert),
            "admin": {"user": ADMIN_USER, "password": seed.state["pgbouncer_admin_password"]}}


def database_verifier(seed, role: str) -> str:
    with seed.pg.admin_cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        return cur.fetchone()[0]


def pooler_auth_stale(seed) -> None:
    """The app connects through PgBouncer; the database got a new password (and every store
    has it), the pooler's auth_file still holds the old verifier."""
    from .scenarios import new_password
    old, new = new_password(), new_password()
    seed.create_role(old)
    bouncer = PgBouncer(seed.lab, seed.pg)
    bouncer.set_user(APP_ROLE, database_verifier(seed, APP_ROLE))
    bouncer.admin("RELOAD", seed.state)
    with seed.pg.admin_cursor() as cur:
        seed.pg.set_password(cur, APP_ROLE, new)
    port = seed.lab.pgbouncer_port
    seed.write_stores(new, port=port, dsn=(
        f"postgresql://{APP_ROLE}:{quote(new, safe='')}@{HOST}:{port}/{APP_DB}"
        f"?sslmode=verify-full&sslrootcert={quote(str(seed.pg.ca_cert), safe='/')}"))
    seed.meta["consumers"] = [pooler_consumer(seed)]
