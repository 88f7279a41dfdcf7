"""The lab's PostgreSQL server: TLS, an RDS-shaped pg_hba.conf, PAM for IAM tokens."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from .procs import pid_alive
from .settings import HOST, REGION, Lab

PG_OS_USER = "postgres"
ADMIN_USER = "postgres"
VERIFIER = Path(__file__).resolve().parent.parent / "rds_iam_verifier.py"
SYSTEM_ROLES = ("postgres", "rds_iam", "rds_superuser")


def is_root() -> bool:
    return os.geteuid() == 0


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                        key=lambda p: int(Path(p).parts[-3]))
    if not candidates and is_root() and shutil.which("apt-get"):
        print("labctl: PostgreSQL server binaries missing; installing Debian's postgresql")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "postgresql", "openssl"], check=True, env=env)
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                            key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                           "(install Debian's postgresql package)")
    return Path(candidates[-1]).parent


class Postgres:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.root = lab.pg_dir
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.tls = self.root / "tls"
        self.logfile = self.root / "postgresql.log"
        self.iam_log = self.root / "iam.log"
        self.iam_config = self.root / "iam.json"
        self.verifier = self.root / "rds_iam_verifier.py"
        self.pam_file = Path("/etc/pam.d") / lab.pam_service

    # -- helpers -----------------------------------------------------------
    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def iam_enabled(self) -> bool:
        return self.pam_file.exists()

    def _as_pg(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        if is_root():
            argv = ["runuser", "-u", PG_OS_USER, "--", *argv]
        return subprocess.run(argv, check=True, **kw)

    def _chown(self, *paths: Path) -> None:
        if not is_root():
            return
        pw = pwd.getpwnam(PG_OS_USER)
        for path in paths:
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> bool:
        return self.postmaster_pid() is not None

    @contextlib.contextmanager
    def admin_cursor(self, dbname: str = "postgres"):
        """An autocommit superuser cursor over the Unix socket (local trust): no password."""
        conn = psycopg2.connect(host=str(self.sock), port=self.lab.pg_port, user=ADMIN_USER,
                                dbname=dbname, application_name="labctl")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    # -- lifecycle ---------------------------------------------------------
    def up(self, state: dict) -> None:
        bindir = find_bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bindir, state["admin_password"])
        self._write_tls()
        self._write_conf()
        self.write_hba()
        self._write_iam(state)
        if not self.running():
            self._start(bindir)
        self._bootstrap_sql()

    def _start(self, bindir: Path, attempts: int = 6) -> None:
        """pg_ctl start; again when the port was taken meanwhile.  The lab's ports lie in
        Linux's ephemeral range, so until labctl has reserved them (root only) any outgoing
        connection on the machine can hold one for a moment: the postmaster then logs
        'could not bind' and exits.  Any other failure is raised with the log's last lines,
        which pg_ctl only points at."""
        for attempt in range(attempts):
            logged = self.logfile.stat().st_size if self.logfile.exists() else 0
            try:
                self._as_pg([str(bindir / "pg_ctl"), "-D", str(self.data), "-l",
                             str(self.logfile), "-w", "-t", "60", "-s", "start"],
                            capture_output=True, text=True)
                return
            except subprocess.CalledProcessError as exc:
                tail = self._log_since(logged)
                if "could not bind" not in tail or attempt == attempts - 1:
                    raise RuntimeError(f"PostgreSQL would not start on port {self.lab.pg_port}: "
                                       f"{(exc.stderr or '').strip()}\n{tail[-2000:]}") from None
            time.sleep(0.5 + attempt)

    def _log_since(self, offset: int) -> str:
        try:
            with self.logfile.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def down(self) -> None:
        if self.running():
            self._as_pg([str(find_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                         "-w", "-t", "30", "-s", "stop"])

    def restart(self) -> None:
        """A fast restart (every session is cut), as a failover or a crash-restart would."""
        self.down()
        self._start(find_bindir())

    def _initdb(self, bindir: Path, admin_password: str) -> None:
        pwfile = self.root / ".pwfile"
        pwfile.write_text(admin_password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._as_pg([str(bindir / "initdb"), "-D", str(self.data), "-U", ADMIN_USER,
                         f"--pwfile={pwfile}", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                         "--no-sync", "--no-instructions"], capture_output=True)
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_tls(self) -> None:
        if (self.tls / "server.crt").exists():
            return
        self.tls.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.tls)

        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
                "-subj", "/CN=credops.pgauth lab CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=localhost")
        (self.tls / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.crt", "-days", "825",
                "-extfile", "server.ext")
        for name in ("ca.key", "server.key"):
            (self.tls / name).chmod(0o600)
        (self.tls / "ca.crt").chmod(0o644)
        (self.tls / "server.crt").chmod(0o644)
        self._chown(self.tls, *self.tls.iterdir())

    def _write_conf(self) -> None:
        self.sock.mkdir(exist_ok=True)
        self._chown(self.sock)
        conf = f"""# written by labctl
