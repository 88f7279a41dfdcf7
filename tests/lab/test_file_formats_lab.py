"""The file formats of issue 17 on the lab, read by their real clients: psql (libpq) with
PGPASSFILE and PGSERVICEFILE, Java's java.util.Properties, and a Kubernetes Secret decoded
the way the API server hands it to a pod.  Diagnose names the stale copies first and rotate
fixes them; libpq's rule that a group/other-accessible .pgpass is ignored is the cause
diagnose names."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from labfixtures import scenario
from runbooks import (
    assert_no_leak,
    lab_secrets,
    logs_in,
    read_report,
    read_stores,
    run_playbook,
    vars_for,
)


def rotate(lab: dict, tmp_path: Path, meta: dict, **extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    variables = vars_for(meta, lab, tmp_path / "reports")
    variables.pop("pgauth_logs")
    return run_playbook(lab, tmp_path, {**variables, **extra}, playbook="rotate")


def diagnose(lab: dict, tmp_path: Path, meta: dict) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    done = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "reports"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return read_report(tmp_path / "reports" / "localhost" / "diagnose.json")


def one_credential(meta: dict, lab: dict):
    """Every store holds the same credential, and it logs in."""
    creds = read_stores(meta, lab)
    assert all(cred is not None for cred in creds.values()), creds
    assert len({cred.password for cred in creds.values()}) == 1, "the stores disagree"
    users = {cred.username for cred in creds.values() if cred.username}
    assert len(users) <= 1, users
    first = next(iter(creds.values()))
    assert logs_in(lab, first.username or "app_user", first.password)
    return first


def client_env(lab: dict, **extra: str) -> dict:
    """An environment for psql with no password in it: libpq must find it in the file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "PGCONNECT_TIMEOUT": "5", **extra}


def psql(lab: dict, env: dict, *conninfo: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-w", *conninfo, "-c", "SELECT current_user"],
                          capture_output=True, text=True, env=env, check=False, timeout=30)


def tls(lab: dict) -> str:
    return f"sslmode=verify-full sslrootcert={lab['PGAUTH_LAB_SSLROOTCERT']}"


def test_k8s_secret_and_properties_are_diagnosed_then_fixed_by_rotate(lab, tmp_path):
    with scenario("password_mismatch_k8s_properties") as meta:
        app = Path(lab["PGAUTH_LAB_DIR"]) / "app"
        manifest, properties = app / "secret.yaml", app / "application.properties"
        secrets = lab_secrets(lab) | {read_stores(meta, lab)["k8s-secret"].password}
        before = manifest.read_text(), properties.read_text()
        report = diagnose(lab, tmp_path / "diagnose", meta)
        ids = [finding["id"] for finding in report["findings"]]
        assert ids[0] == "store_password_mismatch", ids
        named = json.dumps(report["findings"][0]["evidence"])
        assert "k8s-secret" in named and "app-properties" in named, named
        assert (manifest.read_text(), properties.read_text()) == before, "diagnose wrote"

        done = rotate(lab, tmp_path / "rotate", meta)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert_no_leak({"rotate output": done.stdout + done.stderr}, secrets)
        new = one_credential(meta, lab)
        # the failed logins of the outage are in the log: only what came after counts
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        after = diagnose(lab, tmp_path / "after", {**meta, "logs": {**meta["logs"],
                                                                    "since": since}})
        assert after["verdict"] == "healthy", [f["id"] for f in after["findings"]]

        # Kubernetes: the pod gets the base64 of the exact bytes, no trailing newline
        manifest_text = manifest.read_text()
        docs = list(yaml.safe_load_all(manifest_text))
        assert base64.b64decode(docs[1]["data"]["password"], validate=True) == \
            new.password.encode()
        assert base64.b64decode(docs[1]["data"]["username"]) == b"app_user"
        # the ConfigMap document, the comments and the other keys are as they were
        assert manifest_text.split("---")[0] == before[0].split("---")[0]
        assert "# rotated by credops" in manifest_text
        old_lines, new_lines = before[1].splitlines(), properties.read_text().splitlines()
        assert [a == b for a, b in zip(old_lines, new_lines, strict=True)] == \
            [True, True, True, True, False]
        assert java_property(tmp_path, properties, "app.datasource.password") == \
            hashlib.sha256(new.password.encode()).hexdigest()


