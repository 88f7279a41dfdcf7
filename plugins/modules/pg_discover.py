#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_discover
short_description: Find every copy of a role's credential in secret stores and config files
version_added: 0.2.0
description:
  - Read-only. Lists the given scopes (Secrets Manager, Parameter Store, ECS task definitions,
    Lambda environments, Vault/OpenBao KV subtrees, file globs) into candidate stores, reads
    each candidate's credential the way a store dict of O(target) would, and classifies it.
  - V(current) when its password verifies against the role's stored SCRAM verifier (read from
    C(pg_authid) with the admin connection; no login is made) and it names no other user,
    host, port or dbname; V(shared) when it verifies but names another (listed, never in
    vars); V(stale) when it names the role and the target's host explicitly (port and dbname
    equal or absent) but its password does not verify; V(unknown) when it names the role
    without contradicting the target but could not be checked, or names no host and does not
    verify. Anything else is unrelated and only counted. Only current and stale copies go to
    C(vars.pgauth_stores).
  - Where C(pg_authid) is unreadable (an RDS master user), each candidate that names the role
    and the target's host explicitly is checked by one login, at most O(login_rate) per
    second; any other candidate (a host-less copy too) is never sent to the target.
  - Never returns or logs a value; the result names stores only.
options:
  target:
    description:
      - The target, as C(pgauth_target) (C(role), C(host), C(port), C(dbname), ...).
    type: dict
    required: true
  scopes:
    description:
      - Where to look. Each item has C(type) (V(aws_secretsmanager) with C(name_prefixes) and
        C(tags); V(aws_ssm) with C(paths); V(aws_ecs_task_definition) with
        C(family_prefixes) and C(clusters); V(aws_lambda_environment) with
        C(function_prefixes); V(vault_kv2) or V(vault_kv1) with C(mount_point), C(path) and
        C(max_depth); V(file) with C(globs)), and C(max_candidates) (default 500) and
        C(timeout) (seconds, default 60).
      - A scope that cannot be listed is an error entry naming it; the others go on.
    type: list
    elements: dict
    required: true
  login_rate:
    description:
      - Logins per second at most, when the verifier is unreadable.
    type: float
    default: 2
  login_fallback:
    description:
      - Check address-matching candidates by logging in when C(pg_authid) is unreadable.
    type: bool
    default: true
  login_password_from:
    description:
      - A store reference (C(store), C(stage)) holding the admin's password.
    type: dict
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
- name: Find every copy of app_user's password
  credops.pgauth.pg_discover:
    login_host: db.example.internal
    login_user: admin
    login_password: "{{ admin_password }}"
    target: {role: app_user, host: db.example.internal, port: 5432, dbname: app}
    scopes:
      - {type: aws_secretsmanager, name_prefixes: [prod/]}
      - {type: vault_kv2, mount_point: secret, path: apps, max_depth: 3}
      - {type: file, globs: ["/srv/*/.env", "/etc/app/*.properties"]}
  register: found
"""

RETURN = r"""
method:
  description: How passwords were checked, V(verifier), V(login) or V(none).
  returned: always
  type: str
logins:
  description: Logins made (method V(login)).
  returned: always
  type: int
candidates:
  description: The copies found (current, stale, shared, unknown), primary first; no value.
  returned: always
  type: list
  elements: dict
counts:
  description: Candidates per status, unrelated ones included.
  returned: always
  type: dict
skipped:
  description: Values that could not be read (broken JSON, unreadable files), counted.
  returned: always
  type: int
progress:
  description: One line per scope.
  returned: always
  type: list
  elements: str
errors:
  description: Scopes that could not be listed.
  returned: always
  type: list
  elements: str
scope_warnings:
  description: Scopes ended by their bounds, and the like (also shown as warnings).
  returned: always
  type: list
  elements: str
vars:
  description: C(pgauth_target), C(pgauth_stores) (current and stale copies, primary first)
    and C(pgauth_consumers), ready for diagnose and rotate.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.discover import discover
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    fail_if_missing_libs,
    postgres_argument_spec,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    prepare_runbook_params,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=postgres_argument_spec(
            with_stores=True,
            target={"type": "dict", "required": True},
            scopes={"type": "list", "elements": "dict", "required": True},
            login_rate={"type": "float", "default": 2},
            login_fallback={"type": "bool", "default": True},
            login_password_from={"type": "dict", "no_log": False},
        ),
        supports_check_mode=True,
    )
    fail_if_missing_libs(module)
    try:
        params = prepare_runbook_params(module.params, module.no_log_values.add)
        result = discover(params, module.no_log_values.add)
    except PgauthError as err:
        module.fail_json(msg=f"pg_discover: {err}", changed=False)
    for warning in result["scope_warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
