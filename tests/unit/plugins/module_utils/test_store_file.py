"""Line-preserving edits of dotenv and YAML config files."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    StoreValueError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store_file import (
    FileBackend,
    dotenv_get,
    dotenv_lines,
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


@pytest.mark.parametrize("equals", ["=", " = ", "=\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_dotenv_set_fills_an_empty_value_on_its_own_line(equals, newline):
    text = dotenv_set(f"DB_PASSWORD{equals}{newline}DB_USER=app{newline}", "DB_PASSWORD", "n3w")
    assert text == f"DB_PASSWORD{equals}n3w{newline}DB_USER=app{newline}"


@pytest.mark.parametrize(("line", "value"), [
    ("K='pw' # rotated", "pw"),
    ('K="pw" # rotated', "pw"),
    ("K='p w'# rotated", "p w"),
    ('K="p\\"w" # rotated', 'p"w'),
    ("K='a # b'", "a # b"),
    ("K=bare # rotated", "bare"),
    ("K='it's'", "it's"),
])
def test_dotenv_quoted_values_with_a_trailing_comment(line, value):
    assert dotenv_get(line + "\n", "K") == value


def test_dotenv_set_keeps_the_trailing_comment():
    text = dotenv_set("K='pw' # rotated\nA=1\n", "K", "new pw")
    assert text == "K='new pw' # rotated\nA=1\n"
    assert dotenv_get(text, "K") == "new pw"


@pytest.mark.parametrize("brk", ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                                 "\u2029", "\n", "\x00"])
def test_dotenv_refuses_every_line_break(brk):
    with pytest.raises(ValueError, match="line break or NUL"):
        dotenv_quote(f"a{brk}b")
    with pytest.raises(ValueError):
        dotenv_set("A=1\nK=old\nB=2\n", "K", f"a{brk}b")


def test_a_file_store_without_a_name_is_named_by_its_file():
    store = Store({"type": "file", "path": "/tmp/x.env", "key": "K"}, {})
    assert store.name == "file /tmp/x.env [K]"
    with pytest.raises(StoreError, match="path is required"):
        Store({"type": "file", "key": "K"}, {})


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("text", ["[" * 3000, '{"a": ' + "{" * 3000])
def test_deeply_nested_files_are_a_store_error(fmt, text):
    backend = FileBackend({"name": "f", "type": "file", "path": "/nonexistent/app." + fmt,
                           "format": fmt, "key": "a"}, {})
    with pytest.raises(StoreError, match="not valid"):
        backend._value_in(text)  # pylint: disable=protected-access


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


def test_yaml_edit_skips_a_same_named_key_of_a_sibling():
    text = "a0: '0'\nb:\n  a: '0'  # nested\n  b: null\na: 0  # top\n"
    edited = yaml_set_in_place(text, ["a"], "new")
    assert edited == "a0: '0'\nb:\n  a: '0'  # nested\n  b: null\na: new  # top\n"


DUPLICATED = "A=1\nDATABASE_URL=first-secret\n# note\nexport DATABASE_URL='last-secret'\n"


def _dotenv_store(path, **extra) -> FileBackend:
    return FileBackend({"name": "app-env", "type": "file", "path": str(path), "format": "dotenv",
                        "key": "DATABASE_URL", **extra}, {})


def test_dotenv_lines_finds_every_definition():
    assert dotenv_lines(DUPLICATED, "DATABASE_URL") == [2, 4]
    assert dotenv_lines(DUPLICATED, "A") == [1]
    assert dotenv_lines("# DATABASE_URL=x\n", "DATABASE_URL") == []


def test_a_duplicated_dotenv_key_is_a_store_error_naming_the_lines_not_the_values(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(DUPLICATED)
    backend = _dotenv_store(path)
    for action in (lambda: backend.read("current"), lambda: backend.write("new", "current", None)):
        with pytest.raises(StoreError) as err:
            action()
        # not a StoreValueError: that one a rotation may replace, and this file must not be
        assert isinstance(err.value, StoreError) and not isinstance(err.value, StoreValueError)
        message = str(err.value)
        assert message.startswith("store 'app-env'")
        assert ("DATABASE_URL is defined 2 times (lines 2 and 4); bash and python-dotenv use "
                "the last one: remove the duplicates") in message
        assert "secret" not in message
    assert path.read_text() == DUPLICATED


@pytest.mark.parametrize("keep", [0, -1, True, "2"])
def test_backup_keep_must_be_a_positive_number(keep):
    with pytest.raises(StoreError, match="backup_keep must be"):
        _dotenv_store("/nonexistent/app.env", backup=True, backup_keep=keep)


def test_a_write_with_backup_keep_keeps_the_newest_copies(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("DATABASE_URL=v0\n")
    backend = _dotenv_store(path, backup=True, backup_keep=2)
    for number in range(1, 5):
        backend.write(f"v{number}", "current", None)
        assert backend.read("current").value == f"v{number}"
    copies = sorted(p.read_text() for p in tmp_path.iterdir() if p.name.endswith("~"))
    assert copies == ["DATABASE_URL=v2\n", "DATABASE_URL=v3\n"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("~")) == ["app.env"]
