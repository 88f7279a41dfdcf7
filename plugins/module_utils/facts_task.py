# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_auth_facts' options and body, shared by the module and by its action plugin (which runs
the same body inside the task's worker process when that is safe: plugins/action)."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.facts import gather_facts
from ansible_collections.credops.pgauth.plugins.module_utils.pg import postgres_argument_spec
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import check_role_name
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import (
    prepare_runbook_params,
)

MUTUALLY_EXCLUSIVE = [("db_instance_identifier", "db_cluster_identifier")]


def argument_spec() -> dict:
    return postgres_argument_spec(
        with_stores=True,
        role={"type": "str", "required": True},
        dbname={"type": "str"},
        auth={"type": "str", "default": "password", "choices": ["password", "iam"]},
        stores={"type": "list", "elements": "dict", "default": []},
        login_password_from={"type": "dict", "no_log": False},
        probe={"type": "bool", "default": True},
        consumers={"type": "list", "elements": "dict", "default": [], "no_log": False},
        confirm_consumers={"type": "bool", "default": False},
        db_instance_identifier={"type": "str"},
        db_cluster_identifier={"type": "str"},
        principal_arn={"type": "str"},
        log_files={"type": "list", "elements": "str", "default": []},
        cloudwatch_log_groups={"type": "list", "elements": "str", "default": []},
        logs_since={"type": "str", "default": "1h"},
    )


def run(module) -> dict:
    check_role_name(module.params["role"])
    params = prepare_runbook_params(module.params, module.no_log_values.add)
    facts = gather_facts(params, module.no_log_values.add)
    for warning in facts["login_warnings"]:
        module.warn(warning)
    return {"changed": False, **facts}


def label(params: dict) -> str:
    return f"pg_auth_facts {params.get('role')!r}"
