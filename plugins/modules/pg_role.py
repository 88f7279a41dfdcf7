#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_role
short_description: Create, change or drop a PostgreSQL login role without exposing its password
version_added: 0.1.0
description:
  - Manages one login role, with its password, LOGIN, VALID UNTIL and CONNECTION LIMIT.
  - The password is hashed to a SCRAM-SHA-256 verifier on the client, so the plaintext never
    reaches the server, its statement log, or C(pg_stat_statements).
  - Idempotent for passwords too. Where the admin can read C(pg_authid), the given password is
    checked against the stored SCRAM verifier. Where it cannot (RDS, an admin with only
    CREATEROLE), the module logs in as the role with the given password to find out, instead of
    always reporting a change.
  - Check mode sends no DDL at all (only catalog reads and, without C(pg_authid), that login).
options:
  name:
    description:
      - Role name, case-sensitive (C(App_User) and C(app_user) are different roles).
      - At most 63 bytes; longer names are refused rather than silently truncated.
    type: str
    required: true
    aliases: [role]
  state:
    description:
      - V(present) creates or alters the role; V(absent) drops it.
      - Dropping fails, and changes nothing, while the role owns objects or holds privileges.
    type: str
    choices: [present, absent]
    default: present
  password:
    description:
      - The role's password. Sent only as a SCRAM-SHA-256 verifier.
      - Omit to leave the password as it is.
    type: str
  update_password:
    description:
      - V(always) sets O(password) when it differs from the current one.
      - V(on_create) sets it only when the role is created.
    type: str
    choices: [always, on_create]
    default: always
  login:
    description:
      - Whether the role may log in. New roles default to V(true); omit to keep the current value.
    type: bool
  valid_until:
    description:
      - Password expiry, a timestamp PostgreSQL understands (V(2030-01-01), V(2030-01-01 12:00+02))
        or V(infinity) for none. Omit to keep the current value.
    type: str
  conn_limit:
    description:
      - Maximum concurrent connections of the role; V(-1) for no limit. Omit to keep it.
    type: int
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.store.password_from
  - credops.pgauth.attributes
  - credops.pgauth.attributes.change_module
notes:
  - On RDS a role in C(rds_iam) cannot log in with a password; see M(credops.pgauth.rds_iam_grant).
  - Without C(pg_authid) access the password check is a real login, which shows in the server's
    connection log; a failed check shows as one failed login for the role.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Create app_user with a password (as a SCRAM verifier)
  credops.pgauth.pg_role:
    login_host: db.example.internal
    login_user: admin
    login_password: "{{ admin_password }}"
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-global-bundle.pem
    name: app_user
    password: "{{ app_password }}"
    conn_limit: 50

- name: Set the password that the primary store holds as pending (a rotation's step)
  credops.pgauth.pg_role:
    name: app_user
    password_from:
      store: {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
      stage: pending

- name: Lock a role out without dropping it
  credops.pgauth.pg_role:
    name: old_app
    login: false
    valid_until: "2000-01-01"

- name: Drop a role
  credops.pgauth.pg_role:
    name: old_app
    state: absent
"""

RETURN = r"""
role:
  description: The role after the task (predicted in check mode). Never contains a password.
  returned: always
  type: dict
  sample:
    name: app_user
    exists: true
    can_login: true
    valid_until: null
    conn_limit: 50
    password_hash: scram
    memberships: []
password_changed:
  description: Whether the task set a new password.
  returned: always
  type: bool
password_check:
  description: How the current password was compared (V(pg_authid), V(login), V(new role),
    V(on_create), V(unverifiable)), or null when no password was given.
  returned: always
  type: str
queries:
  description: The statements sent (or, in check mode, that would be sent); passwords masked.
  returned: always
  type: list
  elements: str
  sample: ["ALTER ROLE \"app_user\" WITH PASSWORD '********'"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    admin_connect,
    connect_kwargs,
    describe_target,
    postgres_argument_spec,
    run_pg_module,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    apply,
    check_role_name,
    fetch_role,
    plan_absent,
    plan_present,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    STORE_REF_SPEC,
    read_credential,
)


def run(module: AnsibleModule) -> dict:
    params = module.params
    check_role_name(params["name"])
    if params["password_from"]:
        password = read_credential(params["password_from"], params).password
        if not password:
            raise PgError("the store's credential has no password")
        module.no_log_values.add(password)
        params = dict(params, password=password)
    target = describe_target(connect_kwargs(params))
    conn = admin_connect(params)
    try:
        cur = conn.cursor()
        state = fetch_role(cur, params["name"])
        if params["state"] == "absent":
            plan = plan_absent(cur, state)
        else:
            plan = plan_present(cur, state, params)
        for warning in plan.warnings:
            module.warn(warning)
        if plan.changed and not module.check_mode:
            apply(cur, plan, target)
            state = fetch_role(cur, params["name"])
        facts = state.facts()
        if plan.changed and module.check_mode:  # say what the role would look like
            facts.update(exists=plan.after["exists"], can_login=plan.after.get("login"),
                         conn_limit=plan.after.get("conn_limit"))
        return {
            "changed": plan.changed,
            "role": facts,
            "password_changed": plan.password_changed,
            "password_check": plan.password_check,
            "queries": [text for _stmt, text in plan.statements],
            "diff": {"before": plan.before, "after": plan.after},
        }
    finally:
        conn.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec=postgres_argument_spec(
            with_stores=True,
            name={"type": "str", "required": True, "aliases": ["role"]},
            state={"type": "str", "default": "present", "choices": ["present", "absent"]},
            password={"type": "str", "no_log": True},
            password_from={"type": "dict", "options": STORE_REF_SPEC, "no_log": False},
            update_password={"type": "str", "default": "always", "no_log": False,
                             "choices": ["always", "on_create"]},
            login={"type": "bool"},
            valid_until={"type": "str"},
            conn_limit={"type": "int"},
        ),
        mutually_exclusive=[("password", "password_from")],
        supports_check_mode=True,
    )
    run_pg_module(module, run, f"pg_role {module.params['name']!r}")


if __name__ == "__main__":
    main()
