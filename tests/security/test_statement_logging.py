"""Item 11 of the security review: a failed ALTER ROLE ... PASSWORD is written to the server
log with its SCRAM verifier (log_min_error_statement, and log_statement=all as on the lab);
a verifier lets anyone who reads the log test password guesses offline."""
from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from labfixtures import connect
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from ansible_collections.credops.pgauth.plugins.module_utils import pg_role
from ansible_collections.credops.pgauth.plugins.module_utils.pg import PgError

ROLE = "sec_logged_app"


def log_since(path: Path, offset: int) -> str:
    with path.open(errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


@pytest.mark.parametrize("fails", [True, False])
def test_a_statement_with_a_verifier_is_not_logged(lab, temp_role, fails):
    temp_role(ROLE)
    server_log = Path(lab["PGAUTH_LAB_PGLOG"])
    conn = connect(lab, lab["PGAUTH_LAB_ADMIN_USER"], lab["PGAUTH_LAB_ADMIN_PASSWORD"])
    conn.autocommit = True
    try:
        verifier = encrypt_password("A-new-password-4242", ROLE, conn, "scram-sha-256")
        # CONNECTION LIMIT -2 is refused by the server after it parsed the whole statement
        tail = sql.SQL(" CONNECTION LIMIT -2") if fails else sql.SQL("")
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(ROLE), sql.Literal(verifier)) + tail
        plan = pg_role.Plan(statements=[(statement, f"ALTER ROLE {ROLE} PASSWORD '********'")])
        offset = server_log.stat().st_size
        if fails:
            with pytest.raises(PgError):
                pg_role.apply(conn.cursor(), plan, f"role {ROLE!r}")
        else:
            pg_role.apply(conn.cursor(), plan, f"role {ROLE!r}")
        conn.cursor().execute("SELECT 1 /* flush */")
        logged = log_since(server_log, offset)
        # the session's logging is back to the server's settings afterwards
        cur = conn.cursor()
        cur.execute("SHOW log_min_error_statement")
        assert cur.fetchone()[0] == "error"
    finally:
        conn.close()
    assert "ALTER ROLE" not in logged or "SCRAM-SHA-256$" not in logged
    assert verifier.split("$", 2)[2] not in logged, "the SCRAM verifier is in the server log"
    if not fails:
        login = psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=lab["PGAUTH_LAB_PGPORT"],
                                 user=ROLE, password="A-new-password-4242", dbname="postgres",
                                 sslmode="verify-full", sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"])
        login.close()
