# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbouncer consumer: a PgBouncer in front of the database.

With auth_type scram-sha-256 and an auth_file, PgBouncer checks the client's SCRAM proof
against the verifier in its auth_file and then logs in to PostgreSQL with the keys that
exchange gave it (SCRAM pass-through).  That works only when the auth_file holds the very
verifier the database has (same salt, same iterations), so refresh copies the database's
verifier (pg_authid) into the auth_file, never a password, through the safe file writer,
then RELOADs and RECONNECTs the pool (server connections opened with the old secret are
closed once released, so the next ones prove the new one).  With auth_query there is no
file: nothing to write, but the pool is still reconnected and confirmed.

Confirming logs in through the pooler with the new credential and checks, in that very
session, that the server connection behind it was opened after the refresh began.
"""
from __future__ import annotations

import os

from ansible_collections.credops.pgauth.plugins.module_utils import safe_write
from ansible_collections.credops.pgauth.plugins.module_utils.consumer_base import (
    Consumer,
    ConsumerContext,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    first_fatal,
    login_kwargs,
    psycopg2,
    transport_guard,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import fetch_role
from ansible_collections.credops.pgauth.plugins.module_utils.scram import hash_type
from ansible_collections.credops.pgauth.plugins.module_utils.userlist import (
    UserlistError,
    entry_of,
    with_entry,
)

CONFIRM_APPLICATION = "credops.pgauth confirm"
CONNECT_TIMEOUT = 5


class PgBouncerConsumer(Consumer):
    TYPE = "pgbouncer"
    KEYS = frozenset({"auth_file", "host", "port", "dbname", "admin", "admin_db", "sslmode",
                      "sslrootcert", "reconnect"})
    REQUIRED = ("admin",)
    PREPARES = True
    MANUAL = ("copy the role's verifier from pg_authid into the auth_file, RELOAD and "
              "RECONNECT on the admin console, then run rotate again")

    def __init__(self, spec: dict):
        super().__init__(spec)
        admin = spec.get("admin")
        if not isinstance(admin, dict) or not admin.get("user") or not (
                admin.get("password") or admin.get("store")):
            raise self.error("admin is {user, password} or {user, store: <store dict>} (the "
                             "admin console's user, one of admin_users)")
        self.auth_file = spec.get("auth_file")
        self.prepared: tuple | None = None  # (user, verifier) this run's prepare loaded
        if self.auth_file is not None and not os.path.isabs(str(self.auth_file)):
            raise self.error("auth_file must be an absolute path")

    # -- connections --------------------------------------------------------------------
    def endpoint(self) -> dict:
        spec = self.spec
        return {"login_host": spec.get("host") or "127.0.0.1",
                "login_port": int(spec.get("port") or 6432),
                "ssl_mode": spec.get("sslmode") or "prefer",
                "ssl_rootcert": spec.get("sslrootcert"), "connect_timeout": CONNECT_TIMEOUT}

    def where(self) -> str:
        endpoint = self.endpoint()
        return f"{endpoint['login_host']}:{endpoint['login_port']}"

    def _connect(self, params: dict, user: str, password: str | None, **extra):
        kwargs, _warning = transport_guard({**login_kwargs(params, user, password), **extra},
                                           "password")
        try:
            conn = psycopg2.connect(**kwargs)
        except psycopg2.OperationalError as err:
            raise self.error(f"login as {user!r} at {self.where()} failed: "
                             f"{first_fatal(str(err))}") from None
        conn.autocommit = True
        return conn

    def _admin_password(self, ctx: ConsumerContext) -> str:
        admin = self.spec["admin"]
        if admin.get("password"):
            return admin["password"]
        from ansible_collections.credops.pgauth.plugins.module_utils.store import StoreError
        from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
            read_credential,
        )
        try:
            cred = read_credential({"store": admin["store"]}, ctx.params)
        except StoreError as err:
            raise self.error(f"the admin's store: {err}") from None
        if not cred.password:
            raise self.error("the admin's store holds no password")
        ctx.hide(cred.password)
        return cred.password

    def admin(self, ctx: ConsumerContext, *commands: str) -> None:
        params = {**self.endpoint(), "login_db": self.spec.get("admin_db") or "pgbouncer"}
        conn = self._connect(params, self.spec["admin"]["user"], self._admin_password(ctx))
        try:
            with conn.cursor() as cur:
                for command in commands:
                    try:
                        cur.execute(command)
                    except psycopg2.Error as err:
                        raise self.error(f"admin console {command}: "
                                         f"{str(err).strip()}") from None
        finally:
            conn.close()

    # -- the auth_file ------------------------------------------------------------------
    def database_verifier(self, ctx: ConsumerContext) -> str:
        """The verifier the database holds for the user: the one PgBouncer must hold."""
        state = fetch_role(ctx.cur, ctx.user)
        if not state.exists:
            raise self.error(f"role {ctx.user!r} does not exist")
        if not state.authid_readable:
            raise self.error("pg_authid is not readable here (RDS), so the database's "
                             "verifier cannot be copied: use PgBouncer's auth_query, and "
                             "drop auth_file from the consumer")
        if hash_type(state.stored_password) != "scram":
            raise self.error(f"role {ctx.user!r} has no SCRAM-SHA-256 verifier")
        return state.stored_password

    def _read(self, opened: safe_write.OpenedFile) -> str:
        try:
            return opened.read().decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{self.auth_file} is not UTF-8 text") from None

    def file_entry(self, user: str) -> str | None:
        try:
            with safe_write.open_regular(str(self.auth_file)) as opened:
                return entry_of(self._read(opened), user)
        except (OSError, safe_write.UnsafeFileError) as err:
            raise self.error(f"auth_file {self.auth_file}: {err.strerror or err}") from None
        except UserlistError as err:
            raise self.error(f"auth_file {self.auth_file}: {err}") from None

    def write_entry(self, user: str, verifier: str) -> bool:
        """The user's line holds verifier; True when the file changed."""
        try:
            with safe_write.open_regular(str(self.auth_file)) as opened:
                text = self._read(opened)
                new = with_entry(text, user, verifier)
                if new == text:
                    return False
                safe_write.check_owner_kept(opened.stat, opened.path)
                safe_write.replace(opened, new.encode("utf-8"))
                return True
        except (OSError, safe_write.UnsafeFileError) as err:
            raise self.error(f"auth_file {self.auth_file}: "
                             f"{getattr(err, 'strerror', None) or err}") from None
        except UserlistError as err:
            raise self.error(f"auth_file {self.auth_file}: {err}") from None

    # -- the interface ------------------------------------------------------------------
    def prepare(self, ctx: ConsumerContext) -> str | None:
        """Before promote: the auth_file takes the verifier the database holds now, and
        RELOAD.  Without it a client that reads the promoted stores meets the old verifier
        until refresh: for alternating_users the user that gets the new password is one no
        client uses yet, so writing it early breaks nobody and the pooler never fails a
        login.  No RECONNECT here (that is refresh's, after promote).  A RELOAD cancels the
        server logins under way when the server connections use TLS, and PgBouncer then
        waits server_login_retry before the next one: refresh reloads only when prepare did
        not load the same verifier, so a rotation costs one RELOAD."""
        if not self.auth_file:
            return None
        verifier = self.database_verifier(ctx)
        changed = self.write_entry(ctx.user, verifier)
        self.admin(ctx, "RELOAD")
        self.prepared = (ctx.user, verifier)
        return (f"auth_file: {ctx.user}'s verifier "
                + ("written" if changed else "already the database's") + ", RELOAD")

    def refresh(self, ctx: ConsumerContext) -> str:
        done = []
        reload = True
        if self.auth_file:
            verifier = self.database_verifier(ctx)
            changed = self.write_entry(ctx.user, verifier)
            done.append(f"auth_file: {ctx.user}'s verifier "
                        + ("written" if changed else "already the database's"))
            # this run's prepare loaded that very verifier: a second RELOAD would only
            # cancel the server logins under way again (see prepare)
            reload = changed or self.prepared != (ctx.user, verifier)
        else:
            done.append("auth_query: nothing to write")
        commands = ["RELOAD"] if reload else []
        if self.spec.get("reconnect", True):
            dbname = self.spec.get("dbname") or ctx.params.get("dbname")
            commands.append(f'RECONNECT "{dbname}"' if dbname else "RECONNECT")
        if commands:
            self.admin(ctx, *commands)
        return "; ".join([*done, ", ".join(commands) or "no RELOAD: prepare loaded it"])

    def confirm_own(self, ctx: ConsumerContext) -> str:
        cred = ctx.credential
        if cred is None or not cred.password:
            raise self.error("no credential to log in through the pooler with")
        dbname = self.spec.get("dbname") or ctx.params.get("dbname") or cred.dbname
        params = {**self.endpoint(), "login_db": dbname}
        conn = self._connect(params, ctx.user, cred.password,
                             application_name=CONFIRM_APPLICATION)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
            # the admin's view: a role sees no backend_start of a session whose user it is
            # not (the clone of alternating_users acts as the role)
            ctx.cur.execute("SELECT backend_start >= COALESCE(%s, '-infinity'::timestamptz) "
                            "FROM pg_catalog.pg_stat_activity WHERE pid = %s", (ctx.since, pid))
            row = ctx.cur.fetchone()
        finally:
            conn.close()
        if not row or not row[0]:
            raise self.error("the pooler still uses a server connection opened before the "
                             "switch (RECONNECT closes them once released)")
        return f"{ctx.user} logs in through {self.where()} on a new server connection"

    def left_behind(self, ctx: ConsumerContext) -> bool:
        if self.auth_file and self.file_entry(ctx.user) != self.database_verifier(ctx):
            return True
        return super().left_behind(ctx)
