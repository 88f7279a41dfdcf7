"""The collection as users get it: a built tarball, an execution environment context made by
ansible-builder (no container engine needed for `create`), and the docs ansible-doc renders
for every role."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from labfixtures import BUILD

BIN = Path(sys.executable).parent
COLLECTION = BUILD / "ansible_collections" / "credops" / "pgauth"
ENV = {"ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1", "PATH": str(BIN)}


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **ENV}, check=False)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run("ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path",
               str(out))
    assert done.returncode == 0, done.stderr
    return next(out.glob("credops-pgauth-*.tar.gz"))


def test_the_tarball_holds_the_runbooks_and_no_lab_state(tarball):
    import tarfile
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for wanted in ("playbooks/diagnose.yml", "playbooks/rotate.yml", "playbooks/verify.yml",
                   "playbooks/remediate.yml", "playbooks/discover.yml",
                   "roles/rotate/meta/argument_specs.yml", "roles/discover/meta/argument_specs.yml",
                   "meta/execution-environment.yml", "requirements.txt", "bindep.txt",
                   "extensions/awx/surveys/rotate.json", "extensions/awx/surveys/discover.json"):
        assert wanted in names, wanted
    assert not [name for name in names if name.startswith((".lab", ".venv", ".build"))]


def test_ansible_builder_makes_an_ee_context(tarball, tmp_path):
    (tmp_path / "requirements.yml").write_text(yaml.safe_dump(
        {"collections": [{"name": str(tarball), "type": "file"}]}))
    (tmp_path / "execution-environment.yml").write_text(yaml.safe_dump({
        "version": 3,
        "images": {"base_image": {"name": "ee-base:latest"}},
        "dependencies": {"galaxy": "requirements.yml",
                         "ansible_core": {"package_pip": "ansible-core>=2.19,<2.20"},
                         "ansible_runner": {"package_pip": "ansible-runner"}},
    }))
    done = run("ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
               "--output-filename", "Containerfile", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "ansible-galaxy" in containerfile and "introspect" in containerfile
    copied = yaml.safe_load((tmp_path / "context" / "_build" / "requirements.yml").read_text())
    assert copied["collections"][0]["type"] == "file"


def test_introspection_finds_the_collections_requirements():
    done = run("ansible-builder", "introspect", "--sanitize", str(BUILD))
    assert done.returncode == 0, done.stderr
    found = yaml.safe_load(done.stdout.split("\n", 1)[1])
    python = " ".join(found["python"])
    for package in ("psycopg2-binary", "boto3", "hvac"):
        assert package in python, package


@pytest.mark.parametrize("role", ["diagnose", "rotate", "verify", "discover"])
def test_ansible_doc_renders_every_role(role):
    spec = yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml")
                          .read_text())["argument_specs"]["main"]
    done = run("ansible-doc", "-t", "role", f"credops.pgauth.{role}")
    assert done.returncode == 0, done.stderr
    for option in spec["options"]:
        assert option in done.stdout, option
    for option, body in spec["options"].items():
        assert body.get("description"), f"{role}: {option} has no description"
        assert body.get("type"), f"{role}: {option} has no type"


def test_ansible_doc_shows_every_shared_input_the_same_in_every_runbook():
    """The three runbooks document the inputs they share with one text (issue 16): what
    ansible-doc renders for an input is the same in every role that takes it."""
    import json

    shown = {}
    for role in ("diagnose", "rotate", "verify", "discover"):
        done = run("ansible-doc", "-t", "role", "--json", f"credops.pgauth.{role}")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)[f"credops.pgauth.{role}"]
        shown[role] = doc["entry_points"]["main"]["options"]
    shared = {name for role in shown for name in shown[role]
              if sum(name in options for options in shown.values()) > 1}
    assert {"pgauth_target", "pgauth_admin", "pgauth_stores", "pgauth_aws", "pgauth_vault",
            "pgauth_report_dir", "pgauth_connect_timeout"} <= shared
    for name in sorted(shared):
        texts = {role: options[name] for role, options in shown.items() if name in options}
        first_role, first = next(iter(texts.items()))
        for role, text in texts.items():
            assert text == first, f"{name}: {role} and {first_role} document it differently"
