"""discover's pure parts: the classification table, the primary rule, and the keys each
file format's candidates are read at."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils import discover_classify as dc
from ansible_collections.credops.pgauth.plugins.module_utils.discover import (
    DiscoverError,
    ScopeBudget,
    ScopeRun,
    pgpass_address,
    validated_scopes,
)
from ansible_collections.credops.pgauth.plugins.module_utils.discover_aws import (
    value_format,
    variable_format,
)
from ansible_collections.credops.pgauth.plugins.module_utils.discover_files import (
    SkipFile,
    file_candidates,
    file_format,
)
from ansible_collections.credops.pgauth.plugins.module_utils.discover_vault import choose_field

TARGET = {"role": "app_user", "host": "db.internal", "port": 5432, "dbname": "app"}


def cand(username="app_user", host=None, port=None, dbname=None, password=True):
    return {"username": username, "host": host, "port": port, "dbname": dbname,
            "has_password": password}


@pytest.mark.parametrize(("candidate", "verified", "expected"), [
    # current: the password verifies and the address contradicts nothing of the target
    (cand(), True, ("current", "both")),
    (cand(host="db.internal", port=5432, dbname="app"), True, ("current", "both")),
    (cand(host="DB.internal", port="5432"), True, ("current", "both")),
    (cand(username=None), True, ("current", "value")),
    (cand(username=None, host="db.internal"), True, ("current", "value")),
    # shared: the password verifies but the copy names another user, host, port or db
    (cand(username="other", host="elsewhere"), True, ("shared", "value")),
    (cand(username="other"), True, ("shared", "value")),
    (cand(host="other.internal"), True, ("shared", "value")),
    (cand(username=None, host="other.internal"), True, ("shared", "value")),
    (cand(port=5433), True, ("shared", "value")),
    (cand(dbname="other"), True, ("shared", "value")),
    # stale: does not verify, names the role AND the target's host; port/db equal or absent
    (cand(host="db.internal"), False, ("stale", "address")),
    (cand(host="DB.internal", port="5432"), False, ("stale", "address")),
    (cand(host="db.internal", port=5432, dbname="app"), False, ("stale", "address")),
    # unknown: names the role without a host (may be staging's), or not checked
    (cand(), False, ("unknown", "address")),
    (cand(dbname="app"), False, ("unknown", "address")),
    (cand(), None, ("unknown", "address")),
    (cand(host="db.internal"), None, ("unknown", "address")),
    # unrelated: another role, host, port or dbname, or no password at all
    (cand(username="other"), False, ("unrelated", None)),
    (cand(username="other", host="db.internal"), False, ("unrelated", None)),
    (cand(host="other.internal"), False, ("unrelated", None)),
    (cand(host="db.internal", port=5433), False, ("unrelated", None)),
    (cand(host="db.internal", dbname="other"), False, ("unrelated", None)),
    (cand(username=None), False, ("unrelated", None)),
    (cand(username=None, host="db.internal"), False, ("unrelated", None)),
    (cand(username=None), None, ("unrelated", None)),
    (cand(password=False), None, ("unrelated", None)),
    (cand(password=False), True, ("unrelated", None)),
])
def test_classification_table(candidate, verified, expected):
    assert dc.classify(candidate, TARGET, verified) == expected


@pytest.mark.parametrize(("candidate", "allowed"), [
    (cand(host="db.internal"), True),
    (cand(host="db.internal", port=5432, dbname="app"), True),
    (cand(), False),  # a host-less app_user secret (staging's?) is never sent to the target
    (cand(username=None, host="db.internal"), False),
    (cand(username="other", host="db.internal"), False),
    (cand(host="db.internal", port=5433), False),
])
def test_login_fallback_only_for_copies_naming_role_and_host(candidate, allowed):
    assert dc.names_target(candidate, TARGET) is allowed


def test_primary_rule_current_first_then_secrets_manager_then_vault_then_name():
    found = [
        {"status": "current", "store": {"type": "file", "name": "a-file"}},
        {"status": "stale", "store": {"type": "aws_secretsmanager", "name": "sm-old"}},
        {"status": "current", "store": {"type": "vault_kv2", "name": "v"}},
        {"status": "current", "store": {"type": "aws_secretsmanager", "name": "sm-b"}},
        {"status": "current", "store": {"type": "aws_secretsmanager", "name": "sm-a"}},
        {"status": "current", "store": {"type": "aws_ssm", "name": "p"}},
    ]
    assert [item["store"]["name"] for item in dc.primary_order(found)] == [
        "sm-a", "sm-b", "v", "p", "a-file", "sm-old"]


def test_unique_names():
    taken: set[str] = set()
    assert [dc.unique_name("x", taken) for _round in range(3)] == ["x", "x-2", "x-3"]


@pytest.mark.parametrize(("path", "text", "fmt"), [
    ("/srv/app/.env", "", "dotenv"),
    ("/srv/app/prod.env", "", "dotenv"),
    ("/srv/app/.env.production", "", "dotenv"),
    ("/srv/app/application.properties", "", "properties"),
    ("/srv/app/config.yaml", "db: {}", "yaml"),
    ("/srv/app/secret.yml", "apiVersion: v1\nkind: Secret\n", "k8s_secret"),
    ("/srv/app/config.json", "{}", "json"),
    ("/srv/app/config.toml", "", "toml"),
    ("/etc/pg_service.conf", "", "ini"),
    ("/srv/app/app.ini", "", "ini"),
    ("/srv/app/app.conf", "[db]\nhost=x\n", "ini"),
    ("/home/u/.pgpass", "", "pgpass"),
    ("/srv/app/README.md", "", None),
    ("/srv/app/app.conf", "no sections", None),
])
def test_file_format_by_name(path, text, fmt):
    assert file_format(path, text) == fmt


DSN = "postgresql://app_user:pw@db.internal:5432/app"


@pytest.mark.parametrize(("name", "text", "expected"), [
    (".env", f"DATABASE_URL={DSN}\nOTHER=1\n",
     [{"key": "DATABASE_URL", "value_format": "dsn"}]),
    (".env", "DB_USER=app_user\nDB_PASSWORD='x y'\nDB_HOST=db.internal\n",
     [{"keys": {"password": "DB_PASSWORD", "username": "DB_USER", "host": "DB_HOST"}}]),
    (".env", "PGUSER=app_user\nPGPASSWORD=x\nPGPORT=5432\nPGDATABASE=app\n",
     [{"keys": {"password": "PGPASSWORD", "username": "PGUSER", "port": "PGPORT",
                "dbname": "PGDATABASE"}}]),
    ("app.properties", ("spring.datasource.url=jdbc:postgresql://db.internal:5432/app\n"
                        "spring.datasource.username=app_user\nspring.datasource.password=x\n"),
     [{"keys": {"password": "spring.datasource.password",
                "username": "spring.datasource.username", "dsn": "spring.datasource.url"}}]),
    ("c.yaml", "app:\n  database:\n    user: app_user\n    password: x\n    port: 5432\n",
     [{"keys": {"password": "app.database.password", "username": "app.database.user",
                "port": "app.database.port"}}]),
    ("c.json", json.dumps({"db": {"url": DSN}, "token": "abc"}),
     [{"key": "db.url", "value_format": "dsn"}]),
    ("c.toml", "[database]\npassword = \"x\"\n",
     [{"key": "database.password", "value_format": "password"}]),
    ("pg_service.conf", "[app]\nhost=db.internal\nuser=app_user\npassword=x\n",
     [{"keys": {"password": "app.password", "username": "app.user", "host": "app.host"}}]),
    (".pgpass", "# comment\ndb.internal:5432:app:app_user:x\n*:*:*:other:y\n",
     [{"key": "db.internal:5432:app:app_user"}, {"key": "*:*:*:other"}]),
])
def test_file_keys(name, text, expected):
    found = file_candidates(f"/srv/{name}", text)
    fmt = file_format(f"/srv/{name}", text)
    assert found == [{"type": "file", "path": f"/srv/{name}", "format": fmt, **item}
                     for item in expected]


def test_k8s_secret_keys_and_document():
    encoded = base64.b64encode(b"x").decode()
    text = ("apiVersion: v1\nkind: Secret\nmetadata: {name: one}\n"
            f"data: {{password: {encoded}, username: {base64.b64encode(b'app_user').decode()}}}\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata: {name: two}\n"
            f"stringData: {{DATABASE_URL: '{DSN}', broken: '%%%'}}\n")
    found = file_candidates("/srv/s.yaml", text)
    assert found == [
        {"type": "file", "path": "/srv/s.yaml", "format": "k8s_secret", "document": "one",
         "keys": {"password": "password", "username": "username"}},
        {"type": "file", "path": "/srv/s.yaml", "format": "k8s_secret", "document": "two",
         "key": "DATABASE_URL", "value_format": "dsn"}]


@pytest.mark.parametrize(("name", "text"), [
    ("c.json", "{broken"), ("c.yaml", "a: [b"), ("c.toml", "= x"), ("x.bin", "")])
def test_unparseable_files_are_skipped_without_the_value(name, text):
    with pytest.raises(SkipFile) as err:
        file_candidates(f"/srv/{name}", text)
    assert text not in str(err.value) or not text


def test_value_and_variable_formats():
    assert value_format(json.dumps({"password": "x"})) == "json"
    assert value_format(DSN) == "dsn"
    assert value_format("hunter2") == "password"
    assert value_format('{"password": "x') == "json"  # broken: Store skips it, counted
    assert value_format("") is None
    assert variable_format("DB_PASSWORD", "x") == "password"
    assert variable_format("PGPASSWORD", "x") == "password"
    assert variable_format("DATABASE_URL", DSN) == "dsn"
    assert variable_format("LOG_LEVEL", "debug") is None
    assert variable_format("COMPASS", "x") is None


def test_vault_field_choice():
    assert choose_field({"username": "u", "password": "p"}) == {"format": "json"}
    assert choose_field({"url": DSN}) == {"format": "dsn", "key": "url"}
    assert choose_field({"db_pass": "p"}) == {"format": "password", "key": "db_pass"}
    assert choose_field({"api_token": "t"}) is None


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_scope_bounds_end_the_scope_with_a_warning():
    clock = FakeClock()
    run = ScopeRun(0, {"type": "file", "max_candidates": 2, "timeout": 5}, clock)
    run.tick()
    run.tick()
    with pytest.raises(ScopeBudget, match="max_candidates 2"):
        run.tick()
    run = ScopeRun(1, {"type": "aws_ssm", "name": "ssm-prod", "max_candidates": 9,
                       "timeout": 5}, clock)
    run.tick()
    clock.now += 6
    with pytest.raises(ScopeBudget, match=r"scope 2 \(ssm-prod\): timeout 5s reached after 1"):
        run.tick()
    assert run.progress().startswith("scope 2 (ssm-prod): 1 values looked at, 0 current")


@pytest.mark.parametrize(("scope", "message"), [
    ({"type": "nosuch"}, "value of type must be one of"),
    ({"type": "file", "globs": "x", "max_candidates": "many"}, "max_candidates"),
    ("file", "a scope must be a dict"),
])
def test_bad_scopes_are_refused_naming_the_scope(scope, message):
    with pytest.raises(DiscoverError, match=message):
        validated_scopes([scope])


FILE_NAMES = ["a.json", "a.yaml", "s.yml", "a.toml", "a.ini", "pg_service.conf", ".env",
              "a.properties", ".pgpass"]
TEXT = st.text(alphabet=st.sampled_from(list("ab=:[]{}\"'\n #-.\\xPASWORD_ukind:Secret")),
               max_size=200)


@settings(max_examples=150, deadline=None, database=None)
@given(name=st.sampled_from(FILE_NAMES), text=TEXT)
def test_any_file_text_is_candidates_or_a_skip(name, text):
    """Untrusted files: a list of file stores or SkipFile, nothing else, ever."""
    try:
        found = file_candidates(f"/srv/{name}", text)
    except SkipFile:
        return
    assert all(item["type"] == "file" and ("key" in item or "keys" in item) for item in found)


def test_deeply_nested_json_is_skipped():
    with pytest.raises(SkipFile):
        file_candidates("/srv/a.json", "[" * 100000)


def test_discover_markdown_lists_the_copies_escaped():
    from ansible_collections.credops.pgauth.plugins.module_utils.discover_report import (
        render_discover_markdown,
    )
    report = {"runbook": "discover", "target": TARGET, "verdict": "degraded",
              "generated_at": "2026-12-02T00:00:00+00:00", "method": "verifier", "logins": 0,
              "counts": {"current": 1, "stale": 1, "unrelated": 3}, "skipped": 1,
              "copies": [
                  {"status": "current", "match": "both", "username": "app_user",
                   "host": "db.internal", "store": {"name": "sm:prod/app",
                                                    "type": "aws_secretsmanager",
                                                    "secret_id": "prod/app"}},
                  {"status": "stale", "match": "address", "username": "app_user", "host": None,
                   "store": {"name": "file:/srv/|x|/.env[DB_PASSWORD,DB_USER]", "type": "file",
                             "path": "/srv/|x|/.env",
                             "keys": {"password": "DB_PASSWORD", "username": "DB_USER"}}}],
              "progress": ["scope 1 (aws_secretsmanager): 5 values looked at"],
              "errors": ["scope 2 (vault_kv2): access denied"], "warnings": []}
    text = render_discover_markdown(report)
    assert "| current | both | `sm:prod/app` | aws_secretsmanager | prod/app |" in text
    assert "/srv/\\|x\\|/.env keys password=DB_PASSWORD" in text  # a | stays in its cell
    assert "## Not listed (errors)" in text and "access denied" in text
    assert "No findings" not in text


def test_the_file_scope_is_bounded(tmp_path):
    from ansible_collections.credops.pgauth.plugins.module_utils.discover_files import (
        enumerate_files,
    )
    for index in range(5):
        (tmp_path / f"{index}.env").write_text("A_PASSWORD=x\nB_PASSWORD=y\n")
    scope = {"type": "file", "globs": [str(tmp_path / "*.env")], "max_candidates": 3,
             "timeout": 60}
    run = ScopeRun(0, scope)
    found = []
    with pytest.raises(ScopeBudget, match="max_candidates 3"):
        found.extend(enumerate_files(scope, {}, run))
    assert len(found) == 3 and run.looked == 3
    clock = FakeClock()
    run = ScopeRun(0, {**scope, "max_candidates": 100, "timeout": 1}, clock)
    clock.now += 2
    with pytest.raises(ScopeBudget, match="timeout"):
        list(enumerate_files(scope, {}, run))


SECRET_TEXT = base64.b64encode(b"s3cret-pw").decode()
FILES = {
    ".env": "DB_USER=app_user\nDB_PASSWORD=s3cret-pw\nDB_HOST=db.internal\n",
    "app.properties": ("spring.datasource.url=jdbc:postgresql://db.internal:5432/app\n"
                       "spring.datasource.username=app_user\n"
                       "spring.datasource.password=s3cret-pw\n"),
    "config.yaml": "db:\n  user: app_user\n  password: s3cret-pw\n  port: 5432\n",
    "config.json": json.dumps({"db": {"username": "app_user", "password": "s3cret-pw"}}),
    "config.toml": "[db]\nuser = \"app_user\"\npassword = \"s3cret-pw\"\n",
    "pg_service.conf": "[app]\nhost=db.internal\nuser=app_user\npassword=s3cret-pw\n",
    ".pgpass": "db.internal:5432:app:app_user:s3cret-pw\n",
    "secret.yaml": ("apiVersion: v1\nkind: Secret\nmetadata: {name: app}\n"
                    f"data: {{password: {SECRET_TEXT}}}\n"
                    "stringData: {username: app_user}\n"),
    "url.env": "DATABASE_URL=postgresql://app_user:s3cret-pw@db.internal:5432/app\n",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_candidate_reads_through_store(tmp_path, name):
    """What discover proposes is what a file store reads: the same keys, the same password,
    and the username where the file has one."""
    from ansible_collections.credops.pgauth.plugins.module_utils.store import Store
    path = tmp_path / name
    path.write_text(FILES[name])
    path.chmod(0o600)
    found = file_candidates(str(path), FILES[name])
    assert len(found) == 1, found
    cred, _stored = Store({"name": "x", **found[0]}, {}).read()
    assert cred.password == "s3cret-pw"
    # a .pgpass line's user is its key's (pgpass_address), not the credential's
    assert (cred.username or pgpass_address(found[0])["username"]) == "app_user"


def test_pgpass_address():
    spec = {"type": "file", "format": "pgpass", "path": "/x", "key": "db.internal:*:app:app_user"}
    assert pgpass_address(spec) == {"username": "app_user", "host": "db.internal",
                                    "dbname": "app", "port": None}
    assert pgpass_address({"type": "file", "format": "dotenv", "key": "A"}) == {}


@pytest.fixture
def engine(monkeypatch):
    """discover() over file scopes with the role's verifier faked (no database)."""
    from ansible_collections.credops.pgauth.plugins.module_utils import discover as engine
    from ansible_collections.credops.pgauth.plugins.module_utils.scram import make_verifier
    verifier = make_verifier("real-pw-123", b"0123456789abcdef")
    monkeypatch.setattr(engine.PasswordCheck, "_read_verifier",
                        lambda self, fallback: (verifier, "verifier"))
    return engine


