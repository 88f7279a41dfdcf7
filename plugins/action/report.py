# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a runbook's report on the controller: no module process, no file transfer."""
from __future__ import annotations

import json
import os
import re
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    build_report,
    render_markdown,
    stats,
    summary,
)

ARGUMENT_SPEC = {
    "runbook": {"type": "str", "required": True,
                "choices": ["diagnose", "rotate", "verify", "remediate"]},
    "target": {"type": "dict", "required": True},
    "verdict": {"type": "str", "required": True, "choices": ["healthy", "degraded", "broken"]},
    "findings": {"type": "list", "elements": "dict", "default": []},
    "data": {"type": "dict", "default": {}},
    "dir": {"type": "path", "default": "./pgauth-reports"},
    "host": {"type": "str"},
}


def safe_dirname(host: str) -> str:
    """A directory name for an inventory host: no separators, no leading dot."""
    name = re.sub(r"[^A-Za-z0-9_.@:-]", "_", host).lstrip(".")
    return name or "_"


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".pgauth-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, 0o640)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = args["host"] or task_vars.get("inventory_hostname") or "localhost"
        report = build_report(args["runbook"], args["target"], args["verdict"],
                              args["findings"], args["data"])
        directory = os.path.join(os.path.abspath(args["dir"]), safe_dirname(host))
        paths = [os.path.join(directory, f"{args['runbook']}.{ext}") for ext in ("json", "md")]
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            write_atomically(paths[0], json.dumps(report, indent=2, sort_keys=True,
                                                  default=str) + "\n")
            write_atomically(paths[1], render_markdown(report))
        except OSError as err:
            result.update(failed=True, msg=f"report: cannot write {args['runbook']} report "
                                           f"for {host} in {directory}: {err.strerror}")
            return result
        result.update(changed=False, report=report, paths=paths, verdict=args["verdict"],
                      summary=summary(report, paths),
                      ansible_stats={"data": stats(report, host, paths), "per_host": False,
                                     "aggregate": True})
        return result
