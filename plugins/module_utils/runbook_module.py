# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule of the modules that take consumers (pg_auth_facts, pg_rotate).

A consumer item is a dict of a type-dependent shape, so no_log cannot be declared on its
secrets (a pgbouncer admin password, a health URL's user:password).  Any result, the one of
an argument error included, carries invocation.module_args: they are registered for masking
as soon as the parameters are loaded, before validation.
"""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.consumers import consumer_secrets


def secrets_in_params(params: dict) -> set[str]:
    """The secrets inside a runbook module's raw parameters that no option's no_log covers."""
    return consumer_secrets((params or {}).get("consumers"))


class RunbookModule(AnsibleModule):
    def _load_params(self):
        super()._load_params()
        self.no_log_values.update(secrets_in_params(self.params))
