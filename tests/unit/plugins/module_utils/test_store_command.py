"""The command store over real subprocesses: small /bin/sh CLIs that keep the value in a
file stand in for pass, kubectl and gh (the lab tests use the real pass)."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    WRITE_ONLY,
    Store,
    StoreError,
    StoreValueError,
)

PASSWORD = "Nw3!qLz8#Rt5@Vb7$Kp2"


def cli(script: str, *args: str) -> list[str]:
    return ["/bin/sh", "-c", script, "fake-cli", *args]


def spec(tmp_path: Path, **extra) -> dict:
    value = tmp_path / "value"
    return {"name": "cli-app", "type": "command",
            "read": cli('cat "$1"', str(value)),
            "write": cli('cat > "$1"', str(value)), **extra}


def test_write_then_read_back(tmp_path: Path):
    (tmp_path / "value").write_text("old-password")
    store = Store(spec(tmp_path), {})
    plan = store.plan_write({"password": PASSWORD})
    assert plan.changed
    store.write(plan)
    assert (tmp_path / "value").read_text() == PASSWORD
    cred, stored = store.read()
    assert cred.password == PASSWORD and stored.version is None
    assert not store.plan_write({"password": PASSWORD}).changed   # idempotent: read back


def test_one_trailing_newline_is_dropped_and_no_more(tmp_path: Path):
    (tmp_path / "value").write_text(PASSWORD + "\n")
    assert Store(spec(tmp_path), {}).read()[0].password == PASSWORD
    (tmp_path / "value").write_text(PASSWORD + " \n\n")
    assert Store(spec(tmp_path), {}).read()[0].password == PASSWORD + " \n"


def test_json_format_keeps_the_other_fields(tmp_path: Path):
    (tmp_path / "value").write_text(json.dumps({"username": "app_user", "password": "old-one",
                                                "host": "db", "port": 5432}))
    store = Store(spec(tmp_path, format="json"), {})
    store.write(store.plan_write({"password": PASSWORD}))
    written = json.loads((tmp_path / "value").read_text())
    assert written == {"username": "app_user", "password": PASSWORD, "host": "db", "port": 5432}


def test_base64_encoding(tmp_path: Path):
    (tmp_path / "value").write_text(base64.b64encode(b"old-password").decode())
    store = Store(spec(tmp_path, value_encoding="base64"), {})
    store.write(store.plan_write({"password": PASSWORD}))
    assert base64.b64decode((tmp_path / "value").read_text()).decode() == PASSWORD
    assert store.read()[0].password == PASSWORD
    (tmp_path / "value").write_text("not base64 !!")
    with pytest.raises(StoreValueError, match=r"cli-app.*base64"):
        store.read()


def test_write_only_is_never_read_and_always_written(tmp_path: Path):
    value = tmp_path / "value"
    store = Store({"name": "gh-app", "type": "command", "write_only": True,
                   "write": cli('cat > "$1"', str(value))}, {})
    assert store.write_only and not store.supports_pending
    with pytest.raises(StoreError) as err:
        store.read()
    assert err.value.code == WRITE_ONLY and "gh-app" in str(err.value)
    assert "write-only, not checked" in str(err.value)
    for _attempt in range(2):
        plan = store.plan_write({"password": PASSWORD})
        assert plan.changed and plan.before is None
        store.write(plan)
    assert value.read_text() == PASSWORD


@pytest.mark.parametrize("extra, message", [
    ({"read": None}, "read is required"),
    ({"write_only": True}, "takes no read command"),
    ({"value_encoding": "hex"}, "value_encoding"),
    ({"timeout": 0}, "timeout"),
    ({"format": "yaml"}, "format must be one of"),
    ({"value_format": "dsn"}, "value_format is for file stores"),
])
def test_bad_specs_name_the_store(tmp_path: Path, extra, message):
    with pytest.raises(StoreError, match=f"cli-app.*{message}"):
        Store(spec(tmp_path, **extra), {})


def test_command_keys_are_for_command_stores_only():
    file_store = {"name": "f", "type": "file", "path": "/nonexistent/x.env", "format": "dotenv",
                  "key": "PW"}
    with pytest.raises(StoreError, match=r"'f'.*write_only is for command stores"):
        Store({**file_store, "write_only": True}, {})
    with pytest.raises(StoreError, match=r"'f'.*read, timeout are for command stores"):
        Store({**file_store, "read": ["cat"], "timeout": 3}, {})
    assert Store({**file_store, "write_only": False}, {}).writable


def test_a_hanging_cli_is_a_clear_error_in_bounded_time(tmp_path: Path):
    store = Store(spec(tmp_path, read=["sleep", "300"], timeout=1), {})
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.read()
    assert time.monotonic() - started < 5
    assert str(err.value).startswith("store 'cli-app' (command sleep): read:")
    assert err.value.code == "timeout"


def test_a_failing_write_names_the_store_redacts_and_changes_nothing(tmp_path: Path):
    value = tmp_path / "value"
    value.write_text("old-password-kept")
    store = Store(spec(tmp_path, write=cli(
        'printf "rejected value %s\\n" "$(cat)" >&2; exit 2')), {})
    plan = store.plan_write({"password": PASSWORD})
    with pytest.raises(StoreError) as err:
        store.write(plan)
    text = str(err.value)
    assert text.startswith("store 'cli-app'") and "status 2" in text and "rejected value" in text
    assert PASSWORD not in text and err.value.code == "exit"
    assert value.read_text() == "old-password-kept"


def test_a_read_that_prints_the_value_on_stderr_does_not_leak_it(tmp_path: Path):
    (tmp_path / "value").write_text(PASSWORD)
    store = Store(spec(tmp_path, read=cli('cat "$1"; cat "$1" >&2; exit 1',
                                          str(tmp_path / "value"))), {})
    with pytest.raises(StoreError) as err:
        store.read()
    assert PASSWORD not in str(err.value) and "cli-app" in str(err.value)


def test_the_password_inside_a_json_value_is_redacted_alone(tmp_path: Path):
    (tmp_path / "value").write_text(json.dumps({"username": "u", "password": "x"}))
    store = Store(spec(tmp_path, format="json", write=cli(
        'python3 -c "import json,sys; print(json.load(sys.stdin)[\'password\'])" >&2; '
        'exit 1')), {})
    with pytest.raises(StoreError) as err:
        store.write(store.plan_write({"password": PASSWORD}))
    assert PASSWORD not in str(err.value) and "status 1" in str(err.value)


def test_env_reaches_the_cli_and_nothing_else_does(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "module-env-secret")
    monkeypatch.setenv("MY_CLI_HOME", "/srv/cli")
    store = Store(spec(tmp_path, env={"STORE_DIR": "/srv/x"}, inherit_env=["MY_CLI_HOME"],
                       read=["env"]), {})
    cred, _stored = store.read()
    assert "STORE_DIR=/srv/x" in cred.password and "MY_CLI_HOME=/srv/cli" in cred.password
    assert "module-env-secret" not in cred.password


def test_a_store_without_write_is_read_only(tmp_path: Path):
    (tmp_path / "value").write_text(PASSWORD)
    store = Store(spec(tmp_path, write=None), {})
    assert not store.writable and store.read()[0].password == PASSWORD
    with pytest.raises(StoreError, match=r"cli-app.*no write command"):
        store.write(store.plan_write({"password": "other-Pw-44"}))
    assert (tmp_path / "value").read_text() == PASSWORD


def test_rotation_refuses_a_read_only_store_before_anything(tmp_path: Path):
    from ansible_collections.credops.pgauth.plugins.module_utils.rotation import (
        Rotation,
        RotationError,
    )
    (tmp_path / "value").write_text(PASSWORD)
    params = {"role": "app_user", "strategy": "single_user", "generate": {},
              "stores": [spec(tmp_path, write=None)]}
    with pytest.raises(RotationError, match=r"cannot be written.*cli-app.*nothing was changed"):
        Rotation(params, None, lambda _secret: None, False)


def test_the_documented_recipes_are_valid_store_dicts():
    """docs/stores.md's command recipes (untested against their CLIs) at least validate."""
    import re

    import yaml

    from ansible_collections.credops.pgauth.plugins.module_utils import (
        store_params as store_module,
    )
    docs = Path(store_module.__file__).resolve().parents[2] / "docs" / "stores.md"
    blocks = [yaml.safe_load(block) for block in
              re.findall(r"```yaml\n(.*?)```", docs.read_text(), re.S)]
    recipes = [block[0] for block in blocks
               if isinstance(block, list) and block and block[0].get("type") == "command"]
    names = {recipe["name"] for recipe in recipes}
    assert names >= {"pass-app", "k8s-app", "az-app", "gh-app", "op-admin"}
    for recipe in store_module.validated_stores(recipes, "recipes"):
        store = Store(recipe, {})
        assert store.write_only == (recipe["name"] == "gh-app")
        assert store.writable == (recipe["name"] != "op-admin")
