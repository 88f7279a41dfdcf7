# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The store dict's keys appear twice: for `store` (secret_value, secret_value_info) and
    # for `password_from.store` (pg_role, pg_login_probe).  Sanity needs literal strings;
    # tests/unit/plugins/test_doc_fragments.py keeps both equal to STORE_OPTION_SPEC.
    DOCUMENTATION = r"""
options:
  store:
    description:
      - The store, as one dict; the same dict as an item of C(pgauth_stores).
      - Connection settings in the dict (O(store.region), O(store.url), ...) override the
        module-level AWS and Vault options, so one list can mix regions and Vault servers.
    type: dict
    required: true
    suboptions:
        name:
          description: Label used in reports and error messages.
          type: str
        type:
          description: The kind of store.
          type: str
          required: true
          choices: [aws_secretsmanager, vault_kv2, vault_kv1, file]
        secret_id:
          description: Secrets Manager secret name or ARN.
          type: str
        mount_point:
          description: Vault KV mount (default V(secret) for KV v2, V(kv1) for KV v1).
          type: str
        path:
          description: Vault secret path, or the file's path.
          type: str
        format:
          description:
            - Secrets Manager and Vault, the value's format. V(json) is the RDS-style object
              C({username, password, host, port, dbname, engine}) (unknown keys are kept on
              write), V(password) the bare password, V(dsn) a C(postgresql://) URL (every part
              percent-encoded on write; query parameters such as C(sslmode) kept).
            - File stores, the file's syntax. V(yaml), V(json) or V(dotenv).
            - Defaults to V(json), or V(dotenv) for files.
          type: str
        key:
          description:
            - Vault, the field of the secret that holds a V(password) or V(dsn) value.
            - File, a dotted path (V(database.password)) for yaml/json, or a variable name
              (V(DATABASE_URL)) for dotenv.
          type: str
        value_format:
          description:
            - File stores, what the value at C(key) is. Default is guessed from the
              current value (a mapping is V(json), a C(postgresql://) string V(dsn), else
              V(password)).
          type: str
          choices: [password, dsn, json]
        description:
          description: Secrets Manager, the description of a secret created by this module.
          type: str
        kms_key_id:
          description: Secrets Manager, the KMS key of a secret created by this module.
          type: str
        tags:
          description: Secrets Manager, tags of a secret created by this module.
          type: dict
        backup:
          description:
            - File stores, keep a copy of the file before writing, next to it, named
              C(<file>.<timestamp>.<random>~), with the file's owner, group, mode,
              ACLs and xattrs.
            - A backup holds the old secret, which may still log in (a
              C(alternating_users) rotation keeps the old password valid for the
              other user); clean backups up, or set C(backup_keep).
          type: bool
          default: false
        backup_keep:
          description:
            - File stores with C(backup=true), how many backups of the file to keep; older
              ones are removed after a successful write. Default is to keep every backup.
          type: int
        region:
          description: Overrides O(region) for this store.
          type: str
        endpoint_url:
          description: Overrides O(endpoint_url) for this store.
          type: str
        profile:
          description: Overrides O(profile) for this store.
          type: str
        url:
          description: Overrides O(url) for this store.
          type: str
        namespace:
          description: Overrides O(namespace) for this store.
          type: str
"""

    PASSWORD_FROM = r"""
options:
  password_from:
    description:
      - Read the credential from a store, inside the module, instead of taking a password
        from playbook variables; the secret never passes through them.
      - The module-level AWS and Vault options are used to reach the store; connection
        settings in the store dict override them.
    type: dict
    suboptions:
      store:
        description: The store dict (the same dict as an item of C(pgauth_stores)).
        type: dict
        required: true
        suboptions:
          name:
            description: Label used in reports and error messages.
            type: str
          type:
            description: The kind of store.
            type: str
            required: true
            choices: [aws_secretsmanager, vault_kv2, vault_kv1, file]
          secret_id:
            description: Secrets Manager secret name or ARN.
            type: str
          mount_point:
            description: Vault KV mount (default V(secret) for KV v2, V(kv1) for KV v1).
            type: str
          path:
            description: Vault secret path, or the file's path.
            type: str
          format:
            description:
              - Secrets Manager and Vault, the value's format. V(json) is the RDS-style object
                C({username, password, host, port, dbname, engine}) (unknown keys are kept on
                write), V(password) the bare password, V(dsn) a C(postgresql://) URL (every part
                percent-encoded on write; query parameters such as C(sslmode) kept).
              - File stores, the file's syntax. V(yaml), V(json) or V(dotenv).
              - Defaults to V(json), or V(dotenv) for files.
            type: str
          key:
            description:
              - Vault, the field of the secret that holds a V(password) or V(dsn) value.
              - File, a dotted path (V(database.password)) for yaml/json, or a variable name
                (V(DATABASE_URL)) for dotenv.
            type: str
          value_format:
            description:
              - File stores, what the value at C(key) is. Default is guessed from the
                current value (a mapping is V(json), a C(postgresql://) string V(dsn), else
                V(password)).
            type: str
            choices: [password, dsn, json]
          description:
            description: Secrets Manager, the description of a secret created by this module.
            type: str
          kms_key_id:
            description: Secrets Manager, the KMS key of a secret created by this module.
            type: str
          tags:
            description: Secrets Manager, tags of a secret created by this module.
            type: dict
          backup:
            description:
              - File stores, keep a copy of the file before writing, next to it, named
                C(<file>.<timestamp>.<random>~), with the file's owner, group, mode,
                ACLs and xattrs.
              - A backup holds the old secret, which may still log in (a
                C(alternating_users) rotation keeps the old password valid for the
                other user); clean backups up, or set C(backup_keep).
            type: bool
            default: false
          backup_keep:
            description:
              - File stores with C(backup=true), how many backups of the file to keep; older
                ones are removed after a successful write. Default is to keep every backup.
            type: int
          region:
            description: Overrides O(region) for this store.
            type: str
          endpoint_url:
            description: Overrides O(endpoint_url) for this store.
            type: str
          profile:
            description: Overrides O(profile) for this store.
            type: str
          url:
            description: Overrides O(url) for this store.
            type: str
          namespace:
            description: Overrides O(namespace) for this store.
            type: str
      stage:
        description: Which value of the store.
        type: str
        choices: [current, pending]
        default: current
"""
