# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX survey specs, one per job template, from the roles' argument specs.

hack/gen_specs.py (make specs) writes and checks them with the rest of the generated files,
through the two helpers at the end of this file, which it shares.

Sources: roles/<role>/meta/argument_specs.yml (every role that has one: one job template
each) and hack/surveys.yml (the options no survey asks, and the job templates that run a
playbook of several roles, remediate).  Outputs: extensions/awx/surveys/<template>.json, the
body of AWX's POST /api/v2/job_templates/<id>/survey_spec/.  hack/surveys.yml states the rule
for which options become questions; tests/unit/plugins/test_surveys.py fails when a file is
stale.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SURVEY_DIR = "extensions/awx/surveys"
SCALARS = {"str", "path", "int", "float", "bool"}
# ansible-doc markup (V(x), C(x), O(x), E(x), I(x), M(x)) read as plain text in a survey
MARKUP = re.compile(r"\b[VCOEIM]\(([^()]*)\)")
DESCRIPTION_MAX = 300


def plain(text: str) -> str:
    return MARKUP.sub(r"\1", " ".join(str(text).split()))


def question_name(variable: str) -> str:
    words = variable.removeprefix("pgauth_").replace("_", " ")
    return words[:1].upper() + words[1:]


def describe(description) -> str:
    """The option's description as one paragraph, cut at a sentence if it is long."""
    lines = description if isinstance(description, list) else [description or ""]
    text = plain(" ".join(str(line) for line in lines))
    if len(text) > DESCRIPTION_MAX:
        cut = text.rfind(". ", 0, DESCRIPTION_MAX)
        text = text[:cut + 1] if cut > 0 else text[:DESCRIPTION_MAX - 3] + "..."
    return text


def question(variable: str, option: dict) -> dict:
    """One survey question from one argument spec option (a scalar; the caller checks)."""
    kind, default = option.get("type", "str"), option.get("default")
    entry = {"question_name": question_name(variable),
             "question_description": describe(option.get("description")),
             "variable": variable, "required": bool(option.get("required"))}
    if option.get("no_log"):
        # AWX stores a password answer encrypted and shows it as $encrypted$; never a default
        entry["type"] = "password"
        return entry
    if kind == "bool":
        # AWX answers are strings: the roles read every bool input with `| bool`
        entry.update(type="multiplechoice", choices=["false", "true"],
                     default="true" if default else "false", required=True)
    elif option.get("choices"):
        entry.update(type="multiplechoice", choices=[str(c) for c in option["choices"]])
        if default is not None:
            entry.update(default=str(default), required=True)
    elif kind == "int":
        entry["type"] = "integer"
        if default is not None:
            entry["default"] = int(default)
    elif kind == "float":
        entry["type"] = "float"
        if default is not None:
            entry["default"] = float(default)
    else:
        entry.update(type="text", default="" if default is None else str(default))
    return entry


def asked(options: dict, not_asked: set[str]) -> list[tuple[str, dict]]:
    return [(name, option) for name, option in options.items()
            if option.get("type", "str") in SCALARS and name not in not_asked]


def survey(name: str, description: str, options: list[tuple[str, dict]]) -> dict:
    return {"name": f"PG auth: {name}", "description": plain(description),
            "spec": [question(variable, option) for variable, option in options]}


def role_argument_specs(root: Path, generated: dict[str, str] | None = None) -> dict[str, dict]:
    """Each role's main entry point; generated (path -> text, from gen_specs.py) is read
    before the file on disk, so one run of the generator writes consistent files."""
    generated = generated or {}
    specs = {}
    paths = {Path(path).parts[1] for path in generated if path.startswith("roles/")}
    paths |= {path.parts[-3] for path in root.glob("roles/*/meta/argument_specs.yml")}
    for role in sorted(paths):
        relative = f"roles/{role}/meta/argument_specs.yml"
        text = generated.get(relative)
        if text is None:
            text = (root / relative).read_text()
        specs[role] = yaml.safe_load(text)["argument_specs"]["main"]
    return specs


def survey_files(root: Path = ROOT, generated: dict[str, str] | None = None) -> dict[str, str]:
    """Every survey file, path relative to the collection root -> its text."""
    rules = yaml.safe_load((root / "hack" / "surveys.yml").read_text())
    not_asked = set(rules.get("not_asked") or [])
    specs = role_argument_specs(root, generated)
    surveys = {role: survey(role, main.get("short_description", role),
                            asked(main.get("options") or {}, not_asked))
               for role, main in specs.items()}
    for name, template in (rules.get("templates") or {}).items():
        unknown = [role for role in template["roles"] if role not in specs]
        if unknown:
            raise SystemExit(f"hack/surveys.yml: template {name} names roles without an "
                             f"argument spec: {unknown}")
        # the template's own options first: they are what the template is about
        merged: dict[str, dict] = dict(template.get("options") or {})
        for role in template["roles"]:
            for option, spec in (specs[role].get("options") or {}).items():
                merged.setdefault(option, spec)
        surveys[name] = survey(name, template["description"], asked(merged, not_asked))
    return {f"{SURVEY_DIR}/{name}.json": json.dumps(body, indent=2) + "\n"
            for name, body in sorted(surveys.items())}


def orphans(root: Path, files: dict[str, str]) -> list[str]:
    """Survey files no role or template makes any more (AWX would be given a template
    nothing runs)."""
    return [str(path.relative_to(root)) for path in sorted((root / SURVEY_DIR).glob("*.json"))
            if str(path.relative_to(root)) not in files]


def stale_paths(root: Path, files: dict[str, str], removed: list[str]) -> list[str]:
    """Generated files missing or different on disk under root, then the ones to remove."""
    return [path for path, text in files.items()
            if not (root / path).is_file() or (root / path).read_text() != text] + removed


def write_files(root: Path, files: dict[str, str], removed: list[str]) -> None:
    """Write what changed (only that: file times stay for make), remove what is no longer
    generated."""
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {path}")
    for path in removed:
        (root / path).unlink()
        print(f"removed {path}")


def stale_files(root: Path = ROOT, generated: dict[str, str] | None = None) -> list[str]:
    files = survey_files(root, generated)
    return stale_paths(root, files, orphans(root, files))


def write(root: Path = ROOT, generated: dict[str, str] | None = None) -> None:
    files = survey_files(root, generated)
    write_files(root, files, orphans(root, files))
