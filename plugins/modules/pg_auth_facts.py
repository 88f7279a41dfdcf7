#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_auth_facts
short_description: Everything that explains a role's failed logins, gathered in one process
version_added: 0.1.0
description:
  - Read-only. Gathers, in one module run, what the diagnose and verify runbooks judge a role
    by. The role and its server as M(credops.pgauth.pg_role_info) returns them. Each store of
    O(stores) as M(credops.pgauth.secret_value_info) describes it, with a fingerprint key
    shared by the stores of this run. A login with each store's credential, the way the
    application makes it, as M(credops.pgauth.pg_login_probe). With O(db_instance_identifier)
    or O(db_cluster_identifier), the AWS side of IAM auth as M(credops.pgauth.rds_iam_info).
    With O(log_files) or O(cloudwatch_log_groups), the log scan of
    M(credops.pgauth.pg_auth_log_scan).
  - One process instead of one task per check (each Ansible task costs a process), and the
    independent checks run in parallel.
  - A check that cannot be made is a fact, not a failure. An admin login that fails gives
    C(admin_error), an unreadable store C(readable=false) with its error, an AWS or log error
    an entry in C(errors). The module fails only on bad options.
  - No secret is returned. Stores are compared by fingerprints keyed with a random key made
    for each run and never returned, so a fingerprint cannot be used to test password
    guesses offline.
  - Feed the result, with C(target), to the P(credops.pgauth.findings#filter) filter.
  - With C(connection=local), C(ansible_python_interpreter) set to the controller's Python, no
    become, no task C(environment) and no async (how the runbooks run it), the module's body
    runs in the task's worker process instead of a new Python process; the arguments are
    checked against the same specification and the result masked the same way. Anywhere else
    it runs as a module.
options:
  role:
    description: The application's login role (case-sensitive).
    type: str
    required: true
  dbname:
    description:
      - The application's database, for logins with a store whose credential does not name
        one. Defaults to O(login_db).
    type: str
  auth:
    description:
      - How the application logs in. With V(iam), every store's credential is probed with a
        fresh IAM token over TLS, whatever the store says.
    type: str
    choices: [password, iam]
    default: password
  stores:
    description:
      - The application's stores, primary first. Each item is a store dict, the same as the
        O(credops.pgauth.secret_value_info#module:store) option and as an item of
        C(pgauth_stores).
      - Connection settings in a store dict override the module-level AWS and Vault options.
    type: list
    elements: dict
    default: []
  login_password_from:
    description:
      - Read the admin's password (and user, unless O(login_user) is given) from a store,
        inside the module. A dict with C(store) (a store dict) and C(stage) (default
        V(current)).
    type: dict
  probe:
    description: Log in with each store's credential. V(false) reads the stores only.
    type: bool
    default: true
  consumers:
    description:
      - The consumers of the credential (the C(pgauth_consumers) items, see
        M(credops.pgauth.pg_rotate)). For each V(pgbouncer) consumer, the stores whose
        credential points at the pooler are also probed at the database itself, and its
        C(auth_file) is compared with the database's verifier (RV(poolers)).
    type: list
    elements: dict
    default: []
  confirm_consumers:
    description: Also confirm each consumer once with the primary store's credential
      (RV(consumers)), as verify does.
    type: bool
    default: false
  db_instance_identifier:
    description: The RDS instance, for the IAM flag, endpoint and connect ARN.
    type: str
  db_cluster_identifier:
    description: The Aurora cluster, instead of O(db_instance_identifier).
    type: str
  principal_arn:
    description:
      - The application's IAM principal (user or role ARN); with an RDS identifier, whether its
        policies allow C(rds-db:connect) as O(role).
    type: str
  log_files:
    description: PostgreSQL log files to scan for the role's failed logins (globs).
    type: list
    elements: str
    default: []
  cloudwatch_log_groups:
    description: CloudWatch log groups to scan, such as C(/aws/rds/instance/NAME/postgresql).
    type: list
    elements: str
    default: []
  logs_since:
    description: How far back to scan the logs, such as V(15m), V(1h) or an ISO timestamp.
    type: str
    default: 1h
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Gather everything about app_user's logins
  credops.pgauth.pg_auth_facts:
    login_host: db.example.internal
    login_user: postgres
    login_password_from:
      store: {name: admin, type: aws_secretsmanager, secret_id: prod/postgres-admin}
    ssl_mode: verify-full
    role: app_user
    dbname: appdb
    stores:
      - {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
      - {name: vault-app, type: vault_kv2, path: apps/app_user}
      - {name: app-env, type: file, path: /srv/app/.env, format: dotenv, key: DATABASE_URL}
    db_instance_identifier: prod-db
    log_files: [/var/log/postgresql/postgresql-*.log]
    logs_since: 1h
  register: app_user_facts

- name: Findings, root cause first
  ansible.builtin.debug:
    msg: >-
      {{ {'target': {'role': 'app_user', 'auth': 'password'}} | combine(app_user_facts)
         | credops.pgauth.findings }}
"""

RETURN = r"""
admin_error:
  description: Why the admin connection failed (the finding id, a colon, the message), or null.
  returned: always
  type: str
admin_error_category:
  description: The finding id of that failure alone (such as V(server_unreachable)), or null.
  returned: always
  type: str
server:
  description: Server facts, as M(credops.pgauth.pg_role_info) returns them.
  returned: always
  type: dict
role:
  description: The role's facts, as M(credops.pgauth.pg_role_info) returns them.
  returned: always
  type: dict
sessions:
  description: The role's sessions, with their ages.
  returned: always
  type: list
  elements: dict
hba_rules:
  description: The C(pg_hba.conf) rules that could match the role, where readable.
  returned: always
  type: list
  elements: dict
stores:
  description:
    - One item per store, in order, as M(credops.pgauth.secret_value_info) returns it
      (C(readable=false) and C(error) for a store that cannot be read, with C(error_code)
      V(dsn_not_encoded) when its DSN needs percent-encoding, or null).
  returned: always
  type: list
  elements: dict
probes:
  description:
    - One item per store, in order, as M(credops.pgauth.pg_login_probe) returns it, plus
      C(store) and C(probed) (false when the store gave no credential to try).
  returned: always
  type: list
  elements: dict
iam:
  description: The AWS side of IAM auth, as M(credops.pgauth.rds_iam_info) returns it.
  returned: always
  type: dict
logs:
  description: The log scan, as M(credops.pgauth.pg_auth_log_scan) returns it.
  returned: always
  type: dict
errors:
  description: Checks that could not be made (AWS, logs), each naming what failed.
  returned: always
  type: list
  elements: str
login_warnings:
  description: What the output and the report must say about how logins were made (an IAM
    token sent over a connection that does not verify the server, by O(iam_allow_unverified_tls)).
    Each is also a task warning. (Not C(warnings), a result key Ansible keeps for itself.)
  returned: always
  type: list
  elements: str
poolers:
  description:
    - One item per V(pgbouncer) consumer, with C(consumer), C(pooler) (host:port),
      C(stores) (those whose credential points at it), C(direct) (each of those stores'
      login at the database itself, C(ok) and C(category)), C(auth_file_current) (the
      auth_file holds the database's verifier; null when it could not be compared) and
      C(error).
  returned: always
  type: list
  elements: dict
consumers:
  description: With O(confirm_consumers), each consumer's C(consumer), C(type), C(ok),
    C(checks) or C(error).
  returned: always
  type: list
  elements: dict
timings:
  description: Seconds spent per check (C(role), C(store:N), C(probe:N), C(iam), C(logs)).
  returned: always
  type: dict
"""


from ansible_collections.credops.pgauth.plugins.module_utils.facts_task import (
    MUTUALLY_EXCLUSIVE,
    argument_spec,
    label,
    run,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg import run_pg_module
from ansible_collections.credops.pgauth.plugins.module_utils.runbook_module import RunbookModule


def main() -> None:
    module = RunbookModule(argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    run_pg_module(module, run, label(module.params))


if __name__ == "__main__":
    main()
