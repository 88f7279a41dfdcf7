"""Incidents the lab can be put into: one per finding id as the project grows.

Every scenario starts from `reset` (no app roles, databases or secrets), then
seeds what it needs.  Passwords reach PostgreSQL only as SCRAM verifiers and
are never printed; `.lab/scenario.json` records what was made (no secrets) so
tests and playbooks can find the role, database and stores.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from psycopg2 import sql

from .postgres import Postgres
from .services import Moto, OpenBao, aws_client, vault_client
from .settings import HOST, Lab

APP_ROLE = "app_user"
APP_DB = "appdb"
SECRET_ID = "lab/app_user"
VAULT_PATH = "lab/app_user"


def new_password() -> str:
    return "lab-" + secrets.token_urlsafe(24)


class Seeder:
    """Writes one credential into the database and into each store of the lab."""

    def __init__(self, lab: Lab, pg: Postgres, state: dict):
        self.lab, self.pg, self.state = lab, pg, state
        self.app_dir = lab.dir / "app"

    def credential(self, password: str) -> dict:
        return {"username": APP_ROLE, "password": password, "host": HOST,
                "port": self.lab.pg_port, "dbname": APP_DB}

    def stores(self) -> list[dict]:
        return [
            {"name": "aws-app", "type": "aws_secretsmanager", "secret_id": SECRET_ID,
             "format": "json"},
            {"name": "vault-app", "type": "vault_kv2", "mount_point": "secret",
             "path": VAULT_PATH, "format": "json"},
            {"name": "app-env", "type": "file", "path": str(self.app_dir / "app.env"),
             "format": "dotenv", "key": "DATABASE_URL"},
        ]

    def create_role(self, password: str) -> None:
        with self.pg.admin_cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
            self.pg.set_password(cur, APP_ROLE, password)
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(APP_DB), sql.Identifier(APP_ROLE)))

    def write_stores(self, password: str) -> None:
        cred = self.credential(password)
        sm = aws_client(self.lab, "secretsmanager", self.state)
        sm.create_secret(Name=SECRET_ID, Description="credops.pgauth lab: app_user",
                         SecretString=json.dumps({**cred, "engine": "postgres"}))
        vault_client(self.lab).secrets.kv.v2.create_or_update_secret(
            path=VAULT_PATH, mount_point="secret", secret=cred)
        self.app_dir.mkdir(parents=True, exist_ok=True)
        dsn = (f"postgresql://{quote(APP_ROLE, safe='')}:{quote(password, safe='')}"
               f"@{HOST}:{self.lab.pg_port}/{APP_DB}"
               f"?sslmode=verify-full&sslrootcert={quote(str(self.pg.ca_cert), safe='/')}")
        env_file = self.app_dir / "app.env"
        env_file.write_text("# the app's environment (credops.pgauth lab)\n"
                            "APP_NAME=lab-app\n"
                            f"DATABASE_URL={dsn}\n")
        env_file.chmod(0o600)

    def record(self, name: str, description: str) -> None:
        meta = {
            "scenario": name,
            "description": description,
            "target": {"host": HOST, "port": self.lab.pg_port, "dbname": APP_DB,
                       "role": APP_ROLE, "auth": "password", "sslmode": "verify-full",
                       "sslrootcert": str(self.pg.ca_cert)},
            "stores": self.stores(),
        }
        (self.lab.dir / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n")


def healthy(seed: Seeder) -> None:
    password = new_password()
    seed.create_role(password)
    seed.write_stores(password)


def password_mismatch(seed: Seeder) -> None:
    """The classic outage: the database got a new password, no store did."""
    seed.create_role(new_password())
    seed.write_stores(new_password())


MISMATCH_DESCRIPTION = ("app_user's password in Secrets Manager, Vault and the app's "
                        "DATABASE_URL differs from the database (28P01)")

SCENARIOS: dict[str, tuple[Callable[[Seeder], None], str]] = {
    "healthy": (healthy, "app_user logs in with the password every store holds"),
    "password_mismatch": (password_mismatch, MISMATCH_DESCRIPTION),
}


def reset(lab: Lab, pg: Postgres, state: dict) -> None:
    pg.reset_objects()
    Moto(lab).reset(state)
    OpenBao(lab).reset()
    app_dir = lab.dir / "app"
    if app_dir.exists():
        for path in app_dir.iterdir():
            path.unlink()
    (lab.dir / "scenario.json").unlink(missing_ok=True)


def apply(lab: Lab, pg: Postgres, state: dict, name: str) -> str:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    seed_fn, description = SCENARIOS[name]
    reset(lab, pg, state)
    seeder = Seeder(lab, pg, state)
    seed_fn(seeder)
    seeder.record(name, description)
    return description


def scenario_file(lab: Lab) -> Path:
    return lab.dir / "scenario.json"
