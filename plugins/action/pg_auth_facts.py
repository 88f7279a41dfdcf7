# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_auth_facts runs as any module does (the `normal` action); this file exists for where it
is imported: ansible-playbook's own process imports a task's action plugin before it forks the
task's worker per host.  What the diagnose tasks then need on the controller (the filters of
module_defaults and of the report, the report action, ansible's builtin filters) is imported
here once, and every forked worker inherits it instead of importing it again (issue 20: about
0.1 s of CPU per host)."""
from __future__ import annotations

import contextlib

from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import filter_loader

# the imports are the point: they fill sys.modules, where the plugin loader looks first
from ansible_collections.credops.pgauth.plugins.action import report  # noqa: F401
from ansible_collections.credops.pgauth.plugins.filter import (  # noqa: F401
    connection_options,
    findings,
    health_requests,
    pg_dsn,
    report_host_dir,
    verification,
)


def _preload_builtin_filters() -> None:
    """ansible.builtin's filter files (combine, dict2items, ...), loaded by the loader itself
    (it names them by path): one resolved name loads them all."""
    # an optimisation: when it fails, the worker loads them as before
    with contextlib.suppress(Exception):
        filter_loader.get("ansible.builtin.combine")


_preload_builtin_filters()


class ActionModule(NormalAction):
    """The module, run as the `normal` action runs it."""