def java_property(tmp_path: Path, path: Path, key: str) -> str:
    """The SHA-256 of a property as java.util.Properties reads it (never the value)."""
    if not shutil.which("java"):
        pytest.skip("no java")
    source = tmp_path / "ReadProperty.java"
    source.write_text(
        "import java.io.*; import java.security.*; import java.util.*;\n"
        "public class ReadProperty { public static void main(String[] a) throws Exception {\n"
        "  Properties p = new Properties();\n"
        "  try (InputStream in = new FileInputStream(a[0])) { p.load(in); }\n"
        "  byte[] d = MessageDigest.getInstance(\"SHA-256\").digest(\n"
        "      p.getProperty(a[1]).getBytes(\"UTF-8\"));\n"
        "  StringBuilder s = new StringBuilder();\n"
        "  for (byte b : d) s.append(String.format(\"%02x\", b));\n"
        "  System.out.println(s); } }\n")
    done = subprocess.run(["java", str(source), str(path), key], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_psql_logs_in_from_pgpass_and_pg_service_after_a_rotation(lab, tmp_path):
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        port = lab["PGAUTH_LAB_PGPORT"]
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"# libpq password file\n127.0.0.1:{port}:otherdb:app_user:keep\n"
                          f"127.0.0.1:{port}:appdb:app_user:{old.password}\n"
                          "*:*:*:someone:else\n")
        pgpass.chmod(0o600)
        service = tmp_path / "pg_service.conf"
        service.write_text(f"# services\n[lab-app]\nhost=127.0.0.1\nport={port}\ndbname=appdb\n"
                           f"user=app_user\npassword={old.password}\nsslmode=verify-full\n"
                           f"sslrootcert={lab['PGAUTH_LAB_SSLROOTCERT']}\n\n[other]\n"
                           "host=elsewhere\n")
        service.chmod(0o600)
        stores = [*meta["stores"],
                  {"name": "pgpass", "type": "file", "format": "pgpass", "path": str(pgpass),
                   "key": f"127.0.0.1:{port}:appdb:app_user"},
                  {"name": "pg-service", "type": "file", "format": "ini", "path": str(service),
                   "keys": {"password": "lab-app.password", "username": "lab-app.user",
                            "host": "lab-app.host", "port": "lab-app.port",
                            "dbname": "lab-app.dbname"}}]
        meta = {**meta, "stores": stores}
        login = ["-h", "127.0.0.1", "-p", port, "-U", "app_user", "-d", "appdb"]
        assert psql(lab, client_env(lab, PGPASSFILE=str(pgpass)), *login,
                    tls(lab)).stdout.strip() == "app_user"
        done = rotate(lab, tmp_path, meta)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        new = one_credential(meta, lab)
        assert new.password != old.password
        by_pgpass = psql(lab, client_env(lab, PGPASSFILE=str(pgpass)), *login, tls(lab))
        assert by_pgpass.stdout.strip() == "app_user", by_pgpass.stderr
        by_service = psql(lab, client_env(lab, PGSERVICEFILE=str(service)), "service=lab-app")
        assert by_service.stdout.strip() == "app_user", by_service.stderr
        text = pgpass.read_text()
        assert ":otherdb:app_user:keep\n" in text and text.startswith("# libpq password")
        assert "[other]\nhost=elsewhere\n" in service.read_text()
        assert oct(pgpass.stat().st_mode & 0o777) == "0o600"


def test_a_pgpass_readable_by_others_is_the_cause_diagnose_names(lab, tmp_path):
    with scenario("healthy") as meta:
        password = read_stores(meta, lab)["aws-app"].password
        port = lab["PGAUTH_LAB_PGPORT"]
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"*:{port}:appdb:app_user:{password}\n")
        pgpass.chmod(0o644)
        # libpq itself: the file is ignored, so the login has no password
        refused = psql(lab, client_env(lab, PGPASSFILE=str(pgpass)), "-h", "127.0.0.1", "-p",
                       port, "-U", "app_user", "-d", "appdb", tls(lab))
        assert refused.returncode != 0
        assert "has group or world access" in refused.stderr
        stores = [*meta["stores"], {"name": "pgpass", "type": "file", "format": "pgpass",
                                    "path": str(pgpass), "key": f"127.0.0.1:{port}:appdb:app_user"}]
        report = diagnose(lab, tmp_path, {**meta, "stores": stores})
        found = [f for f in report["findings"] if f["evidence"].get("store") == "pgpass"]
        assert [f["id"] for f in found] == ["store_unreadable"], report["findings"]
        assert "libpq ignores this password file: its mode 0644" in found[0]["evidence"]["error"]
        assert report["verdict"] != "healthy"
        assert password not in json.dumps(report)


def test_a_url_username_and_password_in_one_properties_file_rotate_alternating(lab, tmp_path):
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        props = tmp_path / "application.properties"
        url = (f"postgresql://127.0.0.1:{lab['PGAUTH_LAB_PGPORT']}/appdb?sslmode=verify-full"
               f"&sslrootcert={lab['PGAUTH_LAB_SSLROOTCERT']}")
        props.write_text(f"# app\napp.datasource.url={url}\napp.datasource.username=app_user\n"
                         f"app.datasource.password={old.password}\nserver.port=8080\n")
        props.chmod(0o600)
        store = {"name": "spring", "type": "file", "format": "properties", "path": str(props),
                 "keys": {"dsn": "app.datasource.url", "username": "app.datasource.username",
                          "password": "app.datasource.password"}}
        meta = {**meta, "stores": [*meta["stores"], store]}
        users = []
        for _run in range(2):
            done = rotate(lab, tmp_path, meta, pgauth_strategy="alternating_users")
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            users.append(one_credential(meta, lab).username)
        assert users == ["app_user_clone", "app_user"]
        text = props.read_text()
        assert f"app.datasource.url={url}\n" in text and text.endswith("server.port=8080\n")