listen_addresses = '{HOST}'
port = {self.lab.pg_port}
unix_socket_directories = '{self.sock}'
max_connections = 200
shared_buffers = 32MB
ssl = on
ssl_cert_file = '{self.tls / "server.crt"}'
ssl_key_file = '{self.tls / "server.key"}'
ssl_ca_file = '{self.tls / "ca.crt"}'
password_encryption = 'scram-sha-256'
log_connections = on
log_statement = 'all'
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
logging_collector = off
fsync = off
synchronous_commit = off
full_page_writes = off
"""
        target = self.data / "postgresql.auto.conf"
        if not target.exists() or target.read_text() != conf:
            target.write_text(conf)
            self._chown(target)

    def hba_text(self, variant: str = "rds") -> str:
        """rds: the RDS-shaped rules.  force_ssl: plain TCP rejected for everyone (RDS with
        rds.force_ssl=1).  ldap_app: app_user authenticates against an LDAP server that is
        down.  admin_db_only: password logins only to the postgres database, so
        the app's database has no rule (a self-hosted hba edited too tightly)."""
        pam = f"pam pamservice={self.lab.pam_service}"
        databases = "postgres" if variant == "admin_db_only" else "all"
        plain = (f"hostnossl all      all        {HOST}/32     reject" if variant == "force_ssl"
                 else f"host    {databases:8} all        {HOST}/32     scram-sha-256")
        # ldap_app: app_user's logins go to an LDAP server that is not there (port 1), a
        # failure no finding but login_failed explains
        ldap = (f"host    all      app_user   {HOST}/32     ldap ldapserver={HOST} ldapport=1 "
                'ldapprefix="cn=" ldapsuffix=",dc=lab"\n' if variant == "ldap_app" else "")
        return f"""# RDS-shaped rules, written by labctl ({variant})
# TYPE  DATABASE USER       ADDRESS          METHOD
local   all      all                         trust
{ldap}hostssl all      +rds_iam   {HOST}/32     {pam}
host    all      +rds_iam   {HOST}/32     reject
hostssl {databases:8} all        {HOST}/32     scram-sha-256
{plain}
"""

    def write_hba(self, text: str | None = None) -> bool:
        """Write pg_hba.conf; returns True when it changed (the caller reloads)."""
        target = self.data / "pg_hba.conf"
        text = text or self.hba_text()
        if target.exists() and target.read_text() == text:
            return False
        target.write_text(text)
        self._chown(target)
        return True

    def reload(self) -> None:
        with self.admin_cursor() as cur:
            cur.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the postmaster re-reads its files asynchronously

    def _write_iam(self, state: dict) -> None:
        config = {
            "endpoints": [f"{HOST}:{self.lab.pg_port}", f"localhost:{self.lab.pg_port}"],
            "region": REGION,
            "keys": {state["aws_access_key_id"]: state["aws_secret_access_key"]},
            "log": str(self.iam_log),
            "max_clock_skew": 300,
        }
        self.iam_config.write_text(json.dumps(config, indent=2))
        self.iam_config.chmod(0o600)
        shutil.copyfile(VERIFIER, self.verifier)
        self.verifier.chmod(0o755)
        self.iam_log.touch()
        self._chown(self.iam_config, self.verifier, self.iam_log)
        if not is_root():
            print("labctl: not root: the RDS IAM emulation (PAM service in /etc/pam.d) is "
                  "skipped; IAM logins will fail and the IAM tests skip")
            return
        pam = (f"# credops.pgauth lab: RDS IAM token check for {self.lab.dir}\n"
               f"auth    required pam_exec.so expose_authtok quiet {self.verifier} "
               f"{self.iam_config}\n"
               "account required pam_permit.so\n")
        if not self.pam_file.exists() or self.pam_file.read_text() != pam:
            self.pam_file.write_text(pam)

    def remove_pam(self) -> None:
        if is_root() and self.pam_file.exists():
            self.pam_file.unlink()

    def _bootstrap_sql(self) -> None:
        with self.admin_cursor() as cur:
            for role in ("rds_iam", "rds_superuser"):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if not cur.fetchone():
                    cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))

    # -- used by scenarios -------------------------------------------------
    def set_password(self, cur, role: str, password: str) -> None:
        """ALTER ROLE with a client-made SCRAM verifier, so the log never sees plaintext."""
        verifier = encrypt_password(password, role, cur.connection, "scram-sha-256")
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)))

    def reset_objects(self) -> None:
        """Drop every database and role a scenario made; the lab's own roles stay."""
        with self.admin_cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname NOT IN "
                        "('postgres', 'template0', 'template1')")
            for (name,) in cur.fetchall():
                cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' "
                        "AND rolname <> ALL(%s)", (list(SYSTEM_ROLES),))
            roles = [name for (name,) in cur.fetchall()]
            for name in roles:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE usename = %s", (name,))
                cur.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
                cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        if self.write_hba():
            self.reload()
