#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: secret_value_info
short_description: Read a database credential from a secret store, without revealing it
version_added: 0.1.0
description:
  - Reads the credential a store holds (Secrets Manager, Vault/OpenBao KV, a config file) and
    returns it without the password. Instead it says whether the password looks like a
    placeholder (V(DB), V(changeme), empty or short), its length and, with
    O(fingerprint_key), a keyed hash so stores can be compared without showing the secret.
  - Also returns the version, its stages, when it last changed and whether a pending value
    (a rotation in progress) exists.
options:
  stage:
    description:
      - Which value to read.
    type: str
    choices: [current, pending]
    default: current
  fingerprint_key:
    description:
      - Key for C(password_fingerprint), an HMAC-SHA256 of the password. Use one random key
        for all the stores you compare in a run; without it no fingerprint is returned.
      - Whoever knows the key can test password guesses against a fingerprint offline, so
        the key must be random, made for the run and kept secret (never written in a
        playbook); at least 32 characters, such as
        C({{ lookup('ansible.builtin.password', '/dev/null', chars=['hexdigits'], length=64) }}).
    type: str
  include_password:
    description:
      - Also return the password in C(credential.password). Set C(no_log) on the task.
        Prefer modules that read the store themselves, such as M(credops.pgauth.pg_role).
    type: bool
    default: false
  fail_on_error:
    description:
      - With V(false), an unreadable store is a result (C(readable=false) and C(error)) instead
        of a failed task, so diagnose can report it.
    type: bool
    default: true
extends_documentation_fragment:
  - credops.pgauth.store
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: What does the app's secret say?
  credops.pgauth.secret_value_info:
    store: {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
    fingerprint_key: "{{ pgauth_run_key }}"
  register: pgauth_secret
"""

RETURN = r"""
store:
  description: The store's name.
  returned: always
  type: str
readable:
  description: Whether the store could be read.
  returned: always
  type: bool
error:
  description: Why it could not be read (with O(fail_on_error=false)).
  returned: when not readable
  type: str
exists:
  description: Whether a value exists at the stage.
  returned: when readable
  type: bool
credential:
  description:
    - The credential without the password (unless O(include_password)).
    - For a connection string, C(dialect) says which (V(url), V(sqlalchemy+asyncpg), V(jdbc),
      V(keyword), ...), and C(sslmode) is the value of that dialect's TLS parameter.
  returned: when readable
  type: dict
  sample: {username: app_user, host: db.example.internal, port: 5432, dbname: appdb,
           auth: null, sslmode: verify-full, password_set: true}
placeholder:
  description: Whether the password is empty, a placeholder word or shorter than 8 characters.
  returned: when a value exists
  type: bool
dsn_rejected:
  description:
    - For a connection string, the parameters its own client refuses (C(sslmode) in a
      C(postgresql+asyncpg://) URL, where asyncpg reads C(ssl)), each with C(parameter),
      C(dialect) and C(reason); the diagnose runbook reports them as C(store_dsn_invalid).
  returned: when the value is a connection string
  type: list
  elements: dict
holds_verifier:
  description:
    - V(true) when the store holds a verifier of the password (a SCRAM-SHA-256 or md5
      verifier in a C(pgbouncer_userlist) file store), not the password. The verifier is
      never returned; with O(fingerprint_key) there is no C(password_fingerprint) (a run of
      M(credops.pgauth.pg_auth_facts) gives it the fingerprint of the password that
      verifies against it).
  returned: when the store holds a verifier
  type: bool
password_length:
  description: Length of the password.
  returned: when a value exists
  type: int
password_fingerprint:
  description: HMAC-SHA256 of the password with O(fingerprint_key).
  returned: when a value exists and O(fingerprint_key) is given
  type: str
version:
  description: Version id of the value read.
  returned: when readable
  type: str
stages:
  description: Stages of that version (Secrets Manager labels).
  returned: when readable
  type: list
  elements: str
changed_at:
  description: When the value last changed (ISO 8601), where the store records it.
  returned: when readable
  type: str
pending_exists:
  description: Whether a pending value exists (a rotation in progress).
  returned: when readable and O(stage=current)
  type: bool
deleted:
  description: Vault KV v2, whether the latest version is soft-deleted.
  returned: when readable
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.runner import run_module
from ansible_collections.credops.pgauth.plugins.module_utils.secret_ops import describe
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    fail_if_store_libs_missing,
    store_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=store_argument_spec(
            stage={"type": "str", "default": "current", "choices": ["current", "pending"]},
            fingerprint_key={"type": "str", "no_log": True},
            include_password={"type": "bool", "default": False, "no_log": False},
            fail_on_error={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    fail_if_store_libs_missing(module)
    run_module(module, run, "")


# a key shorter than this is a word someone chose, not a random one made for the run
MIN_FINGERPRINT_KEY = 32


def run(module: AnsibleModule) -> dict:
    params = module.params
    key = params["fingerprint_key"]
    if key is not None and (len(key) < MIN_FINGERPRINT_KEY or len(set(key)) < 8):
        module.fail_json(msg=f"fingerprint_key must be a random key of at least "
                             f"{MIN_FINGERPRINT_KEY} characters made for this run: with a key "
                             "that can be guessed, the fingerprint lets anyone test password "
                             "guesses offline")
    try:
        store = Store(params["store"], params)
        return {"changed": False, **describe(store, params["stage"], params["fingerprint_key"],
                                             params["include_password"])}
    except StoreError as err:
        if params["fail_on_error"]:
            raise
        return {"changed": False, "readable": False, "error": str(err),
                "store": params["store"].get("name") or params["store"]["type"]}


if __name__ == "__main__":
    main()
