# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: secret_value
short_description: Read a credential (or one field of it) from a secret store
version_added: 0.1.0
description:
  - Reads each store dict given as a term (the same dict as in C(pgauth_stores)) and returns
    one field of its credential, for templating application configs on the controller.
  - Reading a secret into a variable makes it yours to protect; set C(no_log) on tasks that
    use it. To check or change a database password, prefer the modules, which read stores
    themselves.
options:
  _terms:
    description: Store dicts.
    type: list
    elements: dict
    required: true
  field:
    description: What to return. V(credential) is the whole dict (with the password).
    type: str
    choices: [password, username, host, port, dbname, dsn, credential]
    default: password
  dialect:
    description:
      - With O(field=dsn), the connection string's dialect, as in
        P(credops.pgauth.pg_dsn#filter) (V(url), V(sqlalchemy+asyncpg), V(jdbc), V(keyword), ...).
      - Default, the dialect of the store's own connection string when it holds one, else V(url).
    type: str
  stage:
    description: Which value to read.
    type: str
    choices: [current, pending]
    default: current
extends_documentation_fragment:
  - credops.pgauth.plugin_connection
notes:
  - The AWS and Vault options, their environment variables and their order are those of the
    modules (first one set wins, E(VAULT_ADDR) before E(BAO_ADDR)).
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Template the app's config from Secrets Manager
  ansible.builtin.template:
    src: app.conf.j2
    dest: /etc/app/app.conf
    mode: "0600"
  vars:
    db_url: "{{ lookup('credops.pgauth.secret_value', pgauth_stores[0], field='dsn') }}"
    jdbc_url: "{{ lookup('credops.pgauth.secret_value', pgauth_stores[0], field='dsn',
                         dialect='jdbc') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One value per store.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    CredentialError,
    build_dsn,
)
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    AWS_OPTIONS,
    ENDPOINT_OPTIONS,
    VAULT_OPTIONS,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError

# the module options of the same names (doc fragment credops.pgauth.plugin_connection)
OPTION_NAMES = (*AWS_OPTIONS, *VAULT_OPTIONS, *ENDPOINT_OPTIONS)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        options = {name: self.get_option(name) for name in OPTION_NAMES}
        field, stage = self.get_option("field"), self.get_option("stage")
        values = []
        for term in terms:
            if not isinstance(term, dict):
                raise AnsibleLookupError("secret_value: each term must be a store dict")
            try:
                cred, _stored = Store(term, options).read(stage)
                if cred is None:
                    raise AnsibleLookupError(f"secret_value: store {term.get('name')!r} has no "
                                             f"{stage} value")
                if field == "credential":
                    values.append({**cred.public(), "password": cred.password})
                elif field == "dsn":
                    values.append(build_dsn(cred, self.get_option("dialect")))
                else:
                    values.append(getattr(cred, field))
            except (StoreError, CredentialError) as err:
                raise AnsibleLookupError(f"secret_value: {err}") from None
        return values
