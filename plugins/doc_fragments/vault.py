# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Vault or OpenBao address. Falls back to E(VAULT_ADDR) (or E(BAO_ADDR)).
      - Must be C(https://), or C(http://) to this machine, unless O(insecure_endpoint_ok);
        the same holds for a store's C(url), which receives the token (or AppRole secret id).
    type: str
    aliases: [vault_addr]
  token:
    description:
      - Vault token for O(auth_method=token). Falls back to E(VAULT_TOKEN) (or E(BAO_TOKEN)).
    type: str
  auth_method:
    description:
      - How to authenticate to Vault.
    type: str
    choices: [token, approle]
    default: token
  role_id:
    description:
      - AppRole role id for O(auth_method=approle).
    type: str
  secret_id:
    description:
      - AppRole secret id for O(auth_method=approle).
    type: str
  namespace:
    description:
      - Vault Enterprise / OpenBao namespace. Falls back to E(VAULT_NAMESPACE).
    type: str
  ca_cert:
    description:
      - CA bundle for Vault's TLS certificate. Falls back to E(VAULT_CACERT).
    type: path
    aliases: [cacert]
  validate_certs:
    description:
      - Verify Vault's TLS certificate.
    type: bool
    default: true
  vault_timeout:
    description:
      - Seconds to wait for Vault.
    type: int
    default: 10
  insecure_endpoint_ok:
    description:
      - Allow an AWS C(endpoint_url) or Vault C(url) that is neither C(https://) nor plain
        C(http://) to this machine (C(127.0.0.0/8), C(::1), C(localhost)). Without it such an
        endpoint is refused before anything is sent, naming the endpoint, where it came from
        (this option, E(AWS_ENDPOINT_URL), E(VAULT_ADDR), a profile, or a store's own
        C(endpoint_url) or C(url)) and the store.
      - The check applies to the endpoint wherever it came from, because the endpoint receives
        the module's credentials (AWS keys and request signatures, the Vault token or AppRole
        secret id) and the secrets read or written. A store's C(endpoint_url) or C(url)
        override receives them too, so whoever may edit a store dict may choose where they go;
        this is a module option, not a store key, so that the same person cannot also allow
        cleartext.
      - Turn it on only for a test server on another host or a network you trust with these
        credentials in cleartext. amazon.aws and community.hashi_vault have no such check.
    type: bool
    default: false
requirements:
  - hvac (for Vault stores)
"""
