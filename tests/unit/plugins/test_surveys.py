"""The AWX survey specs (extensions/awx/surveys/<template>.json) are what hack/gen_surveys.py
makes from the roles' argument specs and hack/surveys.yml: in sync, one per job template, and
each question what AWX accepts and the role reads."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SURVEYS = ROOT / "extensions" / "awx" / "surveys"
# AWX's survey question types (awx/main/models/mixins.py SurveyJobTemplateMixin)
AWX_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice",
             "multiselect"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "hack" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options(role: str) -> dict:
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def _roles() -> list[str]:
    return sorted(path.parts[-3] for path in ROOT.glob("roles/*/meta/argument_specs.yml"))


def test_the_survey_files_are_in_sync_with_the_role_specs():
    stale = _load("gen_surveys").stale_files(ROOT)
    assert not stale, f"not regenerated (run make specs): {stale}"


def test_one_survey_per_job_template():
    names = sorted(path.stem for path in SURVEYS.glob("*.json"))
    assert names == sorted({*_roles(), "remediate"})
    assert {"diagnose", "rotate", "verify", "remediate"} <= set(names)


def _copy(tmp_path: Path) -> Path:
    """The generator's inputs in a scratch tree, to change a role spec there."""
    for part in ("roles", "hack", "extensions/awx/surveys"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def test_a_changed_role_option_makes_its_survey_stale(tmp_path):
    root = _copy(tmp_path)
    generator = _load("gen_surveys")
    assert generator.stale_files(root) == []
    spec_path = root / "roles" / "rotate" / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["argument_specs"]["main"]["options"]["pgauth_drain_timeout"]["default"] = 90
    spec_path.write_text(yaml.safe_dump(spec))
    assert generator.stale_files(root) == ["extensions/awx/surveys/rotate.json"]
    generator.write(root)
    assert generator.stale_files(root) == []
    rotate = json.loads((root / "extensions/awx/surveys/rotate.json").read_text())
    assert {q["variable"]: q for q in rotate["spec"]}["pgauth_drain_timeout"]["default"] == 90


def test_a_new_role_gets_a_survey_and_a_removed_one_loses_it(tmp_path):
    """discover (issue 20) appears with its argument spec: re-running the generator is all."""
    root = _copy(tmp_path)
    generator = _load("gen_surveys")
    (root / "roles" / "probe" / "meta").mkdir(parents=True)
    (root / "roles" / "probe" / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(
        {"argument_specs": {"main": {"short_description": "A C(probe)", "options": {
            "pgauth_depth": {"type": "int", "default": 3, "description": ["How deep."]},
            "pgauth_scopes": {"type": "list", "elements": "dict", "description": ["Where."]},
            "pgauth_token": {"type": "str", "no_log": True, "description": ["A token."]}}}}}))
    assert generator.stale_files(root) == ["extensions/awx/surveys/probe.json"]
    generator.write(root)
    probe = json.loads((root / "extensions/awx/surveys/probe.json").read_text())
    assert probe["description"] == "A probe"
    assert [(q["variable"], q["type"]) for q in probe["spec"]] == [
        ("pgauth_depth", "integer"), ("pgauth_token", "password")]
    assert "default" not in probe["spec"][1]
    shutil.rmtree(root / "roles" / "probe")
    assert generator.stale_files(root) == ["extensions/awx/surveys/probe.json"]
    generator.write(root)
    assert not (root / "extensions/awx/surveys/probe.json").exists()


@pytest.mark.parametrize("option,expected", [
    ({"type": "bool", "default": False},
     {"type": "multiplechoice", "choices": ["false", "true"], "default": "false",
      "required": True}),
    ({"type": "str", "choices": ["a", "b"], "default": "b"},
     {"type": "multiplechoice", "choices": ["a", "b"], "default": "b", "required": True}),
    ({"type": "str", "choices": ["a", "b"]},
     {"type": "multiplechoice", "choices": ["a", "b"], "required": False}),
    ({"type": "int", "default": 5}, {"type": "integer", "default": 5, "required": False}),
    ({"type": "float", "default": 1}, {"type": "float", "default": 1.0, "required": False}),
    ({"type": "path", "required": True}, {"type": "text", "default": "", "required": True}),
    ({"type": "str", "no_log": True, "default": "x"}, {"type": "password", "required": False}),
])
def test_type_mapping(option, expected):
    entry = _load("gen_surveys").question("pgauth_some_thing", {**option, "description": "D"})
    assert entry.pop("question_name") == "Some thing"
    assert entry.pop("question_description") == "D" and entry.pop("variable") == \
        "pgauth_some_thing"
    assert entry == expected


def test_every_question_is_valid_for_awx_and_matches_the_role_default():
    rules = yaml.safe_load((ROOT / "hack" / "surveys.yml").read_text())
    for path in SURVEYS.glob("*.json"):
        body = json.loads(path.read_text())
        assert body["name"] == f"PG auth: {path.stem}" and body["spec"], path.name
        roles = rules["templates"][path.stem]["roles"] if path.stem in rules["templates"] \
            else [path.stem]
        options = {**{k: v for role in roles for k, v in _options(role).items()},
                   **(rules["templates"].get(path.stem, {}).get("options") or {})}
        variables = [q["variable"] for q in body["spec"]]
        assert len(variables) == len(set(variables)), path.name
        for q in body["spec"]:
            assert q["type"] in AWX_TYPES and q["question_name"] and q["variable"] in options
            option = options[q["variable"]]
            # lists and dicts would arrive as strings; the not_asked settings per host
            assert option.get("type", "str") not in ("list", "dict")
            assert q["variable"] not in rules["not_asked"]
            if q["type"] == "multiplechoice":
                assert q.get("default", q["choices"][0]) in q["choices"]
            if option.get("default") not in (None, "") and q["type"] != "password":
                want = option["default"]
                want = str(want).lower() if isinstance(want, bool) else want
                assert q["default"] == want, (path.name, q["variable"])


def test_remediate_asks_none_of_rotates_inputs():
    """remediate sets rotate's inputs from the fix with set_fact: an extra variable (a survey
    answer) would beat the fix's value."""
    remediate = json.loads((SURVEYS / "remediate.json").read_text())
    own = set(_options("rotate")) - set(_options("diagnose")) - set(_options("verify"))
    assert own and not own & {q["variable"] for q in remediate["spec"]}
    assert remediate["spec"][0]["variable"] == "pgauth_apply"
