"""secret_value and secret_value_info with the Parameter Store, ECS and Lambda stores, as a
playbook runs them: check mode changes nothing, a write changes, the same write again does
not, and no output holds the password.  One playbook run for all three (each run costs a
process per task)."""
from __future__ import annotations

import json
import uuid

import yaml
from labfixtures import lab_client, lab_store_options
from runbooks import BIN, BUILD, assert_no_leak
from test_aws_stores import _function, _register

NEW = "Mod-Pw-" + uuid.uuid4().hex[:12] + "!'\""


def _play(stores: list[dict], options: dict) -> list[dict]:
    tasks = []
    for store in stores:
        label = store["name"]
        tasks += [
            {"name": f"check {label}", "credops.pgauth.secret_value":
                {"store": store, "value": {"password": NEW}},
             "check_mode": True, "register": f"check_{label}"},
            {"name": f"read after check {label}", "credops.pgauth.secret_value_info":
                {"store": store}, "register": f"after_check_{label}"},
            {"name": f"write {label}", "credops.pgauth.secret_value":
                {"store": store, "value": {"password": NEW}}, "diff": True,
             "register": f"write_{label}"},
            {"name": f"again {label}", "credops.pgauth.secret_value":
                {"store": store, "value": {"password": NEW}}, "register": f"again_{label}"},
            {"name": f"read {label}", "credops.pgauth.secret_value_info":
                {"store": store}, "register": f"info_{label}"},
            {"name": f"results {label}", "ansible.builtin.copy": {
                "dest": f"{{{{ out_dir }}}}/{label}.json",
                "content": "{{ {'check': check_%s, 'after_check': after_check_%s, "
                           "'write': write_%s, 'again': again_%s, 'info': info_%s} "
                           "| to_json }}" % ((label,) * 5)}},
        ]
    return [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/credops.pgauth.stores": options}, "tasks": tasks}]


def test_check_mode_write_and_idempotent_rewrite_for_the_aws_stores(lab, tmp_path):
    import subprocess
    family = "mod-" + uuid.uuid4().hex[:8]
    _register(lab, family, [{"name": "RDS_PASSWORD", "value": "Old-Pw-1234"}])
    function = _function(lab, {"DB_PASSWORD": "Old-Pw-1234", "KEEP": "1"})
    parameter = f"/mod/{uuid.uuid4().hex[:8]}/password"
    lab_client(lab, "ssm").put_parameter(Name=parameter, Type="SecureString",
                                         Value="Old-Pw-1234")
    stores = [{"name": "ssm", "type": "aws_ssm", "parameter": parameter},
              {"name": "ecs", "type": "aws_ecs_task_definition", "family": family,
               "container": "web", "variable": "RDS_PASSWORD"},
              {"name": "fn", "type": "aws_lambda_environment", "function": function,
               "variable": "DB_PASSWORD"}]
    options = {key: value for key, value in lab_store_options(lab).items()
               if key in ("region", "endpoint_url", "access_key", "secret_key")}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(_play(stores, options), sort_keys=False))
    run = subprocess.run([str(BIN / "ansible-playbook"), str(playbook), "-e",
                          f"out_dir={tmp_path}", "-v"], capture_output=True, text=True,
                         env={**lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD),
                              "PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1",
                              "ANSIBLE_LOCALHOST_WARNING": "0",
                              "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    outputs = {}
    for store in stores:
        text = (tmp_path / f"{store['name']}.json").read_text()
        outputs[store["name"]] = text
        got = json.loads(text)
        assert got["check"]["changed"], store["name"]
        if store["type"] != "aws_lambda_environment":
            # moto moves neither a function's RevisionId nor its LastModified on an update
            assert got["after_check"]["version"] != got["write"]["version"], store["name"]
        assert got["write"]["changed"] and not got["again"]["changed"], store["name"]
        assert got["again"]["version"] == got["write"]["version"], store["name"]
        assert got["write"]["diff"]["after"]["password"] == "(changed)"
        assert got["info"]["version"] == got["write"]["version"]
    ssm = lab_client(lab, "ssm").get_parameter(Name=parameter, WithDecryption=True)
    assert ssm["Parameter"]["Value"] == NEW and ssm["Parameter"]["Version"] == 2
    revisions = lab_client(lab, "ecs").list_task_definitions(familyPrefix=family)
    assert len(revisions["taskDefinitionArns"]) == 2
    variables = lab_client(lab, "lambda").get_function_configuration(
        FunctionName=function)["Environment"]["Variables"]
    assert variables == {"DB_PASSWORD": NEW, "KEEP": "1"}
    assert_no_leak({"stdout": run.stdout + run.stderr, **outputs}, {NEW, "Old-Pw-1234"})