def _run(engine, globs):
    hidden: list[str] = []
    return engine.discover({"target": TARGET, "scopes": [{"type": "file", "globs": globs}]},
                           hidden.append)


def test_a_candidate_named_like_a_template_is_skipped_naming_only_the_scope(engine, tmp_path):
    hostile = tmp_path / "{{ lookup('pipe', 'id') }}.env"
    hostile.write_text("DB_USER=app_user\nDB_HOST=db.internal\nDB_PASSWORD=real-pw-123\n")
    (tmp_path / "{% if 1 %}.json").write_text(json.dumps({"password": "real-pw-123"}))
    (tmp_path / "ok.env").write_text("DB_USER=app_user\nDB_HOST=db.internal\n"
                                     "DB_PASSWORD=real-pw-123\n")
    result = _run(engine, [str(tmp_path / "*")])
    assert [item["path"] for item in result["vars"]["pgauth_stores"]] == [
        str(tmp_path / "ok.env")]
    assert result["skipped"] == 2
    assert all("lookup" not in reason and "{% if" not in reason
               for reason in result["skipped_reasons"])
    assert all(reason.startswith("scope 1 (file): a candidate whose name")
               for reason in result["skipped_reasons"])


def test_foreign_and_hostless_copies_are_not_in_vars(engine, tmp_path):
    files = {
        "mine.env": "DB_USER=app_user\nDB_HOST=db.internal\nDB_PASSWORD=real-pw-123\n",
        "other-user.env": "DB_USER=billing\nDB_PASSWORD=real-pw-123\n",
        "other-host.env": "DB_USER=app_user\nDB_HOST=staging.internal\nDB_PASSWORD=real-pw-123\n",
        "old.env": "DB_USER=app_user\nDB_HOST=db.internal\nDB_PASSWORD=old-pw-456\n",
        "hostless-old.env": "DB_USER=app_user\nDB_PASSWORD=old-pw-456\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = _run(engine, [str(tmp_path / "*.env")])
    status = {Path(item["store"]["path"]).name: item["status"] for item in result["candidates"]}
    assert status == {"mine.env": "current", "other-user.env": "shared",
                      "other-host.env": "shared", "old.env": "stale",
                      "hostless-old.env": "unknown"}
    assert sorted(Path(item["path"]).name for item in result["vars"]["pgauth_stores"]) == [
        "mine.env", "old.env"]


def _file_scope(tmp_path, pattern="*"):
    return {"type": "file", "globs": [str(tmp_path / pattern)], "max_candidates": 100,
            "timeout": 60}


def test_files_are_read_safely_fifo_symlink_unknown_name(tmp_path, monkeypatch):
    import os
    import signal

    from ansible_collections.credops.pgauth.plugins.module_utils import discover_files
    real = tmp_path / "real.txt"
    real.write_text("DB_PASSWORD=s3cret-pw\n")
    os.mkfifo(tmp_path / "pipe.env")  # no writer: a blocking open would hang
    (tmp_path / "link.env").symlink_to(real)
    (tmp_path / "data.bin").write_text("DB_PASSWORD=s3cret-pw\n")
    opened: list[str] = []
    os_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.basename(str(path)))
        return os_open(path, *args, **kwargs)
    monkeypatch.setattr(discover_files.os, "open", spy)
    # a symlink swapped in after the listing: the listing sees a file, the open a link
    monkeypatch.setattr(discover_files, "iter_paths",
                        lambda globs, run=None: iter(sorted(str(p) for p in tmp_path.iterdir())))
    scope = _file_scope(tmp_path)
    run = ScopeRun(0, scope)
    signal.alarm(10)
    try:
        found = list(discover_files.enumerate_files(scope, {}, run))
    finally:
        signal.alarm(0)
    assert found == []
    assert "data.bin" not in opened and "real.txt" not in opened
    reasons = "\n".join(run.skipped)
    assert "pipe.env: not a regular file" in reasons
    assert "link.env: a symlink (not followed)" in reasons
    assert "s3cret" not in reasons


