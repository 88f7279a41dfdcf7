# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write <report_dir>/index.html and index.md over every host's report, on the controller."""
from __future__ import annotations

import datetime as dt
import os

from ansible.plugins.action import ActionBase

from ansible_collections.credops.pgauth.plugins.action.report import write_atomically
from ansible_collections.credops.pgauth.plugins.module_utils.fleet_report import (
    collect,
    counts,
    render_html,
    render_md,
)

ARGUMENT_SPEC = {
    "dir": {"type": "path", "default": "./pgauth-reports"},
    "runbook": {"type": "str", "default": "diagnose", "choices": ["diagnose", "verify"]},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        base = os.path.abspath(args["dir"])
        rows = collect(base, args["runbook"])
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        paths = [os.path.join(base, name) for name in ("index.html", "index.md")]
        try:
            write_atomically(paths[0], render_html(rows, args["runbook"], now), mode=0o640)
            write_atomically(paths[1], render_md(rows, args["runbook"], now), mode=0o640)
        except OSError as err:
            result.update(failed=True, msg=f"fleet_report: cannot write the index in {base}: "
                                           f"{err.strerror}")
            return result
        result.update(changed=False, paths=paths, hosts=len(rows), verdicts=counts(rows))
        return result