DUMP_PROPERTIES = """
import java.io.*; import java.nio.charset.StandardCharsets; import java.nio.file.*;
import java.util.*;
public class DumpProperties { public static void main(String[] a) throws Exception {
  for (String name : a) {
    Properties p = new Properties();
    StringBuilder out = new StringBuilder(name).append('\\t');
    try (Reader in = Files.newBufferedReader(Paths.get(name), StandardCharsets.UTF_8)) {
      p.load(in);
      for (String key : new TreeSet<>(p.stringPropertyNames()))
        out.append(hex(key)).append('=').append(hex(p.getProperty(key))).append(',');
    } catch (IllegalArgumentException e) { out.append("ERROR"); }
    System.out.println(out); } }
  static String hex(String s) { StringBuilder b = new StringBuilder("x");
    for (byte c : s.getBytes(StandardCharsets.UTF_8)) b.append(String.format("%02x", c));
    return b.toString(); } }
"""


def test_the_properties_reader_agrees_with_java_on_a_tricky_corpus(tmp_path):
    """Java's own java.util.Properties is the reference: 1500 generated files of escapes,
    continuations, separators, comments and unicode read the same by both (jproperties
    does not: it errs on '#:' comments and reads a \\u cut by a line end)."""
    import random

    from ansible_collections.credops.pgauth.plugins.module_utils.file_properties import entries
    from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import FormatError
    if not shutil.which("java"):
        pytest.skip("no java")
    pieces = ["a", "b", "=", ":", " ", "\t", "\f", "\\", "#", "!", "\n", "\r\n", "\r", "u",
              "0", "\\u0041", "\\u00e9", "\\\n", "\\\\", "ü", "€", "key", "x y"]
    rng = random.Random(17)
    corpus = ["".join(rng.choice(pieces) for _piece in range(rng.randint(0, 30)))
              for _file in range(1500)]
    files = []
    for number, text in enumerate(corpus):
        path = tmp_path / f"{number}.properties"
        path.write_bytes(text.encode())
        files.append(str(path))
    source = tmp_path / "DumpProperties.java"
    source.write_text(DUMP_PROPERTIES)
    done = subprocess.run(["java", str(source), *files], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    java = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    disagree = []
    for name, text in zip(files, corpus, strict=True):
        try:
            mine = {entry.key: entry.value for entry in entries(text)}  # the last one wins
            ours = "".join(f"x{key.encode().hex()}=x{mine[key].encode().hex()},"
                           for key in sorted(mine, key=lambda k: k.encode("utf-16-be")))
        except FormatError:
            ours = "ERROR"
        if ours != java[name]:
            disagree.append(text)
    assert not disagree, f"{len(disagree)} of {len(corpus)} differ, e.g. {disagree[:3]!r}"


def test_java_reads_every_password_the_properties_writer_wrote(tmp_path):
    """The writer's side: 300 random passwords of printable ASCII and Unicode (astral
    characters too), each written into a file with comments, continuations and other
    keys, read back by java.util.Properties exactly."""
    import random

    from ansible_collections.credops.pgauth.plugins.module_utils.file_properties import (
        PropertiesSyntax,
    )
    if not shutil.which("java"):
        pytest.skip("no java")
    rng = random.Random(1717)
    alphabet = [chr(code) for code in range(0x20, 0x7f)] + list("éü€中文ßøй") + ["😀", "𝄞"]
    template = ("# comment\n! bang\nother = x \\\n   continued\n"
                "app.datasource.password : old\\:pw\nlast=1\n")
    syntax = PropertiesSyntax({})
    files, passwords = [], []
    for number in range(300):
        password = "".join(rng.choice(alphabet) for _char in range(rng.randint(1, 40)))
        path = tmp_path / f"{number}.properties"
        path.write_text(syntax.set(template, {"app.datasource.password": password}))
        files.append(str(path))
        passwords.append(password)
    source = tmp_path / "DumpProperties.java"
    source.write_text(DUMP_PROPERTIES)
    done = subprocess.run(["java", str(source), *files], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    java = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    wrong = 0
    for name, password in zip(files, passwords, strict=True):
        entry = f"x{b'app.datasource.password'.hex()}=x{password.encode().hex()},"
        wrong += entry not in java[name] or f"x{b'other'.hex()}=x{b'x continued'.hex()}," \
            not in java[name]
    assert wrong == 0, f"{wrong} of {len(files)} passwords read back differently by Java"
