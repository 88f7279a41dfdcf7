#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_login_probe
short_description: Try one PostgreSQL login and say why it failed
version_added: 0.1.0
description:
  - Opens one connection with the given credential, closes it, and reports the outcome.
  - A failed login is a result, not a module failure (unless O(fail_on_error=true)), so
    diagnose can probe every credential and compare.
  - The failure is classified into a finding id of the credops.pgauth catalogue,
    for example V(store_password_mismatch), V(iam_role_blocks_password), V(tls_required).
  - The password is never returned, logged or shown in diffs.
  - With O(password_from), the probe uses the store's credential the way the application
    does, and that credential only. Its username, host, port, dbname and sslmode win where
    it has them; O(user), O(login_host), O(login_port) and O(login_db) fill the gaps.
    O(login_user) and O(login_password) (the admin's) are never used for it; a store with no
    password is probed with no password, so an endpoint written into an application's
    config never receives the admin's secret.
  - A credential with C(auth=iam) is probed with a fresh IAM token, minted only when the
    store's host and port are the configured O(login_host) and O(login_port); otherwise the
    probe fails with category V(store_target_mismatch) and no token is made.
  - Over anything but O(ssl_mode=verify-full), the probe refuses a server's request for the
    password in cleartext (libpq's C(require_auth=!password)); SCRAM logins work as usual.
    IAM tokens, which only travel in cleartext, need V(verify-full) unless
    O(iam_allow_unverified_tls=true).
options:
  user:
    description:
      - Role to log in as. Defaults to O(login_user).
    type: str
  password:
    description:
      - Password to try. Defaults to O(login_password) (not with O(password_from)).
      - Ignored with O(login_iam=true), which tries a fresh IAM token for O(user) instead.
    type: str
  fail_on_error:
    description:
      - Fail the task when the login does not succeed (for verify runbooks).
    type: bool
    default: false
extends_documentation_fragment:
  - credops.pgauth.postgres
  - credops.pgauth.aws
  - credops.pgauth.vault
  - credops.pgauth.store.password_from
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
notes:
  - Server messages are matched in English; set C(lc_messages) to C(C) or C(en_US) on the server.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Does app_user's password work?
  credops.pgauth.pg_login_probe:
    login_host: db.example.internal
    login_db: appdb
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-ca.pem
    user: app_user
    password: "{{ candidate_password }}"
  register: pgauth_probe

- name: Show why it failed
  ansible.builtin.debug:
    msg: "{{ pgauth_probe.category }}: {{ pgauth_probe.message }}"
  when: not pgauth_probe.ok

- name: Does the credential in Secrets Manager log in, as the app would use it?
  credops.pgauth.pg_login_probe:
    password_from:
      store: {name: aws-app, type: aws_secretsmanager, secret_id: prod/app_user}
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-global-bundle.pem

- name: Can app_user log in with an IAM token (needs rds_iam and TLS)?
  credops.pgauth.pg_login_probe:
    login_host: mydb.abc123.eu-west-1.rds.amazonaws.com
    login_db: appdb
    ssl_mode: verify-full
    ssl_rootcert: /etc/ssl/rds-global-bundle.pem
    user: app_user
    login_iam: true
    region: eu-west-1
"""

RETURN = r"""
ok:
  description: Whether the login succeeded.
  returned: always
  type: bool
applicable:
  description:
    - V(false) when O(password_from) is a store that holds a verifier of the password (a
      C(pgbouncer_userlist) file store), not a password; nothing was tried, so this is no
      failed login. Such a store is checked by agreement with the other stores.
  returned: when O(password_from) holds a verifier
  type: bool
category:
  description:
    - V(ok), a finding id from the credops.pgauth catalogue, V(unknown), or
      V(not_applicable) (see RV(applicable)).
  returned: always
  type: str
  sample: store_password_mismatch
sqlstate:
  description: The SQLSTATE the server sent for the failure (inferred from its message).
  returned: always
  type: str
  sample: 28P01
message:
  description: The server's FATAL message, without the client's connection prefix.
  returned: always
  type: str
  sample: password authentication failed for user "app_user"
latency_ms:
  description: Time to connect (or to fail), in milliseconds.
  returned: always
  type: float
tls:
  description: Whether the successful connection used TLS.
  returned: when the login succeeded
  type: bool
server_version:
  description: The server's version string.
  returned: when the login succeeded
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    PgError,
    describe_target,
    login_kwargs,
    postgres_argument_spec,
    probe,
    run_pg_module,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    HOLDS_VERIFIER,
    StoreError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    STORE_REF_SPEC,
    with_store_credential,
)


def run(module: AnsibleModule) -> dict:
    params = module.params
    if params["password_from"]:
        # the store's credential only: never the admin's login_password (see store.py)
        try:
            params = with_store_credential(params, params["password_from"],
                                           module.no_log_values.add)
        except StoreError as err:
            if err.code != HOLDS_VERIFIER:
                raise
            # nothing to log in with: not applicable, never a failed login
            return {"changed": False, "ok": False, "applicable": False,
                    "category": "not_applicable", "sqlstate": None, "message": str(err),
                    "latency_ms": 0.0}
        password = params["password"]
    else:
        password = params["password"] if params["password"] is not None \
            else params["login_password"]
    user = params["user"] or params["login_user"]
    if not user:
        raise PgError("give user (or login_user / PGUSER)")
    result = probe(params, user, password).as_dict()
    result.pop("authenticated")
    if result.get("warning"):
        module.warn(result["warning"])
    if params["fail_on_error"] and not result["ok"]:
        target = describe_target(login_kwargs(params, user, None))
        module.fail_json(msg=f"pg_login_probe: login as {target} failed ({result['category']}): "
                             f"{result['message']}", changed=False, **result)
    return {"changed": False, **result}


def main() -> None:
    module = AnsibleModule(
        argument_spec=postgres_argument_spec(
            with_stores=True,
            user={"type": "str"},
            password={"type": "str", "no_log": True},
            password_from={"type": "dict", "options": STORE_REF_SPEC, "no_log": False},
            fail_on_error={"type": "bool", "default": False},
        ),
        mutually_exclusive=[("password", "password_from")],
        supports_check_mode=True,
    )
    run_pg_module(module, run, "pg_login_probe")


if __name__ == "__main__":
    main()
