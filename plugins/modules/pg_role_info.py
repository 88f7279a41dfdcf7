#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_role_info
short_description: Everything about a login role and its server that explains a failed login
version_added: 0.1.0
description:
  - Read-only, one connection. Returns the role's attributes (exists, can_login, valid_until and
    whether it is past, the password's hash type, conn_limit and current connections,
    memberships including C(rds_iam)), its sessions with their ages, server facts (version,
    C(password_encryption), ssl, max_connections, whether it looks like RDS) and the
    C(pg_hba.conf) rules that could match the role (when the login user may read them).
  - The password hash type needs C(pg_authid) access; otherwise it is V(unknown).
options:
  role:
    description:
      - The role to describe (case-sensitive).
    type: str
    required: true
    aliases: [name]
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Why can app_user not log in?
  credops.pgauth.pg_role_info:
    login_host: db.example.internal
    login_user: admin
    login_password: "{{ admin_password }}"
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-global-bundle.pem
    role: app_user
  register: pgauth_role_info

- name: Show the role's state
  ansible.builtin.debug:
    var: pgauth_role_info.role
"""

RETURN = r"""
role:
  description: The role's attributes. No password or verifier is ever returned.
  returned: always
  type: dict
  contains:
    name: {description: Role name., type: str, returned: always}
    exists: {description: Whether the role exists., type: bool, returned: always}
    can_login: {description: The LOGIN attribute., type: bool, returned: when the role exists}
    valid_until:
      description: Password expiry in UTC, or null for none.
      type: str
      returned: always
    expired: {description: Whether valid_until is in the past., type: bool, returned: always}
    password_set:
      description: Whether a password is stored; null when pg_authid is unreadable.
      type: bool
      returned: always
    password_hash:
      description: V(scram), V(md5), V(plain), V(none), or V(unknown) when unreadable.
      type: str
      returned: always
    conn_limit: {description: CONNECTION LIMIT (-1 none)., type: int, returned: always}
    connections: {description: Current sessions of the role., type: int, returned: always}
    memberships: {description: Direct memberships., type: list, elements: str, returned: always}
    member_of_all:
      description: Every group, direct or inherited.
      type: list
      elements: str
      returned: always
    rds_iam_member: {description: Whether the role is in rds_iam., type: bool, returned: always}
server:
  description: Server facts. C(reserved_connections) is C(superuser_reserved_connections) plus
    C(reserved_connections) (PostgreSQL 16); C(connections_by_user) lists who holds the client
    connections, most first, at most five users.
  returned: always
  type: dict
  sample:
    version: "15.18"
    version_num: 150018
    password_encryption: scram-sha-256
    ssl: true
    max_connections: 200
    reserved_connections: 3
    connections: 4
    connections_by_user: [{user: app_user, connections: 3}, {user: postgres, connections: 1}]
    rds_like: true
    has_rds_iam_role: true
    login_user: postgres
    login_user_is_superuser: true
    hba_readable: true
sessions:
  description: The role's sessions (other than this one) with their ages in seconds.
  returned: always
  type: list
  elements: dict
hba_rules:
  description: Rows of C(pg_hba_file_rules) whose user column matches the role, C(all) or one of
    its groups; null when the login user may not read them.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    admin_connect,
    postgres_argument_spec,
    run_pg_module,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_info import gather
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import check_role_name


def run(module: AnsibleModule) -> dict:
    check_role_name(module.params["role"])
    conn = admin_connect(module.params)
    try:
        return {"changed": False, **gather(conn.cursor(), module.params["role"])}
    finally:
        conn.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec=postgres_argument_spec(
            role={"type": "str", "required": True, "aliases": ["name"]},
        ),
        supports_check_mode=True,
    )
    run_pg_module(module, run, f"pg_role_info {module.params['role']!r}")


if __name__ == "__main__":
    main()
