# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RDS API sets the master user's password.

rotate_via=rds_api: the password this run made is set through ModifyDBInstance (or
ModifyDBCluster) instead of ALTER ROLE, for admins who may not ALTER the master role or who
want RDS's own record of the change.  RDS applies it asynchronously: the new password is
tested by logging in until it works or the wait runs out.

rotate_via=rds_managed: an instance with ManageMasterUserPassword keeps the master password
in a secret RDS owns (``rds!db-...``), which nobody else may write.  RDS makes the new
password (RotateMasterUserPassword) and writes it into that secret; the rotation then brings
the other stores in line with it."""
from __future__ import annotations

import datetime as dt
import time

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError
from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg import login_kwargs, try_login
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import (
    describe_database,
    modify_database,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import is_due
from ansible_collections.credops.pgauth.plugins.module_utils.store import StoredValue


def set_master_password(params: dict, user: str, password: str, login_params,
                        on_modified=None) -> None:
    instance = params.get("db_instance_identifier")
    cluster = params.get("db_cluster_identifier")
    if not (instance or cluster):
        raise RotationError("rotate_via rds_api needs the RDS instance or cluster "
                            "(pgauth_target.rds_instance_id or rds_cluster_id)")
    what = f"instance {instance}" if instance else f"cluster {cluster}"
    master = describe_database(params, instance, cluster).get("master_username")
    if master != user:
        raise RotationError(f"rotate_via rds_api sets the master user's password, and the "
                            f"master user of {what} is {master!r}, not {user!r}")
    modify_database(params, instance, cluster, "setting the master password",
                    MasterUserPassword=password)
    if on_modified is not None:
        on_modified()
    deadline = time.monotonic() + int(params.get("rds_apply_timeout") or 300)
    login = login_params(Credential(username=user, password=password))
    while True:
        result = try_login(login_kwargs(login, user, password))
        if result.authenticated:
            return
        if time.monotonic() > deadline:
            raise RotationError(f"RDS accepted the new master password for {what}, but it "
                                f"does not log in yet ({result.category}) after "
                                f"{params.get('rds_apply_timeout') or 300} s")
        time.sleep(2)


MANAGED_STORE_NAME = "rds-managed-secret"


def _what(params: dict) -> tuple[str | None, str | None, str]:
    instance = params.get("db_instance_identifier")
    cluster = params.get("db_cluster_identifier")
    if not (instance or cluster):
        raise RotationError("rotate_via rds_managed needs the RDS instance or cluster "
                            "(pgauth_target.rds_instance_id or rds_cluster_id)")
    return instance, cluster, f"instance {instance}" if instance else f"cluster {cluster}"


def managed_secret_store(params: dict, user: str) -> dict:
    """The store dict of the secret RDS manages for the master user; RotationError when the
    database does not manage its master password or user is not its master user."""
    instance, cluster, what = _what(params)
    described = describe_database(params, instance, cluster)
    if described.get("master_username") != user:
        raise RotationError(f"rotate_via rds_managed rotates the master user's password, and "
                            f"the master user of {what} is "
                            f"{described.get('master_username')!r}, not {user!r}")
    arn = described.get("master_user_secret_arn")
    if not arn:
        raise RotationError(f"{what} does not manage its master password in Secrets Manager "
                            "(ManageMasterUserPassword is off): use rotate_via rds_api")
    return {"name": MANAGED_STORE_NAME, "type": "aws_secretsmanager", "secret_id": arn,
            "format": "json", "region": described.get("region")}


def names_secret(store: dict, arn: str) -> bool:
    """Whether a store dict addresses the secret of this ARN (by ARN, or by name with or
    without the six-character suffix Secrets Manager adds to an ARN)."""
    name = arn.split(":secret:", 1)[-1]
    return store.get("type") == "aws_secretsmanager" and \
        store.get("secret_id") in (arn, name, name[:-7])


def find_managed_secret(params: dict, user: str) -> dict | None:
    """The managed secret's store dict when the target's database manages user's password,
    else None (also when RDS cannot be asked: the IAM facts report that)."""
    if not (params.get("db_instance_identifier") or params.get("db_cluster_identifier")):
        return None
    try:
        return managed_secret_store(params, user)
    except (RotationError, AwsError):
        return None


def rotate_managed_password(params: dict, user: str, secret, login_params, hide) -> None:
    """RotateMasterUserPassword, then wait until the secret's current version is a new one
    and its password logs in.  secret: the Store of the managed secret (read only); hide
    registers the new password with the module's no_log values."""
    instance, cluster, what = _what(params)
    before = (secret.read_stored("current") or StoredValue(None)).version
    modify_database(params, instance, cluster, "rotating the RDS-managed master password",
                    RotateMasterUserPassword=True)
    timeout = int(params.get("rds_apply_timeout") or 300)
    deadline = time.monotonic() + timeout
    while True:
        cred, stored = secret.read("current")
        if stored is not None and stored.version != before and cred is not None \
                and cred.password:
            hide(cred.password)
            result = try_login(login_kwargs(login_params(cred.merged({"username": user})),
                                            user, cred.password))
            if result.authenticated:
                return
        if time.monotonic() > deadline:
            raise RotationError(f"RDS was asked to rotate the master password of {what}, but "
                                f"the secret's new password does not log in after {timeout} s")
        time.sleep(2)


def with_managed_secret(params: dict) -> dict:
    """The stores with the secret RDS manages first, as the source every other store is
    brought in line with (a store the user listed for it is that secret: left out)."""
    managed = managed_secret_store(params, params["role"])
    others = [store for store in params.get("stores") or []
              if not names_secret(store, managed["secret_id"])]
    return {**params, "stores": [managed, *others], "source_store": MANAGED_STORE_NAME}


def rotate_in_rds_if_due(execute, secret, params: dict, role: str, login_params,
                         hide) -> bool:
    """The run's rotate_in_rds step when the managed secret is due (min_age, force): RDS
    makes the password; True when it did."""
    stored = secret.read_stored("current")
    if not is_due(params.get("min_age"), bool(params.get("force")),
                  stored.changed_at if stored else None, dt.datetime.now(dt.timezone.utc)):
        execute.skip("rotate_in_rds", [secret],
                     f"the current secret is younger than {params['min_age']}")
        return False
    execute.run("rotate_in_rds", [secret], rotate_managed_password, params, role, secret,
                login_params, hide)
    return True
