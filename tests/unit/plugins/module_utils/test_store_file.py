"""Line-preserving edits of dotenv and YAML config files."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.credops.pgauth.plugins.module_utils.store_file import (
    dotenv_get,
    dotenv_quote,
    dotenv_set,
    dotenv_unquote,
    yaml_set_in_place,
)

DOTENV = """# app settings
APP_NAME=demo   # trailing comment
export DATABASE_URL='postgresql://u:p@h/d'
QUOTED="a \\"b\\" c"
"""


def test_dotenv_reads_every_quoting_style():
    assert dotenv_get(DOTENV, "APP_NAME") == "demo"
    assert dotenv_get(DOTENV, "DATABASE_URL") == "postgresql://u:p@h/d"
    assert dotenv_get(DOTENV, "QUOTED") == 'a "b" c'
    with pytest.raises(KeyError):
        dotenv_get(DOTENV, "MISSING")


@pytest.mark.parametrize("value", ["simple", "with space", "it's", 'dq"and$dollar\\', "#hash"])
def test_dotenv_set_round_trips_and_keeps_other_lines(value):
    text = dotenv_set(DOTENV, "QUOTED", value)
    assert dotenv_get(text, "QUOTED") == value
    assert text.splitlines()[:3] == DOTENV.splitlines()[:3]


def test_dotenv_keeps_export_and_refuses_newlines():
    text = dotenv_set(DOTENV, "DATABASE_URL", "postgresql://x@h/d")
    assert "export DATABASE_URL='postgresql://x@h/d'" in text
    with pytest.raises(ValueError):
        dotenv_quote("two\nlines")
    assert dotenv_unquote("  bare  # c") == "bare"


YAML = """# the app's config
app:
  name: demo  # keep me
database:
  host: db.internal
  password: "old"   # rotated by credops
  nested:
    password: keep
other:
  password: untouched
"""


@pytest.mark.parametrize("value", ["new", "with: colon", "#hash", "it's", "0123", "true", "ünï"])
def test_yaml_edit_in_place_keeps_comments(value):
    text = yaml_set_in_place(YAML, ["database", "password"], value)
    assert text is not None
    data = yaml.safe_load(text)
    assert data["database"]["password"] == value
    assert data["other"]["password"] == "untouched"
    assert data["database"]["nested"]["password"] == "keep"
    assert "# rotated by credops" in text and "# keep me" in text and "# the app's config" in text


def test_yaml_edit_finds_nested_keys_only_under_their_parent():
    text = yaml_set_in_place(YAML, ["database", "nested", "password"], "n2")
    assert yaml.safe_load(text)["database"]["nested"]["password"] == "n2"
    assert yaml_set_in_place(YAML, ["database", "missing"], "x") is None
