# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Vault or OpenBao address. Falls back to E(VAULT_ADDR) (or E(BAO_ADDR)).
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
requirements:
  - hvac (for Vault stores)
"""
