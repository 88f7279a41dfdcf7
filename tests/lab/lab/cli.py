"""labctl's command line."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from . import scenarios, slot_holder
from .passstore import PassStore, passstore_env
from .pgbouncer import ADMIN_USER as PGBOUNCER_ADMIN
from .pgbouncer import PgBouncer
from .postgres import ADMIN_USER, Postgres, is_root
from .procs import reserve_ports
from .services import Moto, OpenBao
from .settings import HOST, RDS_INSTANCE, REGION, VAULT_ROOT_TOKEN, Lab


def _components(lab: Lab) -> tuple[Postgres, Moto, OpenBao]:
    return Postgres(lab), Moto(lab), OpenBao(lab)


def cmd_up(lab: Lab) -> int:
    started = time.monotonic()
    state = lab.ensure_secrets()
    lab.pick_pg_dir(is_root())
    pg, moto, bao = _components(lab)
    reserve_ports([lab.pg_port, lab.moto_port, lab.vault_port, lab.vault_port + 1,
                   lab.pgbouncer_port])
    pg.up(state)
    moto.up(state)
    bao.up()
    PassStore(lab).up()
    pooler_up(lab, pg, state)
    print(f"lab up in {time.monotonic() - started:.1f}s: PostgreSQL {HOST}:{lab.pg_port}"
          f" (IAM emulation {'on' if pg.iam_enabled else 'OFF: not root'}),"
          f" moto {lab.moto_url}, OpenBao {lab.vault_url}, PgBouncer {HOST}:{lab.pgbouncer_port}")
    return 0


def cmd_down(lab: Lab) -> int:
    if not lab.state():
        print("lab is not set up here; nothing to stop")
        return 0
    pg, moto, bao = _components(lab)
    slot_holder.stop(lab)
    pooler_down(lab, pg)
    pg.down()
    pg.remove_pam()
    moto.down()
    bao.down()
    PassStore(lab).down()
    print("lab down")
    return 0


def cmd_status(lab: Lab) -> int:
    if not lab.state():
        print("lab: not set up (run `labctl up`)")
        return 3
    pg, moto, bao = _components(lab)
    rows = [
        ("postgresql", pg.postmaster_pid(), f"{HOST}:{lab.pg_port}"),
        ("moto", moto.pid(), lab.moto_url),
        ("openbao", bao.pid(), lab.vault_url),
        pooler_status(lab, pg),
    ]
    healthy = True
    for name, pid, where in rows:
        up = pid is not None
        healthy &= up
        print(f"{name:<11} {'up' if up else 'down':<5} pid={pid or '-':<8} {where}")
    print(f"{'iam-pam':<11} {'on' if pg.iam_enabled else 'off':<5} service={lab.pam_service}")
    meta = scenarios.scenario_file(lab)
    if meta.exists():
        print(f"scenario    {json.loads(meta.read_text())['scenario']}")
    return 0 if healthy else 3


def lab_env(lab: Lab) -> dict[str, str]:
    state = lab.state()
    if not state:
        raise SystemExit("labctl: the lab is not set up here; run `labctl up` first")
    pg = Postgres(lab)
    return {
        "PGAUTH_LAB_DIR": str(lab.dir),
        "PGAUTH_LAB_PGHOST": HOST,
        "PGAUTH_LAB_PGPORT": str(lab.pg_port),
        # Lab.from_env() in a test must find this lab's servers, not the default ports'
        "PGAUTH_LAB_MOTO_PORT": str(lab.moto_port),
        "PGAUTH_LAB_VAULT_PORT": str(lab.vault_port),
        "PGAUTH_LAB_PGSOCKET": str(pg.sock),
        "PGAUTH_LAB_ADMIN_USER": ADMIN_USER,
        "PGAUTH_LAB_ADMIN_PASSWORD": state["admin_password"],
        "PGAUTH_LAB_SSLROOTCERT": str(pg.ca_cert),
        "PGAUTH_LAB_PGLOG": str(pg.logfile),
        "PGAUTH_LAB_IAM_LOG": str(pg.iam_log),
        "PGAUTH_LAB_IAM_ENABLED": "1" if pg.iam_enabled else "0",
        "PGAUTH_LAB_RDS_INSTANCE": RDS_INSTANCE,
        "PGAUTH_LAB_SCENARIO_FILE": str(scenarios.scenario_file(lab)),
        "AWS_ENDPOINT_URL": lab.moto_url,
        "AWS_ACCESS_KEY_ID": state["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": state["aws_secret_access_key"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "VAULT_ADDR": lab.vault_url,
        "VAULT_TOKEN": VAULT_ROOT_TOKEN,
        **passstore_env(lab),
        **pooler_env(lab, pg, state),
    }


# -- PgBouncer: its own functions (the lab's other parts are set up above) -----------------
def pooler_up(lab: Lab, pg: Postgres, state: dict) -> None:
    PgBouncer(lab, pg).up(state)


def pooler_down(lab: Lab, pg: Postgres) -> None:
    PgBouncer(lab, pg).down()


def pooler_status(lab: Lab, pg: Postgres) -> tuple:
    return ("pgbouncer", PgBouncer(lab, pg).pid(), f"{HOST}:{lab.pgbouncer_port}")


def pooler_env(lab: Lab, pg: Postgres, state: dict) -> dict[str, str]:
    bouncer = PgBouncer(lab, pg)
    return {
        "PGAUTH_LAB_PGBOUNCER_PORT": str(lab.pgbouncer_port),
        "PGAUTH_LAB_PGBOUNCER_AUTH_FILE": str(bouncer.auth_file),
        "PGAUTH_LAB_PGBOUNCER_LOG": str(bouncer.logfile),
        "PGAUTH_LAB_PGBOUNCER_ADMIN_USER": PGBOUNCER_ADMIN,
        "PGAUTH_LAB_PGBOUNCER_ADMIN_PASSWORD": state.get("pgbouncer_admin_password", ""),
    }


def cmd_env(lab: Lab, as_json: bool = False) -> int:
    env = lab_env(lab)
    if as_json:  # also valid YAML: ansible-test's integration_config.yml is made from it
        print(json.dumps({"lab_env": env}, indent=2))
        return 0
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _require_up(lab: Lab) -> tuple[Postgres, dict]:
    pg, moto, bao = _components(lab)
    if not lab.state() or not pg.running() or moto.pid() is None or bao.pid() is None:
        raise SystemExit("labctl: the lab is not running; run `labctl up` first")
    return pg, lab.state()


def cmd_reset(lab: Lab) -> int:
    pg, state = _require_up(lab)
    scenarios.reset(lab, pg, state)
    print("lab reset: no app roles, databases or secrets")
    return 0


def cmd_scenario(lab: Lab, name: str) -> int:
    pg, state = _require_up(lab)
    try:
        description = scenarios.apply(lab, pg, state, name)
    except KeyError as err:
        print(f"labctl: {err.args[0]}", file=sys.stderr)
        return 2
    print(f"scenario {name}: {description}")
    return 0


def cmd_scenarios(_lab: Lab) -> int:
    for name, (_fn, description) in sorted(scenarios.SCENARIOS.items()):
        print(f"{name:<20} {description}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "status", "reset", "scenarios"):
        sub.add_parser(name)
    env = sub.add_parser("env", help="print the lab's exports (or, with --json, a vars file)")
    env.add_argument("--json", action="store_true")
    scen = sub.add_parser("scenario")
    scen.add_argument("name")
    args = parser.parse_args(argv)
    lab = Lab.from_env()
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status,
                "reset": cmd_reset, "scenarios": cmd_scenarios}
    try:
        if args.command == "scenario":
            return cmd_scenario(lab, args.name)
        if args.command == "env":
            return cmd_env(lab, args.json)
        return handlers[args.command](lab)
    except (RuntimeError, OSError) as err:
        print(f"labctl {args.command}: {err}", file=sys.stderr)
        return 1