def _tree(root):
    for rel in ("a/.env", "a/b/c/x.env", "a/.hidden/y.env", ".top/z.env", "top.env",
                "a/b/app.properties", "a/b/.env.prod"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("K=v\n")


@pytest.mark.parametrize("pattern", ["**/*.env", "**/.env", "**", "**/*", "a/**/*.env",
                                     "a/**", "*/b/*", "**/b/**/*.env", "a/**/.env*", "*.env"])
def test_the_walk_matches_what_glob_matches(tmp_path, pattern):
    import glob
    import os

    from ansible_collections.credops.pgauth.plugins.module_utils.discover_walk import Walker
    _tree(tmp_path)
    full = str(tmp_path / pattern)
    expected = {path for path in glob.glob(full, recursive=True) if os.path.isfile(path)}
    assert set(Walker().paths(full)) == expected


def test_every_glob_of_a_scope_is_walked(tmp_path):
    from ansible_collections.credops.pgauth.plugins.module_utils.discover_files import iter_paths
    _tree(tmp_path)
    found = list(iter_paths([str(tmp_path / "**" / "*"), str(tmp_path / "**" / ".env")]))
    assert str(tmp_path / "a" / ".env") in found and str(tmp_path / "top.env") in found
    assert len(found) == len(set(found))


def test_the_walk_never_enters_a_symlinked_dir_and_keeps_its_bounds(tmp_path):
    import os
    import time

    from ansible_collections.credops.pgauth.plugins.module_utils.discover_files import (
        enumerate_files,
    )
    from ansible_collections.credops.pgauth.plugins.module_utils.discover_walk import (
        WalkBudget,
        Walker,
        skipped_dir,
    )
    top = tmp_path / "loop"
    for index in range(6):  # with glob(recursive=True): 6^depth paths, never ending
        (top / "d").mkdir(parents=True, exist_ok=True)
        os.symlink("..", top / "d" / f"up{index}")
    (top / "d" / "app.env").write_text("DB_PASSWORD=s3cret-pw\n")
    scope = {"type": "file", "globs": [str(top / "**" / "*.env")], "max_candidates": 100,
             "timeout": 5}
    started = time.monotonic()
    found = list(enumerate_files(scope, {}, ScopeRun(0, scope)))
    assert time.monotonic() - started < 5
    assert [spec["path"] for spec in found] == [str(top / "d" / "app.env")]
    # the deadline is checked inside the walk, between directories
    clock = FakeClock()
    run = ScopeRun(0, {**scope, "timeout": 1}, clock)
    walk = Walker(run.check_time)
    paths = walk.paths(str(tmp_path / "**" / "*.env"))
    clock.now += 2
    with pytest.raises(ScopeBudget, match="timeout"):
        list(paths)
    # an entry bound, and the kernel's trees never entered
    with pytest.raises(WalkBudget):
        list(Walker(max_entries=2).paths(str(tmp_path / "**" / "*.env")))
    assert skipped_dir("/proc") and skipped_dir("/sys/kernel") and skipped_dir("/dev/")
    assert not skipped_dir("/srv/proc")
    assert list(Walker().paths("/proc/**/status")) == []


def _alias_bomb(levels=9):
    lines = ["l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    for level in range(1, levels):
        refs = ", ".join(f"k{index}: *l{level - 1}" for index in range(10))
        lines.append(f"l{level}: &l{level} {{{refs}}}")
    return "\n".join(lines) + "\npassword: x\n"


@pytest.mark.parametrize("name", ["bomb.yaml", "secret.yaml"])
def test_a_yaml_alias_bomb_is_skipped_at_once(name):
    import time
    text = _alias_bomb() if name == "bomb.yaml" else "kind: Secret\n" + _alias_bomb()
    started = time.monotonic()
    with pytest.raises(SkipFile, match="aliases"):
        file_candidates(f"/srv/{name}", text)
    assert time.monotonic() - started < 1


def test_the_document_walk_is_bounded():
    from ansible_collections.credops.pgauth.plugins.module_utils import discover_files
    wide = json.dumps({f"k{index}": "v" for index in range(discover_files.MAX_NODES + 1)})
    with pytest.raises(SkipFile, match="values"):
        file_candidates("/srv/wide.json", wide)
    deep: dict = {"password": "deep-pw"}
    for _level in range(discover_files.MAX_DEPTH + 2):
        deep = {"x": deep}
    assert file_candidates("/srv/deep.json", json.dumps({**deep, "password": "top"})) == [
        {"type": "file", "path": "/srv/deep.json", "format": "json", "key": "password",
         "value_format": "password"}]
    ticks: list[int] = []
    file_candidates("/srv/some.json", json.dumps({f"k{index}": "v" for index in range(5000)}),
                    lambda: ticks.append(1))
    assert ticks  # the scope's deadline is checked inside one document's walk


def test_a_scope_bounds_its_aws_and_vault_calls_by_its_time_left():
    clock = FakeClock()
    run = ScopeRun(0, {"type": "aws_ssm", "timeout": 5, "max_candidates": 10}, clock)
    params = {"aws_config": {"retries": {"mode": "standard", "max_attempts": 8},
                             "read_timeout": 30}, "vault_timeout": 10}
    bounded = run.bounded(params)
    assert bounded["aws_config"] == {"retries": {"mode": "standard", "max_attempts": 2},
                                     "read_timeout": 5, "connect_timeout": 5}
    assert bounded["vault_timeout"] == 5
    clock.now += 3.5
    assert run.bounded(params)["aws_config"]["read_timeout"] == 2
    assert run.bounded({})["vault_timeout"] == 2
    assert params["aws_config"]["read_timeout"] == 30  # the caller's dict untouched


@pytest.fixture
def hanging_endpoint():
    """A loopback HTTP endpoint that accepts and never answers."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_hanging_aws_endpoint_ends_the_scope_near_its_timeout(hanging_endpoint):
    import time

    from ansible_collections.credops.pgauth.plugins.module_utils import discover_aws
    pytest.importorskip("boto3")
    run = ScopeRun(0, {"type": "aws_ssm", "timeout": 2, "max_candidates": 10,
                       "paths": ["/app"]})
    params = {"endpoint_url": hanging_endpoint, "region": "us-east-1",
              "access_key": "AKIAEXAMPLE", "secret_key": "example"}
    started = time.monotonic()
    with pytest.raises((discover_aws.ScopeError, ScopeBudget)):
        list(discover_aws.ssm(run.scope, run.bounded(params), run))
    assert time.monotonic() - started < 8  # 2 attempts of 2 s, not 8 of 30 s


def test_ecs_consumers_check_the_deadline(hanging_endpoint):
    from ansible_collections.credops.pgauth.plugins.module_utils import discover_aws
    pytest.importorskip("boto3")

    def late():
        raise ScopeBudget("scope 1: timeout")
    params = {"endpoint_url": hanging_endpoint, "region": "us-east-1",
              "access_key": "AKIAEXAMPLE", "secret_key": "example"}
    with pytest.raises(ScopeBudget):
        discover_aws.ecs_consumers({"clusters": ["prod"]}, params, {"api"}, "consumers", late)


def test_a_verifier_with_too_many_iterations_is_not_checked(monkeypatch):
    import time

    from ansible_collections.credops.pgauth.plugins.module_utils import discover as engine
    from ansible_collections.credops.pgauth.plugins.module_utils.scram import make_verifier
    costly = make_verifier("real-pw-123", b"0123456789abcdef", 4096).replace(
        "SCRAM-SHA-256$4096:", "SCRAM-SHA-256$2000000000:")
    monkeypatch.setattr(engine.PasswordCheck, "_read_verifier",
                        lambda self, fallback: (costly, "verifier"))
    check = engine.PasswordCheck({}, TARGET, 0, False)
    started = time.monotonic()
    assert check.check("real-pw-123", True) is None  # unknown, no PBKDF2 paid
    assert time.monotonic() - started < 1
    fine = make_verifier("real-pw-123", b"0123456789abcdef", engine.MAX_ITERATIONS)
    monkeypatch.setattr(engine.PasswordCheck, "_read_verifier",
                        lambda self, fallback: (fine, "verifier"))
    assert engine.PasswordCheck({}, TARGET, 0, False).check("real-pw-123", True) is True


def test_template_markers_anywhere_in_a_store_dict():
    from ansible_collections.credops.pgauth.plugins.module_utils.discover import holds_template
    assert holds_template({"path": "/srv/{{ x }}.env"})
    assert holds_template({"keys": {"password": "A{%B"}})
    assert holds_template({"keys": {"{#": "B"}})
    assert holds_template({"items": ["ok", "{{"]})
    assert not holds_template({"path": "/srv/{x}/.env", "key": "a.b", "port": 5432})


@pytest.mark.parametrize("text", [
    "kind: Secret\ndata: notadict\n", "kind: Secret\ndata: [x]\n",
    "kind: Secret\nstringData: {1: hunter2}\n"])
def test_a_secret_manifest_of_any_shape_is_no_crash(text):
    """Security review: a hand-edited manifest whose data is not a mapping of strings raised
    AttributeError, which ended the whole discover run."""
    assert file_candidates("/srv/s.yaml", text) == []


def test_one_file_that_breaks_its_parser_is_skipped_and_the_scan_goes_on(
        tmp_path, monkeypatch):
    from ansible_collections.credops.pgauth.plugins.module_utils import discover_files
    (tmp_path / "a.env").write_text("A_PASSWORD=x\n")
    (tmp_path / "b.env").write_text("B_PASSWORD=y\n")
    real = discover_files.file_candidates

    def breaks_on_a(path, text, *args):
        if path.endswith("a.env"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, text, *args)
    monkeypatch.setattr(discover_files, "file_candidates", breaks_on_a)
    scope = {"type": "file", "globs": [str(tmp_path / "*.env")], "timeout": 60,
             "max_candidates": 100}
    run = ScopeRun(0, scope)
    found = list(discover_files.enumerate_files(scope, {}, run))
    assert [spec["path"] for spec in found] == [str(tmp_path / "b.env")]
    assert any("a.env: cannot be read as its syntax (RecursionError)" in reason
               for reason in run.skipped), run.skipped


def test_a_tree_nested_past_the_depth_bound_is_not_entered(tmp_path):
    """1,500 nested directories (a path still under PATH_MAX) made the recursive walk raise
    RecursionError; now nothing below MAX_WALK_DEPTH is entered, and the skip says so."""
    from ansible_collections.credops.pgauth.plugins.module_utils import discover_files
    from ansible_collections.credops.pgauth.plugins.module_utils.discover_walk import (
        MAX_WALK_DEPTH,
    )
    levels = 1500
    for level in range(1, levels + 1):  # os.makedirs recurses once per level too
        os.mkdir(tmp_path / ("d/" * level))
    shallow = tmp_path / "d" / "d" / "app.env"
    shallow.write_text("DB_PASSWORD=x\n")
    scope = {"type": "file", "globs": [str(tmp_path / "**" / "*.env")], "timeout": 60,
             "max_candidates": 100}
    run = ScopeRun(0, scope)
    try:
        found = list(discover_files.enumerate_files(scope, {}, run))
    finally:  # bottom up: Python 3.11's rmtree recurses once per level
        shallow.unlink()
        for level in range(levels, 0, -1):
            os.rmdir(tmp_path / ("d/" * level))
    assert [spec["path"] for spec in found] == [str(shallow)]
    assert any(f"more than {MAX_WALK_DEPTH} levels" in reason for reason in run.skipped)
