"""One source for every option (issue 16): the doc fragments and role argument specs are what
hack/gen_specs.py writes from the option registry, the three runbooks document each shared
input with the same text, and the lookup reads the modules' environment variables."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.parameters import AnsibleFallbackNotFound

from ansible_collections.credops.pgauth.plugins.module_utils import option_registry as reg
from ansible_collections.credops.pgauth.plugins.module_utils.runbook_options import (
    RUNBOOK_INPUTS,
)

ROOT = Path(__file__).resolve().parents[3]
ROLES = ("diagnose", "rotate", "verify")
# every runbook takes these; the others (pgauth_logs, pgauth_expiry_warning) where used
INPUTS_OF_EVERY_RUNBOOK = ("pgauth_target", "pgauth_admin", "pgauth_stores", "pgauth_aws",
                           "pgauth_vault", "pgauth_report_dir", "pgauth_connect_timeout")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_specs", ROOT / "hack" / "gen_specs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _role_options(role: str) -> dict:
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def _fragment(name: str, attribute: str = "DOCUMENTATION") -> dict:
    path = ROOT / "plugins" / "doc_fragments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fragment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return yaml.safe_load(getattr(module.ModuleDocFragment, attribute))["options"]


def test_no_generated_file_is_stale():
    stale = _generator().stale_files(ROOT)
    assert not stale, f"edited by hand or not regenerated (run make specs): {stale}"


def test_the_staleness_check_sees_a_hand_edit(tmp_path):
    generator = _generator()
    for path, text in generator.generated_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert generator.stale_files(tmp_path) == []
    spec = tmp_path / "roles" / "verify" / "meta" / "argument_specs.yml"
    # any change: the generator's line wrapping moves words between lines as texts change
    text = spec.read_text()
    edited = text.replace("type: list", "type: dict", 1)
    assert edited != text
    spec.write_text(edited)
    assert generator.stale_files(tmp_path) == ["roles/verify/meta/argument_specs.yml"]


def test_every_runbook_documents_a_shared_input_with_the_same_text():
    options = {role: _role_options(role) for role in ROLES}
    for name in INPUTS_OF_EVERY_RUNBOOK:
        assert all(name in options[role] for role in ROLES), name
    for name in RUNBOOK_INPUTS:
        having = [role for role in ROLES if name in options[role]]
        assert len(having) >= 2, f"{name} is shared by {having} only: make it role-specific"
        first = options[having[0]][name]
        for role in having[1:]:
            assert options[role][name] == first, f"{name}: {having[0]} and {role} differ"


def test_role_specific_options_do_not_shadow_shared_inputs():
    for role in ROLES:
        source = yaml.safe_load((ROOT / "hack" / "role_specs" / f"{role}.yml").read_text())
        assert not set(source.get("options") or {}) & set(RUNBOOK_INPUTS), role


FRAGMENTS = [
    ("postgres", "DOCUMENTATION", reg.POSTGRES_OPTIONS),
    ("aws", "DOCUMENTATION", {**reg.AWS_OPTIONS, **reg.ENDPOINT_OPTIONS}),
    ("vault", "DOCUMENTATION", reg.VAULT_OPTIONS),
    ("store", "DOCUMENTATION", reg.STORE_OPTION),
    ("store", "PASSWORD_FROM", reg.PASSWORD_FROM_OPTION),
    ("generate", "DOCUMENTATION", reg.GENERATE_OPTION),
    ("plugin_connection", "DOCUMENTATION",
     {**reg.AWS_OPTIONS, **reg.VAULT_OPTIONS, **reg.ENDPOINT_OPTIONS}),
]


def _compare(documented: dict, registry: dict, where: str, plugin: bool) -> None:
    assert set(documented) == set(registry), where
    for name, option in registry.items():
        doc = documented[name]
        for key in ("type", "default", "choices", "aliases", "elements"):
            assert doc.get(key) == option.get(key), f"{where}.{name}: {key}"
        assert bool(doc.get("required")) == bool(option.get("required")), f"{where}.{name}"
        text = " ".join(doc["description"])
        for variable in option.get("env", []):
            # modules name their fallbacks in the text; plugins also declare them
            assert f"E({variable})" in text, f"{where}.{name}: {variable} not mentioned"
        if plugin:
            declared = [entry["name"] for entry in doc.get("env", [])]
            assert sorted(declared) == sorted(option.get("env", [])), f"{where}.{name}: env"
        if "suboptions" in option:
            _compare(doc["suboptions"], option["suboptions"], f"{where}.{name}", plugin)


@pytest.mark.parametrize(("fragment", "attribute", "registry"), FRAGMENTS,
                         ids=[f"{entry[0]}.{entry[1]}" for entry in FRAGMENTS])
def test_each_fragment_documents_the_registry(fragment, attribute, registry):
    _compare(_fragment(fragment, attribute), registry, f"{fragment}.{attribute}",
             plugin=fragment.startswith("plugin"))


def test_insecure_endpoint_ok_is_documented_once():
    having = [name for name in ("postgres", "aws", "vault", "store", "generate")
              if "insecure_endpoint_ok" in _fragment(name)]
    assert having == ["aws"]


SECRET_NAME = re.compile(r"password|token|secret_key|secret_id$")


@pytest.mark.parametrize("group", ["POSTGRES_OPTIONS", "AWS_OPTIONS", "VAULT_OPTIONS"])
def test_every_secret_connection_option_is_no_log(group):
    for name, option in getattr(reg, group).items():
        if SECRET_NAME.search(name):
            assert option.get("no_log") is True, name
            assert reg.argument_spec({name: option})[name]["no_log"] is True, name


def test_argument_specs_carry_the_env_fallbacks():
    spec = reg.argument_spec(reg.VAULT_OPTIONS)
    assert spec["url"]["fallback"] == (env_fallback, ["VAULT_ADDR", "BAO_ADDR"])
    assert "fallback" not in spec["auth_method"] and "env" not in spec["url"]


ENV_OPTIONS = {name: option for name, option in
               {**reg.AWS_OPTIONS, **reg.VAULT_OPTIONS}.items() if option.get("env")}


def _module_value(variables: list[str]):
    try:
        return env_fallback(*variables)
    except AnsibleFallbackNotFound:
        return None


# The lookup runs in a fresh interpreter: Ansible's plugin loader needs its collection finder
# installed before anything imports the collection, which this test module already did.
LOOKUP_OPTIONS_SCRIPT = """
import json, sys
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[sys.argv[1]])._install()
from ansible.plugins.loader import lookup_loader
lookup = lookup_loader.get("credops.pgauth.secret_value")
lookup.set_options(var_options={}, direct={})
print(json.dumps({name: lookup.get_option(name) for name in sys.argv[2:]}))
"""


def _lookup_options(environ: dict, names: list[str]) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not any(key in option["env"] for option in ENV_OPTIONS.values())}
    env.update(environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT.parents[2]),
                                                      env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", LOOKUP_OPTIONS_SCRIPT, str(ROOT.parents[2]),
                           *names], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["every variable set", "only the last one set"])
def test_the_lookup_reads_the_same_variable_as_the_modules(which, monkeypatch):
    environ = {}
    for option in ENV_OPTIONS.values():
        present = option["env"] if which == "every variable set" else option["env"][-1:]
        environ.update({variable: f"/from/{variable}" for variable in present})
    for variable in {v for option in ENV_OPTIONS.values() for v in option["env"]}:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    modules = {name: _module_value(option["env"]) for name, option in ENV_OPTIONS.items()}
    assert _lookup_options(environ, sorted(ENV_OPTIONS)) == modules
    if which == "every variable set":
        assert modules["url"] == "/from/VAULT_ADDR" and modules["region"] == "/from/AWS_REGION"
    else:
        assert modules["url"] == "/from/BAO_ADDR"
