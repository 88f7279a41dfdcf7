#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: secret_value
short_description: Write a database credential to a secret store, stage it, promote it
version_added: 0.1.0
description:
  - Writes a credential (or only its password) to AWS Secrets Manager, Vault/OpenBao KV v2 or
    v1, or an application config file (YAML, JSON, dotenv, properties, ini, TOML, pgpass, a
    Kubernetes Secret manifest), in the store's format.
  - Idempotent by meaning, not by bytes. Key order, spacing and URL-encoding choices do not
    count as a change, and an equal value writes no new version.
  - O(stage=pending) stages a value for a rotation (Secrets Manager C(AWSPENDING); for Vault a
    sibling path C(<path>__pgauth_pending)); O(promote=true) makes it current the way Secrets
    Manager rotation does. File stores have no pending stage.
  - O(generate) makes a random password inside the module and writes it without ever returning
    it. With O(stage=pending), an existing pending value is kept, so a resumed rotation never
    generates a second password.
  - Check mode writes nothing; diff shows the credential with the password masked.
options:
  state:
    description:
      - V(present) writes; V(absent) deletes the secret (Secrets Manager keeps it 7 days for
        recovery, so its name stays taken), or with O(stage=pending) discards the
        pending value (a rotation's rollback).
    type: str
    choices: [present, absent]
    default: present
  value:
    description:
      - The credential fields to write (V(username), V(password), V(host), V(port),
        V(dbname), V(auth), V(sslmode)), merged into what the store holds; or a string, the
        password alone.
    type: raw
  stage:
    description:
      - Where to write.
    type: str
    choices: [current, pending]
    default: current
  promote:
    description:
      - Make the pending value current, then remove the pending stage.
    type: bool
    default: false
  generate:
    description:
      - Generate the password in the module instead of taking it from O(value).
    type: dict
extends_documentation_fragment:
  - credops.pgauth.store
  - credops.pgauth.generate
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.attributes
  - credops.pgauth.attributes.change_module
notes:
  - Secrets Manager writes use a random C(ClientRequestToken) (botocore resends it on its own
    retries), and a write first reads the stage; if it already holds this value, no second
    version is made. A version id is never derived from the value, which would let anyone
    who can call DescribeSecret test password guesses offline.
  - KV v2 writes use check-and-set; a concurrent change makes the task fail, naming the store.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Stage a new generated password for app_user in Secrets Manager
  credops.pgauth.secret_value:
    store: {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
    stage: pending
    generate: {length: 32}

- name: Promote it once the database has it
  credops.pgauth.secret_value:
    store: {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
    promote: true

- name: Put a full credential in Vault
  credops.pgauth.secret_value:
    store: {name: vault-app, type: vault_kv2, mount_point: secret, path: app/db}
    value:
      username: app_user
      password: "{{ new_password }}"
      host: db.example.internal
      port: 5432
      dbname: appdb
  no_log: true

- name: The new password in a Spring properties file whose URL, user and password are three keys
  credops.pgauth.secret_value:
    store:
      name: spring
      type: file
      format: properties
      path: /srv/app/application.properties
      keys: {password: spring.datasource.password, username: spring.datasource.username}
    value: {password: "{{ new_password }}"}
  no_log: true

- name: Rebuild the app's DATABASE_URL (URL-encoded) with the new password
  credops.pgauth.secret_value:
    store: {name: app-env, type: file, path: /srv/app/.env, format: dotenv, key: DATABASE_URL}
    value: "{{ new_password }}"
  no_log: true
"""

RETURN = r"""
store:
  description: The store's name.
  returned: always
  type: str
stage:
  description: The stage written or promoted to.
  returned: always
  type: str
version:
  description: The version id after the task (Secrets Manager version id, Vault KV v2 version
    number, a file's modification time in ns; null for KV v1).
  returned: always
  type: str
previous_version:
  description: The version id before the task.
  returned: when writing
  type: str
generated:
  description: Whether a password was generated.
  returned: when writing
  type: bool
pending_exists:
  description: Whether a pending value exists after the task (an existing one is kept).
  returned: always
  type: bool
promoted:
  description: Whether a pending value was made current.
  returned: with promote
  type: bool
credential:
  description: The credential written, without the password (C(password_set) says whether
    there is one).
  returned: when writing
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.runner import run_module
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import (
    GENERATE_SPEC,
    promote,
    remove,
    set_value,
    unmask_public_fields,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    fail_if_store_libs_missing,
    store_argument_spec,
)


def run(module: AnsibleModule) -> dict:
    params = module.params
    store = Store(params["store"], params)
    if params["promote"]:
        result = promote(store, module.check_mode)
    elif params["state"] == "absent":
        result = remove(store, params["stage"], module.check_mode)
    else:
        result = set_value(store, params, module.check_mode, module.no_log_values.add)
    for warning in store.warnings:
        module.warn(warning)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=store_argument_spec(
            state={"type": "str", "default": "present", "choices": ["present", "absent"]},
            value={"type": "raw", "no_log": True},
            stage={"type": "str", "default": "current", "choices": ["current", "pending"]},
            promote={"type": "bool", "default": False},
            generate={"type": "dict", "options": GENERATE_SPEC},
        ),
        mutually_exclusive=[("promote", "value"), ("promote", "generate")],
        supports_check_mode=True,
    )
    fail_if_store_libs_missing(module)
    unmask_public_fields(module.no_log_values, module.params["value"])
    run_module(module, run, "")


if __name__ == "__main__":
    main()
