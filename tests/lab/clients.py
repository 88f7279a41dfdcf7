"""Log in to the lab with the real client library of each DSN dialect, using the connection
string exactly as a store holds it: SQLAlchemy (with asyncpg, psycopg2, psycopg), the
PostgreSQL JDBC driver (a one-file Java program, the URL on its stdin, never in argv or the
environment) and libpq (psycopg2) for libpq URLs and keyword/value strings.

Each returns the user the server says it logged in as (session_user), or None when the
login failed; the error's kind is kept in ``last_error`` (never its text: a driver may quote
the URL)."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
last_error: dict = {}

_JAVA = r"""
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;

public class Login {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String url = in.readLine();
        try (Connection conn = DriverManager.getConnection(url)) {
            ResultSet rs = conn.createStatement().executeQuery("SELECT session_user");
            rs.next();
            System.out.println(rs.getString(1));
        } catch (SQLException e) {
            // the SQLSTATE only: the message may quote the URL
            System.out.println("SQLSTATE " + e.getSQLState());
            System.exit(1);
        }
    }
}
"""


def login_with_jdbc(url: str, timeout: float = 60) -> str | None:
    """The PostgreSQL JDBC driver's login with url; the user logged in as, or None."""
    java = shutil.which("java")
    if not java or not JDBC_JAR.exists():
        raise RuntimeError("the JDBC client needs java and libpostgresql-jdbc-java")
    with tempfile.TemporaryDirectory(prefix="pgauth-jdbc-") as work:
        source = Path(work) / "Login.java"
        source.write_text(_JAVA)
        done = subprocess.run([java, "-cp", str(JDBC_JAR), str(source)], input=url + "\n",
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env={"PATH": "/usr/bin:/bin", "HOME": work})
    last_error.clear()
    if done.returncode != 0:
        last_error.update(client="jdbc", error=done.stdout.strip()[-200:] or "java failed",
                          stderr_lines=len(done.stderr.splitlines()))
        return None
    last_error.update(client="jdbc", error=None)
    return done.stdout.strip()


def login_with_sqlalchemy(url: str) -> str | None:
    """SQLAlchemy's login with url (its driver says which DBAPI): the user, or None."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    # session_user: the login role (a clone's sessions may SET ROLE to the base role)
    query = text("SELECT session_user")
    if make_url(url).get_driver_name() == "asyncpg":
        from sqlalchemy.ext.asyncio import create_async_engine

        async def run() -> str:
            engine = create_async_engine(url, poolclass=_null_pool())
            try:
                async with engine.connect() as conn:
                    return (await conn.execute(query)).scalar()
            finally:
                await engine.dispose()
        return _kept(lambda: asyncio.run(run()), "sqlalchemy+asyncpg")
    engine = create_engine(url, poolclass=_null_pool())

    def once() -> str:
        try:
            with engine.connect() as conn:
                return conn.execute(query).scalar()
        finally:
            engine.dispose()
    return _kept(once, f"sqlalchemy+{make_url(url).get_driver_name()}")


def login_with_libpq(dsn: str) -> str | None:
    """libpq's login (psycopg2) with a libpq URL or keyword/value string: the user, or None."""
    import psycopg2

    def once() -> str:
        conn = psycopg2.connect(dsn, connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT session_user")
                return cur.fetchone()[0]
        finally:
            conn.close()
    return _kept(once, "libpq")


def login_as_client(dialect: str, dsn: str) -> str | None:
    """The login of the client that reads this dialect."""
    if dialect == "jdbc":
        return login_with_jdbc(dsn)
    if dialect.startswith("sqlalchemy"):
        return login_with_sqlalchemy(dsn)
    return login_with_libpq(dsn)


def _null_pool():
    from sqlalchemy.pool import NullPool
    return NullPool


def _kept(call, client: str) -> str | None:
    last_error.clear()
    try:
        user = call()
    except Exception as err:  # noqa: BLE001 - any driver error is a failed login here
        last_error.update(client=client, error=type(err).__name__)
        return None
    last_error.update(client=client, error=None)
    return user
