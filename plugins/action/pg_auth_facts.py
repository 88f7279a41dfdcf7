# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_auth_facts: the module's body run inside the task's worker process where a module
process would only be this process started again (plugin_utils/in_process.py), the module
as usual everywhere else.

This file is also imported where it pays: ansible-playbook's own process imports a task's
action plugin before it forks the task's worker per host.  What the workers then need (the
facts module_utils with psycopg2 and botocore, the filters of module_defaults and of the
report, the report action, ansible's builtin filters) is imported here once, and every
forked worker inherits it instead of importing it again (issue 20)."""
from __future__ import annotations

import contextlib

from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import filter_loader

# the imports are the point: they fill sys.modules, where the plugin loader looks first
from ansible_collections.credops.pgauth.plugins.action import report
from ansible_collections.credops.pgauth.plugins.filter import (
    connection_options,
    findings,
    health_requests,
    pg_dsn,
    report_host_dir,
    verification,
)
from ansible_collections.credops.pgauth.plugins.module_utils import facts_task
from ansible_collections.credops.pgauth.plugins.module_utils.pg import run_pg_module
from ansible_collections.credops.pgauth.plugins.module_utils.runbook_module import secrets_in_params
from ansible_collections.credops.pgauth.plugins.plugin_utils.in_process import (
    run_module_body,
    runs_here,
)

# named here so the imports are used: being in sys.modules before the fork is their purpose
PRELOADED = (report, connection_options, findings, health_requests, pg_dsn, report_host_dir,
             verification)


def _preload_builtin_filters() -> None:
    """ansible.builtin's filter files (combine, dict2items, ...), loaded by the loader itself
    (it names them by path): one resolved name loads them all."""
    # an optimisation: when it fails, the worker loads them as before
    with contextlib.suppress(Exception):
        filter_loader.get("ansible.builtin.combine")


_preload_builtin_filters()


def _preload_aws() -> None:
    """botocore, imported lazily by the stores that need it, once here for every worker:
    most fleets read Secrets Manager."""
    with contextlib.suppress(ImportError):
        import botocore.session  # noqa: F401


_preload_aws()


class ActionModule(NormalAction):
    """The module's body here when that is the same as a module process, else the module."""

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        if not runs_here(self, task_vars):
            return super().run(tmp, task_vars)
        result = super(NormalAction, self).run(tmp, task_vars)  # ActionBase: the bookkeeping
        result.update(run_module_body(self, "pg_auth_facts", facts_task.argument_spec(),
                                      facts_task.MUTUALLY_EXCLUSIVE,
                                      lambda module, label: run_pg_module(
                                          module, facts_task.run, label),
                                      facts_task.label, secrets_in_params))
        return result
