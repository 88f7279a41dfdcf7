"""Every extra_vars key that diagnosis puts in a fix is an input the rotate role declares, and
remediate passes it on (issue 16: remediate used to copy four keys by hand)."""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ("findings_catalogue.py", "findings_checks.py", "diagnosis.py")
ROTATE_HELPERS = ("rotate", "_rotate")  # findings_catalogue.rotate, imported as _rotate too


def _literal_keys(node: ast.expr, where: str) -> set[str]:
    assert isinstance(node, ast.Dict), (f"{where}: extra_vars is not a dict literal, so this "
                                        "test cannot see its keys; build it as one")
    return {key.value for key in node.keys if isinstance(key, ast.Constant)}


def emitted_keys() -> dict[str, set[str]]:
    """extra_vars keys by engine file: dict literals under an "extra_vars" key, and the keyword
    arguments of rotate(...) / _rotate(...)."""
    found = {}
    for name in ENGINE:
        tree = ast.parse((ROOT / "plugins" / "module_utils" / name).read_text())
        keys = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "extra_vars" \
                            and not isinstance(value, ast.Name):
                        keys |= _literal_keys(value, f"{name}:{node.lineno}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ROTATE_HELPERS:
                keys |= {keyword.arg for keyword in node.keywords if keyword.arg}
        found[name] = keys
    return found


def _rotate_inputs() -> dict:
    spec = yaml.safe_load((ROOT / "roles" / "rotate" / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def _remediate_fix_task() -> dict:
    plays = yaml.safe_load((ROOT / "playbooks" / "remediate.yml").read_text())
    for task in plays[0]["tasks"]:
        for inner in task.get("block", []):
            if "ansible.builtin.set_fact" in inner:
                return inner
    raise AssertionError("remediate.yml: no set_fact in the block that applies the fix")


def test_the_scan_finds_the_keys_diagnosis_emits_today():
    keys = set().union(*emitted_keys().values())
    assert {"pgauth_strategy", "pgauth_source_store", "pgauth_valid_until",
            "pgauth_iam_enable_instance"} <= keys


def test_every_emitted_key_is_a_rotate_input():
    declared = _rotate_inputs()
    for name, keys in emitted_keys().items():
        undeclared = keys - set(declared)
        assert not undeclared, f"{name}: not in the rotate role's spec: {undeclared}"


def test_remediate_passes_every_emitted_key():
    task = _remediate_fix_task()
    facts = task["ansible.builtin.set_fact"]
    generic = facts == {"{{ item.key }}": "{{ item.value }}"} and \
        "remediate_fix.extra_vars" in task.get("loop", "") and "dict2items" in task["loop"]
    for name, keys in emitted_keys().items():
        missing = set() if generic else keys - set(facts)
        assert not missing, f"remediate.yml does not pass {missing} (emitted in {name})"


def test_remediate_starts_the_fix_inputs_from_the_rotate_defaults():
    declared = _rotate_inputs()
    defaults = yaml.safe_load((ROOT / "roles" / "rotate" / "defaults" / "main.yml").read_text())
    for key, value in _remediate_fix_task()["vars"]["remediate_fix_inputs"].items():
        assert value == defaults[key] == declared[key]["default"], key
