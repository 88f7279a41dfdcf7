"""The file syntaxes of a file store: round trips of every printable password, the rest of
the file kept, bad input a clear error naming the store with nothing leaked."""
from __future__ import annotations

import base64
import io

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils import file_yaml
from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.file_k8s_secret import (
    split_documents,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_pgpass import PgpassSyntax
from ansible_collections.credops.pgauth.plugins.module_utils.file_properties import entries
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError
from ansible_collections.credops.pgauth.plugins.module_utils.store_file import FileBackend

ROUND = settings(max_examples=150, deadline=None, database=None)
# every printable character of Unicode: no controls, surrogates or line/paragraph separators
printable = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
passwords = st.text(st.one_of(st.sampled_from("\\:=#!'\" ;$@%&/?`\t"), printable),
                    min_size=1, max_size=40).filter(lambda value: "\t" not in value)
SECRET = "Zq7S3cr3tMark"


def backend(fmt: str, key: str | None = None, **spec) -> FileBackend:
    return FileBackend({"name": "f", "type": "file", "path": "/nonexistent/app." + fmt,
                        "format": fmt, **({"key": key} if key else {}), **spec}, {})


def value_in(store: FileBackend, text: str):
    return store._value_in(text)  # pylint: disable=protected-access


def render(store: FileBackend, text: str, value) -> str:
    return store._render(text, value)  # pylint: disable=protected-access


def changed_lines(old: str, new: str) -> list[int]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    pairs = zip(old_lines, new_lines, strict=True)
    return [number for number, (a, b) in enumerate(pairs, 1) if a != b]


# -- properties --------------------------------------------------------------------------

PROPERTIES = """# Spring settings
! a bang comment
spring.application.name = demo
spring.datasource.url=postgresql://db.internal:5432/appdb
spring.datasource.username: app_user
spring.datasource.password=old\\:pw
multi = first \\
        second
key\\ with\\ space=v
"""


def test_properties_reads_like_java():
    store = backend("properties", "spring.datasource.password")
    assert value_in(store, PROPERTIES) == "old:pw"
    values = {entry.key: entry.value for entry in entries(PROPERTIES)}
    assert values["multi"] == "first second" and values["key with space"] == "v"
    assert values["spring.datasource.username"] == "app_user"


def test_properties_reading_agrees_with_jproperties():
    jproperties = pytest.importorskip("jproperties")
    reference = jproperties.Properties()
    reference.load(PROPERTIES.encode(), "utf-8")
    assert {entry.key: entry.value for entry in entries(PROPERTIES)} == \
        {key: reference[key].data for key in reference}


@ROUND
@given(password=passwords)
def test_properties_round_trip_keeps_every_other_line(password):
    store = backend("properties", "spring.datasource.password")
    new = render(store, PROPERTIES, password)
    assert value_in(store, new) == password
    assert changed_lines(PROPERTIES, new) == [6]
    assert new.isascii()  # Spring Boot reads .properties as ISO-8859-1: non-ASCII is escaped
    jproperties = pytest.importorskip("jproperties")
    reference = jproperties.Properties()
    reference.load(new.encode(), "utf-8")
    assert reference["spring.datasource.password"].data == password


def test_properties_continuation_becomes_one_line():
    store = backend("properties", "multi")
    new = render(store, PROPERTIES, "one")
    assert "multi = one\nkey\\ with" in new and value_in(store, new) == "one"


def test_properties_broken_escape_and_duplicates_are_store_errors():
    with pytest.raises(StoreError, match=r"^store 'f' .*malformed \\uXXXX escape \(line 2\)"):
        value_in(backend("properties", "a"), f"# c\na=\\u12{SECRET}\n")
    with pytest.raises(StoreError, match=r"a is defined 2 times \(lines 1 and 3\)") as err:
        value_in(backend("properties", "a"), f"a=x\nb=y\na={SECRET}\n")
    assert SECRET not in str(err.value)


# -- ini and pg_service.conf ---------------------------------------------------------------

SERVICE = """# libpq service file
[app]
host=127.0.0.1
port=5432
dbname=appdb
user=app_user
password=old
; another comment
[other]
password = keep
"""


@ROUND
@given(password=passwords)
def test_ini_round_trip_keeps_libpq_spacing(password):
    store = backend("ini", "app.password")
    if password != password.strip():
        with pytest.raises(StoreError, match="cannot start or end with a blank"):
            render(store, SERVICE, password)
        return
    new = render(store, SERVICE, password)
    assert value_in(store, new) == password
    assert changed_lines(SERVICE, new) == [7]
    assert f"\npassword={password}\n" in new  # libpq reads key=value with no blanks


def test_ini_keeps_spaced_style_and_reports_duplicates():
    store = backend("ini", "other.password")
    assert "\npassword = n3w\n" in render(store, SERVICE, "n3w")
    with pytest.raises(StoreError, match=r"option password of \[app\] is defined twice"):
        value_in(backend("ini", "app.password"), f"[app]\npassword=a\npassword={SECRET}\n")
    with pytest.raises(StoreError, match=r"no section \[nope\]"):
        value_in(backend("ini", "nope.password"), SERVICE)


# -- toml ----------------------------------------------------------------------------------

TOML = """# app config
title = "demo"

[database]
host = "db.internal"
port = 5432
password = 'old'   # rotated by credops
user = "app_user"

[other]
password = "untouched"
"""


@ROUND
@given(password=passwords)
def test_toml_round_trip_keeps_comments_and_other_keys(password):
    store = backend("toml", "database.password")
    new = render(store, TOML, password)
    assert value_in(store, new) == password
    assert changed_lines(TOML, new) == [7]
    assert "# rotated by credops" in new.splitlines()[6]
    assert value_in(backend("toml", "other.password"), new) == "untouched"


def test_toml_keeps_a_literal_string_literal_and_a_port_a_number():
    new = render(backend("toml", "database.password"), TOML, "n3w")
    assert "password = 'n3w'   # rotated by credops" in new
    store = backend("toml", keys={"port": "database.port", "password": "database.password"})
    assert "port = 6543" in render(store, TOML, {"port": "6543", "password": "x"})


def test_toml_duplicate_keys_are_a_store_error_without_the_value():
    for text in (f"b = '{SECRET}'\nb = '{SECRET}'\n", f"[a]\nb = '{SECRET}'\nb = '{SECRET}'\n"):
        with pytest.raises(StoreError, match=r"^store 'f' .*a key is defined twice") as err:
            value_in(backend("toml", "a.b"), text)
        assert SECRET not in str(err.value)
    with pytest.raises(StoreError, match=r"a key is defined twice \(line 2\)"):
        value_in(backend("toml", "b"), "b = 1\nb = 2\n")


# -- pgpass --------------------------------------------------------------------------------

PGPASS = """# libpq password file
db.internal:5432:otherdb:app_user:other
*:5432:appdb:app_user:old\\:pw\\\\x
*:*:*:app_user:fallback
"""


def test_pgpass_uses_the_line_libpq_would_use():
    store = backend("pgpass", "db.internal:5432:appdb:app_user")
    assert value_in(store, PGPASS) == "old:pw\\x"
    assert value_in(backend("pgpass", "h:1:x:app_user"), PGPASS) == "fallback"
    assert value_in(backend("pgpass", "db.internal:5432:otherdb:app_user"), PGPASS) == "other"
    with pytest.raises(StoreError, match="no line of the file matches h:1:x:nobody"):
        value_in(backend("pgpass", "h:1:x:nobody"), PGPASS)


@ROUND
@given(password=passwords, host=st.sampled_from(["db.internal", "*", "h\\:6"]))
def test_pgpass_round_trip_escapes_colons_and_backslashes(password, host):
    text = PGPASS.replace("*:5432:appdb", f"{host}:5432:appdb")
    key = f"{'db.internal' if host == '*' else host}:5432:appdb:app_user"
    store = backend("pgpass", key)
    new = render(store, text, password)
    assert value_in(store, new) == password
    assert changed_lines(text, new) == [3]


def test_pgpass_group_or_other_access_is_the_cause_named():
    syntax = PgpassSyntax({})
    assert syntax.file_problem(0o100600) is None
    assert "libpq ignores this password file" in syntax.file_problem(0o100640)
    assert "0604" in syntax.file_problem(0o100604)


def test_a_pgpass_store_readable_by_others_is_a_store_error(tmp_path):
    path = tmp_path / "pgpass"
    path.write_text("*:*:*:app_user:pw\n")
    path.chmod(0o644)
    store = Store({"name": "pgpass", "type": "file", "format": "pgpass", "path": str(path),
                   "key": "h:5432:appdb:app_user"}, {})
    with pytest.raises(StoreError, match=r"^store 'pgpass' .*libpq ignores this password file: "
                                         r"its mode 0644"):
        store.read()
    path.chmod(0o600)
    assert store.read()[0].password == "pw"


# -- k8s_secret ----------------------------------------------------------------------------

def manifest(password: str) -> str:
    encoded = base64.b64encode(password.encode()).decode()
    return ("# the app's manifests\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
            "data:\n  password: not-this\n---\n# the Secret\napiVersion: v1\nkind: Secret\n"
            f"metadata:\n  name: app-db\ntype: Opaque\ndata:\n  password: {encoded}  # b64\n"
            "  username: YXBwX3VzZXI=\nstringData:\n  url: postgresql://h/appdb\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: other\ndata:\n"
            "  password: b3RoZXI=\n")


@ROUND
@given(password=passwords)
def test_k8s_secret_round_trip_base64_of_the_exact_bytes(password):
    text = manifest("old")
    store = backend("k8s_secret", "password", document="app-db")
    new = render(store, text, password)
    assert value_in(store, new) == password
    docs = list(yaml.safe_load_all(new))
    # what the API server would hand the pod: the exact bytes, no newline added
    assert base64.b64decode(docs[1]["data"]["password"]) == password.encode()
    assert docs[0] == next(iter(yaml.safe_load_all(text))) and docs[2]["data"]["password"] == \
        "b3RoZXI="
    assert changed_lines(text, new) == [16] and "  # b64" in new.splitlines()[15]
    old_spans, new_spans = split_documents(text), split_documents(new)
    assert text[slice(*old_spans[0])] == new[slice(*new_spans[0])]
    assert text[slice(*old_spans[2])] == new[slice(*new_spans[2])]


def test_k8s_secret_string_data_and_document_choice():
    text = manifest("old")
    assert value_in(backend("k8s_secret", "url", document="app-db"), text) == \
        "postgresql://h/appdb"
    new = render(backend("k8s_secret", "url", document="app-db"), text, "postgresql://x/y")
    assert "  url: postgresql://x/y\n" in new
    with pytest.raises(StoreError, match="several Secrets: set document"):
        value_in(backend("k8s_secret", "password"), text)
    with pytest.raises(StoreError, match="no Secret named 'nope'"):
        value_in(backend("k8s_secret", "password", document="nope"), text)


def test_k8s_secret_data_not_base64_is_a_store_error_and_nothing_is_written():
    text = manifest("old").replace("YXBwX3VzZXI=", SECRET + "!")
    store = backend("k8s_secret", "username", document="app-db")
    for action in (lambda: value_in(store, text), lambda: render(store, text, "x")):
        with pytest.raises(StoreError, match=r"^store 'f' .*data.username is not valid base64") \
                as err:
            action()
        assert SECRET not in str(err.value)


def test_document_is_only_for_k8s_secret():
    with pytest.raises(StoreError, match="document is for the k8s_secret format"):
        backend("yaml", "a", document="x")


# -- yaml: the ruamel.yaml tier and the warning of the last ----------------------------------

FLOW = ("# keep this comment\ndatabase: {host: h, password: old}  # flow\n"
        "anchor: &a {x: 1}\nalias: *a\n")


def test_yaml_flow_mapping_goes_through_ruamel_keeping_comments_and_anchors():
    pytest.importorskip("ruamel.yaml")
    store = backend("yaml", "database")
    new = render(store, FLOW, {"host": "h", "password": "n3w"})
    assert store.warnings == []
    assert new == FLOW.replace("password: old", "password: n3w")


def test_yaml_without_ruamel_re_dumps_and_warns(monkeypatch):
    monkeypatch.setattr(file_yaml, "RuamelYAML", None)
    store = backend("yaml", "database")
    new = render(store, FLOW, {"host": "h", "password": "n3w"})
    assert yaml.safe_load(new)["database"]["password"] == "n3w"
    assert store.warnings == [("store 'f': database could not be edited in place; the YAML file "
                               "was re-written and its comments were lost (install ruamel.yaml "
                               "to keep them)")]


# -- a credential over several keys ------------------------------------------------------------

SPRING_KEYS = {"password": "spring.datasource.password",
               "username": "spring.datasource.username", "dsn": "spring.datasource.url"}


@pytest.mark.parametrize(("fmt", "text", "keys"), [
    ("properties", PROPERTIES, SPRING_KEYS),
    ("yaml", ("spring:\n  datasource:\n    url: postgresql://db.internal:5432/appdb  # url\n"
              "    username: app_user\n    password: 'old'\n"), SPRING_KEYS),
    ("json", ('{"spring": {"datasource": {"url": "postgresql://db.internal:5432/appdb", '
              '"username": "app_user", "password": "old"}}}\n'), SPRING_KEYS),
    ("toml", ('[spring.datasource]\nurl = "postgresql://db.internal:5432/appdb"\n'
              'username = "app_user"\npassword = "old"\n'), SPRING_KEYS),
    ("dotenv", "DB_URL=postgresql://db.internal:5432/appdb\nDB_USER=app_user\nDB_PASS=old\n",
     {"password": "DB_PASS", "username": "DB_USER", "dsn": "DB_URL"}),
    ("ini", SERVICE.replace("host=127.0.0.1", "host=db.internal"),
     {"password": "app.password", "username": "app.user", "host": "app.host",
      "port": "app.port", "dbname": "app.dbname"}),
    ("k8s_secret", ("kind: Secret\nmetadata:\n  name: s\nstringData:\n"
                    "  url: postgresql://db.internal:5432/appdb\n  username: app_user\n"
                    "data:\n  password: b2xk\n"),
     {"password": "password", "username": "username", "dsn": "url"}),
])
def test_keys_mapping_in_every_format(tmp_path, fmt, text, keys):
    path = tmp_path / f"app.{fmt}"
    path.write_text(text)
    path.chmod(0o600)
    store = Store({"name": "spread", "type": "file", "format": fmt, "path": str(path),
                   "keys": keys}, {})
    cred, _stored = store.read()
    assert (cred.username, cred.host, cred.port, cred.dbname) == \
        ("app_user", "db.internal", 5432, "appdb")
    plan = store.plan_write({"username": "app_user_clone", "password": "n3w:P@ss"})
    assert plan.changed
    store.write(plan)
    cred, _stored = store.read()
    assert (cred.username, cred.password, cred.host) == \
        ("app_user_clone", "n3w:P@ss", "db.internal")
    assert not store.plan_write({"username": "app_user_clone", "password": "n3w:P@ss"}).changed
    if "dsn" in keys:  # the URL held no user or password: its text is as it was
        assert "postgresql://db.internal:5432/appdb" in path.read_text()


def test_keys_rewrites_a_dsn_that_holds_the_password():
    store = backend("dotenv", keys={"dsn": "DATABASE_URL", "username": "DB_USER"})
    value = {"dsn": "postgresql://app_user:old@h:5432/appdb", "username": "app_user"}
    from ansible_collections.credops.pgauth.plugins.module_utils.credential_keys import (
        decode_keys,
        encode_keys,
    )
    cred = decode_keys(value)
    assert cred.password == "old"
    new = encode_keys(cred.merged({"password": "p@ss/w"}), value)
    assert new == {"dsn": "postgresql://app_user:p%40ss%2Fw@h:5432/appdb", "username": "app_user"}
    assert render(store, "DATABASE_URL=x\nDB_USER=app_user\n", new).startswith(
        "DATABASE_URL=postgresql://app_user:p%40ss%2Fw@h:5432/appdb\n")


@pytest.mark.parametrize(("keys", "message"), [
    ({"user": "a"}, "unknown fields user"),
    ({"username": "a"}, "needs a password or dsn"),
    ({"password": ""}, "each entry of keys names a key"),
    ("password", "keys must be a mapping"),
])
def test_bad_keys_are_store_errors(keys, message):
    with pytest.raises(StoreError, match=message):
        backend("properties", keys=keys)
    with pytest.raises(StoreError, match="mutually exclusive"):
        backend("properties", "a", keys={"password": "a"})


def test_missing_library_is_a_clear_pip_install_error(monkeypatch):
    from ansible_collections.credops.pgauth.plugins.module_utils import file_toml
    monkeypatch.setattr(file_toml, "tomlkit", None)
    with pytest.raises(StoreError, match="the toml format needs the Python library tomlkit on "
                                         "the host that runs the module: pip install tomlkit"):
        value_in(backend("toml", "a"), "a = 1\n")


def test_credential_over_keys_is_never_leaked_in_describe():
    store = backend("properties", keys=SPRING_KEYS)
    assert store.describe() == ("file /nonexistent/app.properties [spring.datasource.password, "
                                "spring.datasource.username, spring.datasource.url]")
    assert isinstance(Credential(), Credential) and io  # imports used


def test_keys_without_a_user_key_refuse_a_new_user(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text("[db]\npassword = 'old'\n")
    store = Store({"name": "no-user", "type": "file", "format": "toml", "path": str(path),
                   "keys": {"password": "db.password"}}, {})
    assert store.plan_write({"password": "n3w"}).changed
    with pytest.raises(StoreError, match=r"^store 'no-user' .*the username changes and this "
                                         r"store has no key for it \(add username to keys\)"):
        store.plan_write({"username": "app_user_clone", "password": "n3w"})
    assert path.read_text() == "[db]\npassword = 'old'\n"


@ROUND
@given(password=passwords)
def test_yaml_ruamel_tier_round_trips_every_password(password):
    """The flow mapping goes through ruamel.yaml: any password, comments and anchors kept."""
    pytest.importorskip("ruamel.yaml")
    store = backend("yaml", "database")
    new = render(store, FLOW, {"host": "h", "password": password})
    assert store.warnings == []
    assert value_in(store, new) == {"host": "h", "password": password}
    assert new.startswith("# keep this comment\ndatabase: {") and "# flow" in new
    assert yaml.safe_load(new)["alias"] == {"x": 1} and "&a" in new and "*a" in new


@ROUND
@given(password=passwords)
def test_keys_mapping_round_trips_every_password(password):
    store = backend("properties", keys=SPRING_KEYS)
    from ansible_collections.credops.pgauth.plugins.module_utils.credential_keys import (
        decode_keys,
        encode_keys,
    )
    existing = value_in(store, PROPERTIES)
    new_value = encode_keys(decode_keys(existing).merged({"password": password}), existing)
    new = render(store, PROPERTIES, new_value)
    assert decode_keys(value_in(store, new)).password == password
    assert changed_lines(PROPERTIES, new) == ([] if password == "old:pw" else [6])


TARGET = "database:\n  password: old  # kept\n"
LONG_VALUE = "database:\n  password: old" + " " * 65_536 + "x\n"


@pytest.mark.parametrize(("text", "expected"), [
    # no colon: the key pattern's worst case
    ("  - a" + " " * 65_536 + "b\n" + TARGET, "password: n3w  # kept"),
    ("key" + " \t" * 32_768 + "\n" + TARGET, "password: n3w  # kept"),
    # no '#' after a long run of spaces: the comment search's worst case
    (LONG_VALUE, "password: n3w\n")])
def test_yaml_in_place_edit_is_linear_on_a_long_line(text, expected):
    """Security review: the config's owner writes its lines, and rotate (as root) edits the
    file; one 32 KB line took 5 s and a long one hours.  A bound that guards against
    backtracking, not a benchmark."""
    import time
    started = time.process_time()
    new = file_yaml.yaml_set_in_place(text, ["database", "password"], "n3w")
    assert time.process_time() - started < 2.0
    assert new is not None and expected in new and "old" not in new


@pytest.mark.parametrize(("line", "expected"), [
    ("  password: old  # kept\n", "  password: n3w  # kept\n"),
    ("  password: old#not-a-comment\n", "  password: n3w\n"),
    ("  password: '#quoted' # c\n", "  password: n3w # c\n"),
    ("  'pass word' : old\t# c\n", None),
    ("  password : old\n", "  password : n3w\n")])
def test_yaml_in_place_keeps_key_spacing_and_comments(line, expected):
    new = file_yaml.yaml_set_in_place("database:\n" + line, ["database", "password"], "n3w")
    assert new == (None if expected is None else "database:\n" + expected)
