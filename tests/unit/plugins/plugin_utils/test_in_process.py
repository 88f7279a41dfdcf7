"""The in-process module runner: the module's argument spec applied, its errors and results
masked as AnsibleModule would, and the module path chosen wherever the process differs."""
from __future__ import annotations

import sys
from types import SimpleNamespace

from ansible_collections.credops.pgauth.plugins.plugin_utils.in_process import (
    run_module_body,
    runs_here,
)

SPEC = {"name": {"type": "str", "required": True},
        "secret": {"type": "str", "no_log": True},
        "port": {"type": "int", "default": 5432, "fallback": (lambda: 5433, [])}}


def _action(args: dict, transport: str = "local", **task) -> SimpleNamespace:
    defaults = {"args": args, "check_mode": False, "diff": False, "async_val": 0,
                "environment": [{}]}
    return SimpleNamespace(_task=SimpleNamespace(**{**defaults, **task}),
                           _connection=SimpleNamespace(transport=transport),
                           _play_context=SimpleNamespace(become=False),
                           _templar=SimpleNamespace(template=lambda value: value))


def _label(params: dict) -> str:
    return f"demo {params.get('name')!r}"


def test_the_result_is_masked_with_the_secrets_the_body_found():
    def body(module, label):
        module.no_log_values.add("found-in-a-store")
        module.warn("saw found-in-a-store")
        module.exit_json(changed=False, seen=f"{module.params['secret']} and found-in-a-store",
                         port=module.params["port"])
    result = run_module_body(_action({"name": "x", "secret": "s3cr3t-admin"}), "demo", SPEC, [],
                             body, _label)
    text = repr(result)
    assert "s3cr3t-admin" not in text and "found-in-a-store" not in text
    # the fallback (PG*, AWS_*, VAULT_* env in the real specs) applies, as in AnsibleModule
    assert result["port"] == 5433 and result["changed"] is False
    assert result["warnings"] and "invocation" in result


def test_bad_arguments_fail_with_the_spec_s_message_and_run_nothing():
    ran = []
    result = run_module_body(_action({"secret": "s3cr3t-admin", "port": "many"}), "demo", SPEC, [],
                             lambda module, label: ran.append(1), _label)
    assert result["failed"] and not ran
    assert "name" in result["msg"] and "s3cr3t-admin" not in repr(result)
    unknown = run_module_body(_action({"name": "x", "fingerprint_key": "k"}), "demo", SPEC, [],
                              lambda module, label: ran.append(1), _label)
    assert unknown["msg"].startswith("Unsupported parameters for (demo) module: fingerprint_key")
    assert not ran


def test_fail_json_and_an_unexpected_error_are_failures_that_name_the_label():
    def fails(module, label):
        module.fail_json(msg=f"{label}: no such role")
    failed = run_module_body(_action({"name": "r"}), "demo", SPEC, [], fails, _label)
    assert failed["failed"] and failed["msg"] == "demo 'r': no such role"

    def crashes(module, label):
        raise ValueError(f"boom with {module.params['secret']}")
    crashed = run_module_body(_action({"name": "r", "secret": "s3cr3t-admin"}), "demo", SPEC, [],
                              crashes, _label)
    assert crashed["failed"] and "ValueError" in crashed["msg"]
    assert "s3cr3t-admin" not in crashed["msg"]


def test_the_worker_runs_it_only_where_a_module_process_would_be_this_process():
    here = {"ansible_python_interpreter": sys.executable}
    assert runs_here(_action({}), here)
    assert not runs_here(_action({}, transport="ssh"), here)
    assert not runs_here(_action({}, async_val=30), here)
    assert not runs_here(_action({}, environment=[{"PGPASSWORD": "x"}]), here)
    assert not runs_here(_action({}), {})  # interpreter discovery: maybe another Python
    assert not runs_here(_action({}), {"ansible_python_interpreter": "/usr/bin/false"})
    become = _action({})
    become._play_context.become = True
    assert not runs_here(become, here)
