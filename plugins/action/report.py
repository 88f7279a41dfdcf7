# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a runbook's report on the controller: no module process, no file transfer."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets

import yaml
from ansible.plugins.action import ActionBase

from ansible_collections.credops.pgauth.plugins.module_utils.discover_report import (
    render_discover_markdown,
)
from ansible_collections.credops.pgauth.plugins.module_utils.metrics import render_metrics
from ansible_collections.credops.pgauth.plugins.module_utils.report import (
    build_report,
    render_markdown,
    report_host_dir,
    stats,
    summary,
)

ARGUMENT_SPEC = {
    "runbook": {"type": "str", "required": True,
                "choices": ["diagnose", "rotate", "verify", "remediate", "discover"]},
    "target": {"type": "dict", "required": True},
    "verdict": {"type": "str", "required": True, "choices": ["healthy", "degraded", "broken"]},
    "findings": {"type": "list", "elements": "dict", "default": []},
    "data": {"type": "dict", "default": {}},
    "dir": {"type": "path", "default": "./pgauth-reports"},
    "host": {"type": "str"},
    "metrics_file": {"type": "path"},
    # discover's vars.yml: where the secrets live (no secret), so only the owner reads it
    "vars_file": {"type": "dict"},
}
VARS_FILE = "vars.yml"


def metrics_path(option: str, host: str, runbook: str) -> str:
    """A directory (existing, or ending in /) gets one file per host and runbook, as the
    textfile collector wants for a fleet; a file name may say {host} and {runbook}."""
    if option.endswith(os.sep) or os.path.isdir(option):
        os.makedirs(option, mode=0o755, exist_ok=True)  # the collector's directory: readable
        return os.path.join(option, f"pgauth_{report_host_dir(host)}_{runbook}.prom")
    return option.replace("{host}", report_host_dir(host)).replace("{runbook}", runbook)


class _UnsafeDumper(yaml.SafeDumper):
    """Every string value written as ``!unsafe``: vars.yml names stores found in scanned
    stores (JSON keys, file names, Vault paths), and ansible templates the strings of
    ``-e @vars.yml``; a found name ``{{ lookup('pipe', ...) }}`` must stay a name."""


def _unsafe_str(dumper, value):
    return dumper.represent_scalar("!unsafe", value)


def _plain_keys_dict(dumper, value):
    # keys stay plain (variable and field names); their values are tagged
    pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(key)),
              dumper.represent_data(item)) for key, item in value.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


_UnsafeDumper.add_representer(str, _unsafe_str)
_UnsafeDumper.add_representer(dict, _plain_keys_dict)


def render_vars_file(variables: dict) -> str:
    """A vars file for ansible-playbook -e @vars.yml (plain data: ansible's tagged strings
    made plain first; every string value tagged !unsafe, so none is ever templated)."""
    plain = json.loads(json.dumps(variables, default=str))
    head = ("---\n# Written by credops.pgauth.discover: where the role's credential lives "
            "(no secret in it).\n# A proposal: review it before you feed it to a runbook.\n")
    return head + yaml.dump(plain, Dumper=_UnsafeDumper, sort_keys=False,
                            default_flow_style=False, allow_unicode=False)


class ReportDirError(OSError):
    """The host's report directory is not one the report may be written into."""


def open_host_dir(base: str, name: str) -> int:
    """A descriptor of base/name, made 0750 when missing.  The report directory itself is the
    operator's choice and may be a symlink; the host's directory below it may not: runbooks
    run as root, and a symlink planted there would send root's writes anywhere."""
    if os.sep in name or name in ("", ".", ".."):
        raise ReportDirError(errno.EINVAL, f"not a directory name: {name!r}")
    os.makedirs(base, mode=0o750, exist_ok=True)
    base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o750, dir_fd=base_fd)
        try:
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=base_fd)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ReportDirError(err.errno, f"{os.path.join(base, name)} is a symlink or "
                                                "not a directory; refusing to write there") from err
            raise
    finally:
        os.close(base_fd)


def write_atomically(path: str, text: str, dir_fd: int | None = None,
                     mode: int = 0o640) -> None:
    """Replace path with text: a new file (O_EXCL, no symlink followed, mode) renamed over it.
    With dir_fd, path is a name inside that directory."""
    own_fd = dir_fd is None
    if own_fd:
        dir_fd = os.open(os.path.dirname(path) or ".",
                         os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        path = os.path.basename(path)
    temp = f".pgauth-{secrets.token_hex(8)}.tmp"
    try:
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), mode)  # whatever the umask
                out.write(text)
            # a rename replaces a symlink at path, it does not follow it
            os.replace(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
    finally:
        if own_fd:
            os.close(dir_fd)


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
        # the one name rule the verify role also reads rotate.json by (report_host_dir filter)
        base, name = os.path.abspath(args["dir"]), report_host_dir(host)
        directory = os.path.join(base, name)
        files = [f"{args['runbook']}.{ext}" for ext in ("json", "md")]
        paths = [os.path.join(directory, file) for file in files]
        try:
            dir_fd = open_host_dir(base, name)
            try:
                write_atomically(files[0], json.dumps(report, indent=2, sort_keys=True,
                                                      default=str) + "\n", dir_fd)
                markdown = (render_discover_markdown(report) if args["runbook"] == "discover"
                            else render_markdown(report))
                write_atomically(files[1], markdown, dir_fd)
                if args["vars_file"] is not None:
                    write_atomically(VARS_FILE, render_vars_file(args["vars_file"]), dir_fd,
                                     mode=0o600)
                    paths.append(os.path.join(directory, VARS_FILE))
            finally:
                os.close(dir_fd)
        except OSError as err:
            result.update(failed=True, msg=f"report: cannot write {args['runbook']} report "
                                           f"for {host!r} in {directory}: {err.strerror}")
            return result
        if args["metrics_file"]:
            metrics = args["metrics_file"]
            try:
                metrics = metrics_path(metrics, host, args["runbook"])
                # no secret in it, and the collector runs as its own user: world-readable
                write_atomically(metrics, render_metrics(report, host), mode=0o644)
            except OSError as err:
                result.update(failed=True, msg=f"report: cannot write the metrics of {host!r} "
                                               f"to {metrics}: {err.strerror}")
                return result
            result["metrics_file"] = metrics
        result.update(changed=False, report=report, paths=paths, verdict=args["verdict"],
                      summary=summary(report, paths),
                      ansible_stats={"data": stats(report, host, paths), "per_host": False,
                                     "aggregate": True})
        return result
