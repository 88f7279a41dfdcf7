#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_grant
short_description: Grant or revoke rds_iam membership, which switches a role to IAM logins
version_added: 0.1.0
description:
  - On RDS for PostgreSQL and Aurora PostgreSQL, members of C(rds_iam) authenticate with IAM
    auth tokens. A member can no longer log in with a password (the server answers
    C(PAM authentication failed)); a non-member sent a token fails with
    C(password authentication failed).
  - Idempotent, supports check mode and diff. Refuses a role that does not exist.
options:
  role:
    description:
      - The login role to change.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - V(present) grants C(rds_iam), V(absent) revokes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.attributes
  - credops.pgauth.attributes.change_module
notes:
  - Open sessions are not affected, because PostgreSQL authenticates only when a connection starts.
  - IAM logins also need the instance's IAM flag and an IAM policy allowing C(rds-db:connect);
    see the diagnose runbook.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Move app_user to IAM authentication
  credops.pgauth.rds_iam_grant:
    login_host: mydb.abc123.eu-west-1.rds.amazonaws.com
    login_user: admin
    login_password: "{{ admin_password }}"
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-global-bundle.pem
    role: app_user

- name: Back to passwords
  credops.pgauth.rds_iam_grant:
    role: app_user
    state: absent
"""

RETURN = r"""
member:
  description: Whether the role is a direct member of C(rds_iam) after the task (predicted in
    check mode).
  returned: always
  type: bool
queries:
  description: The statement sent, or that would be sent in check mode.
  returned: always
  type: list
  elements: str
  sample: ["GRANT \"rds_iam\" TO \"app_user\""]
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
    plan_membership,
    role_exists,
)

IAM_GROUP = "rds_iam"


def run(module: AnsibleModule) -> dict:
    params = module.params
    role, want = params["role"], params["state"] == "present"
    check_role_name(role)
    target = describe_target(connect_kwargs(params))
    conn = admin_connect(params)
    try:
        cur = conn.cursor()
        if not role_exists(cur, role):
            raise PgError(f"role {role!r} does not exist on {target}")
        if not role_exists(cur, IAM_GROUP):
            raise PgError(f"this server has no {IAM_GROUP!r} role: it is not RDS/Aurora "
                          "(or the lab), so IAM authentication is not available")
        plan = plan_membership(cur, role, IAM_GROUP, want)
        if plan.changed and want:
            module.warn(f"{role!r} is now in {IAM_GROUP}: on RDS it can no longer log in with a "
                        "password, only with IAM auth tokens over TLS")
        if plan.changed and not module.check_mode:
            apply(cur, plan, target)
        return {"changed": plan.changed, "member": want,
                "queries": [text for _stmt, text in plan.statements],
                "diff": {"before": plan.before, "after": plan.after}}
    finally:
        conn.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec=postgres_argument_spec(
            role={"type": "str", "required": True, "aliases": ["name"]},
            state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        ),
        supports_check_mode=True,
    )
    run_pg_module(module, run, f"rds_iam_grant {module.params['role']!r}")


if __name__ == "__main__":
    main()
