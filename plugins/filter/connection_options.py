# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: connection_options
short_description: The runbooks' shared inputs as options of the credops.pgauth modules
version_added: 0.1.0
description:
  - Maps C(pgauth_target), C(pgauth_admin), C(pgauth_aws) and C(pgauth_vault) to the PostgreSQL,
    AWS and Vault options the modules share (C(login_host), C(login_user), C(ssl_mode),
    C(region), C(url), ...), for C(module_defaults) of the C(credops.pgauth.postgres) group.
  - Options that are not given are left out, so the C(PG*), C(AWS_*) and C(VAULT_*)
    environment fallbacks still apply.
options:
  _input:
    description: C(pgauth_target).
    type: dict
    required: true
  admin:
    description:
      - C(pgauth_admin) (C(user), C(password) or C(store), C(dbname), C(host), C(port),
        C(sslmode), C(iam)).
    type: dict
  aws:
    description: C(pgauth_aws).
    type: dict
  vault:
    description: C(pgauth_vault).
    type: dict
  connect_timeout:
    description: Seconds to wait for each PostgreSQL connection.
    type: int
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Every module of the block logs in the same way
  module_defaults:
    group/credops.pgauth.postgres: >-
      {{ pgauth_target | credops.pgauth.connection_options(pgauth_admin, pgauth_aws,
         pgauth_vault, pgauth_connect_timeout) }}
  block:
    - name: Facts
      credops.pgauth.pg_auth_facts:
        role: "{{ pgauth_target.role }}"
"""

RETURN = r"""
_value:
  description: Module options.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils.runbook_options import (
    connection_options as build,
)


def connection_options(target, admin=None, aws=None, vault=None, connect_timeout=None) -> dict:
    for label, value in (("target", target), ("admin", admin), ("aws", aws), ("vault", vault)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError(f"connection_options: {label} must be a dict")
    return build(target, admin, aws, vault, connect_timeout)


class FilterModule:
    def filters(self):
        return {"connection_options": connection_options}
