#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_rotate
short_description: Rotate a role's credential in the database and in every store, or move it to IAM
version_added: 0.1.0
description:
  - The engine of the rotate runbook, as one module run so that a PostgreSQL advisory lock
    serializes rotations of a role for the whole run.
  - O(strategy=single_user). A new password is generated inside the module and stored as
    pending in the primary store (the first of O(stores)), then in the other stores that have a
    pending stage (Secrets Manager AWSPENDING, a Vault pending path). The role gets it as a
    SCRAM verifier made on the client, a test login proves it, and every store is promoted
    (files are rewritten; a connection string in its own DSN dialect, only its changed parts,
    encoded for its client).
  - O(strategy=alternating_users). The same steps for whichever of C(ROLE) and C(ROLE_clone)
    the stores do not hold now; the clone is created once, as a member of C(ROLE) whose
    sessions act as C(ROLE). The user the clients hold keeps its password, so clients that
    re-read the store never see a failed login.
  - O(strategy=iam). Checks the instance or cluster IAM flag (and turns it on with
    O(iam_enable_instance)), checks that O(principal_arn) may C(rds-db:connect), grants
    C(rds_iam), switches every store to C(auth=iam) with no password, and proves a token
    login over TLS.
  - Resumable. A pending value in the primary store is resumed, never replaced by a second
    new password. Stores left behind by an interrupted promote are brought in line with a
    primary (or O(source_store)) whose credential logs in. A failure before promote puts
    the old password back in the database and discards the pending values.
  - With O(min_age), a run whose current secret is younger and logs in does nothing, so
    scheduled runs are idempotent.
  - Check mode reports the steps that would run, on which stores, and changes nothing.
