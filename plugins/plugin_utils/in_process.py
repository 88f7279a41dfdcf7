# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's body inside the task's worker process instead of a new Python process.

The runbooks run every task with `connection: local` and the controller's own Python, so a
module process only repeats what the worker already has: an interpreter, ansible's
module_utils, psycopg2 and botocore, imported again for every host (about 0.4 s of CPU per
target, issue 20).  Where the module process would be exactly this process (local
connection, this interpreter, no become, no task environment, no async), the action plugin
validates the arguments with the module's own argument spec, runs the same body, and masks
the result as AnsibleModule.exit_json would.  Anywhere else the module runs as usual.
"""
from __future__ import annotations

import os
import sys

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError

LOCAL_CONNECTIONS = frozenset({"local", "ansible.builtin.local", "ansible.legacy.local"})


class _Exit(Exception):
    def __init__(self, result: dict):
        super().__init__("module exit")
        self.result = result


class InProcessModule:
    """What the module bodies use of AnsibleModule, and no more."""

    def __init__(self, params: dict, no_log_values: set, check_mode: bool, diff: bool):
        self.params = params
        self.no_log_values = set(no_log_values)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings: list[str] = []

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    def exit_json(self, **result) -> None:
        raise _Exit(result)

    def fail_json(self, msg: str, **result) -> None:
        raise _Exit({**result, "failed": True, "msg": msg})


def runs_here(action, task_vars: dict) -> bool:
    """True when a module process would be this very process, only started anew."""
    task = action._task
    # environment is a list of dicts (the play's, the block's, the task's), [{}] when unset
    environment = task.environment if isinstance(task.environment, list) else [task.environment]
    if action._connection.transport not in LOCAL_CONNECTIONS or task.async_val \
            or action._play_context.become or any(environment):
        return False
    interpreter = task_vars.get("ansible_python_interpreter")
    if not interpreter:
        return False  # interpreter discovery may choose another Python
    try:
        interpreter = action._templar.template(interpreter)
    except Exception:  # noqa: BLE001 - undefined: the module path reports it
        return False
    return isinstance(interpreter, str) and os.path.realpath(interpreter) == \
        os.path.realpath(sys.executable)


def _validation_failure(validation, module_name: str) -> str | None:
    """The message AnsibleModule fails with: the first error, unsupported ones prefixed."""
    errors = validation.errors
    if not validation.error_messages:
        return None
    if isinstance(errors.errors[0], UnsupportedError):
        return f"Unsupported parameters for ({module_name}) module: {errors.msg}"
    return errors.msg


def run_module_body(action, module_name: str, spec: dict, mutually_exclusive: list, body,
                    label, secrets_in_params=None) -> dict:
    """Validate the task's arguments against the module's spec, run body(module, label),
    which ends in exit_json or fail_json as a module does, return the masked result.
    secrets_in_params(raw args) names what no option's no_log covers (RunbookModule)."""
    validator = ModuleArgumentSpecValidator(spec, mutually_exclusive=mutually_exclusive)
    validation = validator.validate(dict(action._task.args))
    no_log_values = set(validation._no_log_values)
    if secrets_in_params is not None:
        no_log_values |= secrets_in_params(dict(action._task.args))
    failure = _validation_failure(validation, module_name)
    if failure:
        return remove_values({"failed": True, "changed": False, "msg": failure},
                             no_log_values)
    params = validation.validated_parameters
    module = InProcessModule(params, no_log_values, bool(action._task.check_mode),
                             bool(action._task.diff))
    try:
        body(module, label(params))
        result = {"failed": True, "msg": f"{label(params)}: the module ended without a result"}
    except _Exit as done:
        result = done.result
    except Exception as err:  # noqa: BLE001 - a module process would die with a traceback
        result = {"failed": True, "changed": False,
                  "msg": f"{label(params)}: unexpected {type(err).__name__}: {err}"}
    if module.warnings:
        result["warnings"] = [*result.get("warnings", []), *module.warnings]
    result.setdefault("invocation", {"module_args": params})
    return remove_values(result, module.no_log_values)
