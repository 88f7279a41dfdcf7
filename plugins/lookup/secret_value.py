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
  stage:
    description: Which value to read.
    type: str
    choices: [current, pending]
    default: current
  region:
    description: AWS region.
    type: str
    env: [{name: AWS_REGION}, {name: AWS_DEFAULT_REGION}]
  profile:
    description: AWS profile.
    type: str
    env: [{name: AWS_PROFILE}]
  endpoint_url:
    description: AWS endpoint URL.
    type: str
    env: [{name: AWS_ENDPOINT_URL}]
  access_key:
    description: AWS access key id.
    type: str
    env: [{name: AWS_ACCESS_KEY_ID}]
  secret_key:
    description: AWS secret access key.
    type: str
    env: [{name: AWS_SECRET_ACCESS_KEY}]
  session_token:
    description: AWS session token.
    type: str
    env: [{name: AWS_SESSION_TOKEN}]
  url:
    description: Vault address.
    type: str
    env: [{name: VAULT_ADDR}]
  token:
    description: Vault token.
    type: str
    env: [{name: VAULT_TOKEN}]
  namespace:
    description: Vault namespace.
    type: str
    env: [{name: VAULT_NAMESPACE}]
  ca_cert:
    description: CA bundle for Vault's TLS certificate.
    type: str
    env: [{name: VAULT_CACERT}]
  validate_certs:
    description: Verify Vault's TLS certificate.
    type: bool
    default: true
  insecure_endpoint_ok:
    description:
      - Allow an AWS O(endpoint_url) or Vault O(url) (or a store's C(endpoint_url) or C(url))
        that is neither C(https://) nor plain C(http://) to this machine (C(127.0.0.0/8),
        C(::1), C(localhost)). Without it such an endpoint is refused before the credentials
        are sent, with an error naming the store and the endpoint.
      - A store's C(endpoint_url) or C(url) receives these options' credentials; this is a
        lookup option, not a store key, so whoever writes the store dict cannot also allow
        cleartext.
    type: bool
    default: false
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
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError

OPTION_NAMES = ("region", "profile", "endpoint_url", "access_key", "secret_key",
                "session_token", "url", "token", "namespace", "ca_cert", "validate_certs",
                "insecure_endpoint_ok")


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
                    values.append(build_dsn(cred))
                else:
                    values.append(getattr(cred, field))
            except (StoreError, CredentialError) as err:
                raise AnsibleLookupError(f"secret_value: {err}") from None
        return values
