"""Where the lab lives, which ports it uses, and its persisted secrets."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
RDS_INSTANCE = "lab-db"
VAULT_ROOT_TOKEN = "root"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Lab:
    dir: Path
    pg_port: int
    moto_port: int
    vault_port: int
    # PgBouncer: PG port + 1000 unless set (55432 -> 56432; lane 2's 55442 -> 56442)
    pgbouncer_port: int = 0

    @classmethod
    def from_env(cls) -> Lab:
        lab_dir = Path(os.environ.get("PGAUTH_LAB_DIR", REPO / ".lab")).resolve()
        pg_port = _port("PGAUTH_LAB_PGPORT", 55432)
        return cls(
            dir=lab_dir,
            pg_port=pg_port,
            moto_port=_port("PGAUTH_LAB_MOTO_PORT", 55000),
            vault_port=_port("PGAUTH_LAB_VAULT_PORT", 58200),
            pgbouncer_port=_port("PGAUTH_LAB_PGBOUNCER_PORT", pg_port + 1000),
        )

    # -- paths -------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def pg_dir(self) -> Path:
        """The PostgreSQL tree; it must be reachable by the `postgres` OS user.

        .lab/pg is used when every parent directory is traversable by that
        user, else a directory under /var/tmp named after the lab directory
        (a checkout under /root is the common case), linked from .lab/pg.
        """
        return Path(self.state().get("pg_dir") or self.dir / "pg")

    @property
    def pam_service(self) -> str:
        return f"pgauth-lab-{self.pg_port}"

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def vault_url(self) -> str:
        return f"http://{HOST}:{self.vault_port}"

    # -- persisted state ---------------------------------------------------
    def state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}

    def save_state(self, **updates: object) -> dict:
        state = self.state()
        state.update(updates)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)
        return state

    def ensure_secrets(self) -> dict:
        """Admin password and the lab's AWS key pair, made once per lab dir."""
        state = self.state()
        if "pgbouncer_admin_password" not in state:
            # labs set up before PgBouncer joined get its admin secret on their next `up`
            state = self.save_state(pgbouncer_admin_password=secrets.token_urlsafe(18),
                                    pgbouncer_admin_salt=secrets.token_hex(16))
        if "admin_password" in state:
            return state
        upper = string.ascii_uppercase + string.digits
        return self.save_state(
            admin_password=secrets.token_urlsafe(18),
            aws_access_key_id="AKIA" + "".join(secrets.choice(upper) for _char in range(16)),
            aws_secret_access_key=secrets.token_urlsafe(30),
        )

    def pick_pg_dir(self, is_root: bool) -> Path:
        state = self.state()
        if state.get("pg_dir"):
            return Path(state["pg_dir"])
        local = self.dir / "pg"
        if is_root and not _postgres_can_traverse(self.dir):
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:10]
            chosen = Path("/var/tmp") / f"pgauth-lab-{digest}"
            chosen.mkdir(parents=True, exist_ok=True)
            if not local.is_symlink():
                local.symlink_to(chosen)
        else:
            chosen = local
            chosen.mkdir(parents=True, exist_ok=True)
        self.save_state(pg_dir=str(chosen))
        return chosen


def _postgres_can_traverse(path: Path) -> bool:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(path)],
        capture_output=True, check=False).returncode == 0