options:
  role:
    description: The application's login role (for V(alternating_users), the base role).
    type: str
    required: true
  dbname:
    description: The database of the test login. Defaults to O(login_db).
    type: str
  stores:
    description:
      - Every store of the credential, primary first; each item is a store dict (see the
        C(store) option of M(credops.pgauth.secret_value)).
    type: list
    elements: dict
    required: true
  consumers:
    description:
      - What uses the credential and must pick up a new one (the C(pgauth_consumers) items);
        after promote each is refreshed, then confirmed. V(pgbouncer) gets the role's new
        SCRAM verifier (the very one the database holds, read from C(pg_authid); never the
        password) in its C(auth_file), then C(RELOAD) and C(RECONNECT) on its admin console,
        and is confirmed by a login through it on a server connection opened after the
        switch. V(http) is confirmed when its C(url) answers 2xx within C(timeout).
      - After promote there is no rollback; a consumer that is not confirmed fails the run
        and the message says what is left. The next run sees the consumer left behind and
        refreshes and confirms it (outcome V(consumers_refreshed)) without a new password.
      - Not with O(strategy=iam).
    type: list
    elements: dict
    default: []
  strategy:
    description: How to rotate.
    type: str
    choices: [single_user, alternating_users, iam]
    default: single_user
  source_store:
    description:
      - The name of the store whose current credential is known to work. Stores that differ
        from it are brought in line with it, and a rollback restores its password.
    type: str
  min_age:
    description:
      - Skip the run when the primary's current secret is younger than this (V(30d),
        V(12h)) and logs in. Without it every run rotates.
    type: str
  force:
    description:
      - Rotate even when O(min_age) says it is not due, and when the stores differ (a new
        password everywhere, the differing stores included, instead of bringing them in line).
      - With O(strategy=iam), also go on when the IAM policy check cannot decide whether the
        application's principal may C(rds-db:connect) (permission boundaries, SCPs, session
        policies, conditions); the report's notes say the run was forced.
    type: bool
    default: false
  valid_until:
    description: Also set the role's VALID UNTIL (V(infinity) clears an expiry).
    type: str
  generate:
    description: How new passwords are generated.
    type: dict
    default: {}
  clone_set_role:
    description:
      - V(alternating_users). Make the clone's sessions run C(SET ROLE ROLE), so objects it
        creates belong to the base role.
    type: bool
    default: true
  db_instance_identifier:
    description: V(iam). The RDS instance.
    type: str
  db_cluster_identifier:
    description: V(iam). The Aurora cluster.
    type: str
  principal_arn:
    description: V(iam). The application's IAM principal, which must be allowed to connect.
    type: str
  iam_enable_instance:
    description:
      - V(iam). Turn IAM database authentication on (with apply_immediately) when it is off.
        Without it the run stops and says so.
    type: bool
    default: false
  login_password_from:
    description:
      - Read the admin's password (and user, unless O(login_user) is given) from a store, a
        dict with C(store) and C(stage).
    type: dict
  rotate_via:
    description:
      - V(sql) sets the password with C(ALTER ROLE) and a SCRAM verifier.
      - V(rds_api) sets the RDS master user's password with C(ModifyDBInstance) (or
        C(ModifyDBCluster)), applied immediately, then logs in until it works. Only for the
        master user, with O(strategy=single_user).
      - V(rds_managed), for an instance or cluster with C(ManageMasterUserPassword) (its master
        password in a secret RDS owns, C(rds!db-...)) - RDS makes the new password
        (C(RotateMasterUserPassword)) and writes that secret; the run waits until the new
        password logs in, then brings every other store in line with it. The managed secret
        is found from C(MasterUserSecret) and put first; it is never written by this module.
        O(min_age) is compared with the managed secret's age. Only for the master user, with
        O(strategy=single_user).
    type: str
    choices: [sql, rds_api, rds_managed]
    default: sql
  move_plaintext_to:
    description:
      - A store dict (V(aws_secretsmanager) or V(aws_ssm)). Every V(aws_ecs_task_definition)
        store of O(stores) whose variable is a plaintext C(environment) entry is moved into it
        first - the secret created with the current value when absent, the execution role
        checked to be allowed to read it, a revision registered that takes the variable from
        C(secrets) - and the rotation then runs with this store first.
      - The result's C(moved_plaintext) says what was done.
    type: dict
  grant_secret_read:
    description:
      - With O(move_plaintext_to), give the execution role an inline policy that allows reading
        exactly that secret when it may not yet. Without it the run stops before registering a
        revision.
    type: bool
    default: false
  rds_apply_timeout:
    description: V(rds_api) and V(rds_managed). Seconds to wait for RDS to apply the new master
      password.
    type: int
    default: 300
  drain_timeout:
    description:
      - V(alternating_users). Before the user that is not in the stores gets the new
        password, wait up to this many seconds until no session of that user is open
        (clients that did not re-read the stores since the last rotation). Then refuse,
        naming the clients (address, application_name, backend_start), before anything is
        staged.
    type: int
    default: 60
  lock_db:
    description:
      - The database in which the role's advisory lock is taken. Roles belong to the whole
        cluster and advisory locks to one database, so runs that work in different databases
        still exclude each other only when they lock in the same one; keep the default unless
        the admin cannot connect to V(postgres).
    type: str
    default: postgres
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.generate
  - credops.pgauth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - A run that is killed leaves its advisory lock to PostgreSQL, which releases it when the
    connection goes away.
  - The role must exist. For V(alternating_users) the admin must be able to create roles and
    grant the base role (superuser, C(rds_superuser), or CREATEROLE).
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Rotate app_user everywhere
  credops.pgauth.pg_rotate:
    login_host: db.example.internal
    login_user: postgres
    login_password_from:
      store: {type: aws_secretsmanager, secret_id: prod/postgres-master}
    ssl_mode: verify-full
    role: app_user
    dbname: appdb
    stores:
      - {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
      - {name: vault-app, type: vault_kv2, path: apps/app_user}
      - {name: app-env, type: file, path: /srv/app/.env, format: dotenv, key: DATABASE_URL}
    min_age: 30d
"""

RETURN = r"""
outcome:
  description:
    - V(rotated), V(resumed) (a pending value of an interrupted run was finished),
      V(converged) (stores brought in line, no new password), V(not_due), V(converted) (iam),
      V(consumers_refreshed) (only consumers left behind by an earlier run were refreshed
      and confirmed).
  returned: always
  type: str
moved_plaintext:
  description:
    - With O(move_plaintext_to), what was moved - C(created) (the secret was made), C(moved) (per
      task-definition store the execution role, its C(permission) decision, the
      C(granted_policy) if one was added, the new C(revision) and the C(value_from)).
  returned: when O(move_plaintext_to) is set
  type: dict
login_user:
  description: The user the stores hold after the run.
  returned: always
  type: str
promoted:
  description: Whether the stores were switched to the new credential.
  returned: always
  type: bool
steps:
  description: Each step with its stores, status (done, planned, skipped, failed) and seconds.
  returned: always
  type: list
  elements: dict
consumers:
  description:
    - One line per consumer refreshed in this run, with C(consumer), C(type), C(refreshed),
      C(confirmed), C(seconds), C(detail), C(checks), and C(error) and C(left) (what is left
      to do) when it was not confirmed.
  returned: always
  type: list
  elements: dict
consumers_seconds:
  description: Seconds from the first consumer refresh (right after promote) to the last
    confirmation; null without consumers.
  returned: always
  type: float
versions_before:
  description: Each store's current version id before the run.
  returned: always
  type: dict
versions_after:
  description: Each store's current version id after the run.
  returned: always
  type: dict
"""

import contextlib

from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    GENERATE_OPTIONS,
    argument_spec,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    admin_connect,
    postgres_argument_spec,
    psycopg2,
    run_pg_module,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation import (
    RotationError,
    RotationFailed,
    run_rotation,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import env_failpoint
from ansible_collections.credops.pgauth.plugins.module_utils.runbook_module import RunbookModule
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    prepare_runbook_params,
    validated_stores,
)


def lock_connection(params: dict, conn):
    """The connection that holds the role's advisory lock.  Advisory locks belong to one
    database while roles belong to the cluster, so every run locks in the same database
    (lock_db), whichever database it works in."""
    if (params.get("login_db") or "postgres") == params["lock_db"]:
        return conn
    try:
        conn = admin_connect({**params, "login_db": params["lock_db"]})
    except PgError as err:
        raise PgError(f"{err} (the rotation lock is taken in database {params['lock_db']!r}: "
                      "set lock_db to a database every admin of this cluster can connect "
                      "to)") from None
    # idle while the run works elsewhere: a server-side idle timeout would drop the lock
    # (servers before 14 lack the setting, and then cannot time out)
    with contextlib.suppress(psycopg2.Error):
        conn.cursor().execute("SET idle_session_timeout = 0")
    return conn


def run(module: RunbookModule) -> dict:
    params = prepare_runbook_params(module.params, module.no_log_values.add)
    if params.get("move_plaintext_to"):
        params["move_plaintext_to"] = validated_stores([params["move_plaintext_to"]],
                                                       "move_plaintext_to")[0]
    conn = admin_connect(params)
    lock_conn = None
    try:
        lock_conn = lock_connection(params, conn)
        result = run_rotation(params, conn.cursor(), module.no_log_values.add,
                              module.check_mode, lock_cur=lock_conn.cursor(),
                              failpoint=env_failpoint())
    except RotationError as err:
        outcome = dict(err.outcome) if isinstance(err, RotationFailed) else {}
        for warning in outcome.pop("store_warnings", []):
            module.warn(warning)
        done = [step for step in outcome.get("steps", []) if step["status"] == "done"]
        module.fail_json(msg=f"pg_rotate {params['role']!r}: {err}", changed=bool(done),
                         **outcome)
    finally:
        if lock_conn is not None and lock_conn is not conn:
            lock_conn.close()
        conn.close()
    # one channel for what a store's write did (a YAML file re-written without its comments)
    for warning in result.pop("store_warnings", []):
        module.warn(warning)
    return result


def main() -> None:
    module = RunbookModule(
        argument_spec=postgres_argument_spec(
            with_stores=True,
            role={"type": "str", "required": True},
            dbname={"type": "str"},
            stores={"type": "list", "elements": "dict", "required": True},
            consumers={"type": "list", "elements": "dict", "default": [], "no_log": False},
            strategy={"type": "str", "default": "single_user",
                      "choices": ["single_user", "alternating_users", "iam"]},
            source_store={"type": "str"},
            min_age={"type": "str"},
            force={"type": "bool", "default": False},
            valid_until={"type": "str"},
            generate={"type": "dict", "default": {}, "options": argument_spec(GENERATE_OPTIONS)},
            clone_set_role={"type": "bool", "default": True},
            db_instance_identifier={"type": "str"},
            db_cluster_identifier={"type": "str"},
            principal_arn={"type": "str"},
            iam_enable_instance={"type": "bool", "default": False},
            login_password_from={"type": "dict", "no_log": False},
            move_plaintext_to={"type": "dict", "no_log": False},
            grant_secret_read={"type": "bool", "default": False},
            rotate_via={"type": "str", "default": "sql",
                        "choices": ["sql", "rds_api", "rds_managed"]},
            rds_apply_timeout={"type": "int", "default": 300},
            drain_timeout={"type": "int", "default": 60},
            lock_db={"type": "str", "default": "postgres"},
        ),
        mutually_exclusive=[("db_instance_identifier", "db_cluster_identifier")],
        supports_check_mode=True,
    )
    run_pg_module(module, run, f"pg_rotate {module.params['role']!r}")


if __name__ == "__main__":
    main()
