# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotate_via=rds_api: the RDS master user's password set through ModifyDBInstance (or
ModifyDBCluster) instead of ALTER ROLE, for admins who may not ALTER the master role or who
want RDS's own record of the change.  RDS applies it asynchronously: the new password is
tested by logging in until it works or the wait runs out."""
from __future__ import annotations

import time

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg import login_kwargs, try_login
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import (
    describe_database,
    modify_database,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import RotationError


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
