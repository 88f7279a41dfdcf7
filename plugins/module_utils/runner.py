# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared tail of every module: run, turn our errors into fail_json, drop the diff
when it was not asked for, exit."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AwsError
from ansible_collections.credops.pgauth.plugins.module_utils.logsources import LogSourceError
from ansible_collections.credops.pgauth.plugins.module_utils.pg import PgError
from ansible_collections.credops.pgauth.plugins.module_utils.store import StoreError

# Our errors: their messages already name the server, store, role or log source at fault.
MODULE_ERRORS = (PgError, StoreError, AwsError, LogSourceError)


def run_module(module, run, label: str) -> None:
    try:
        result = run(module)
    except MODULE_ERRORS as err:
        module.fail_json(msg=f"{label}: {err}" if label else str(err), changed=False)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
