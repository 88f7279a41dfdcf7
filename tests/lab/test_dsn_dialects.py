"""DSN dialects through the runbooks on the lab: a libpq URL, SQLAlchemy URLs for asyncpg and
psycopg2, a JDBC URL and a libpq keyword/value string, each in a Secrets Manager secret
(format dsn), and a SQLAlchemy+asyncpg DATABASE_URL in a dotenv file.

diagnose names each incident for every dialect; rotate (both strategies) rewrites each
string in its own dialect, with its own parameters, and the real client of each dialect
(SQLAlchemy+asyncpg, SQLAlchemy+psycopg2, the PostgreSQL JDBC driver, libpq) logs in with the
string exactly as stored; verify is healthy after."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
from clients import last_error, login_as_client, login_with_sqlalchemy
from labfixtures import BUILD, lab_client, lab_store_options, scenario
from psycopg2 import sql
from runbooks import assert_no_leak, lab_secrets, read_report, run_playbook, vars_for

from ansible_collections.credops.pgauth.plugins.module_utils.kvdsn import quote_value
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

# every character a URL, a query, a shell or libpq's quoting could trip on, and some unicode
TRICKY = "p@ss:w/rd?#&=+% 'q\"\\ ünï✓-Ab1"
DIALECTS = ("url", "sqlalchemy+asyncpg", "sqlalchemy+psycopg2", "jdbc", "keyword")
FILE_STORE = "env-asyncpg"


def dialect_dsns(target: dict, user: str, password: str) -> dict[str, str]:
    """Connection strings as applications write them, each with parameters of its own kind
    in an order of its own; every secret part encoded the way its client decodes it."""
    host, port, db, ca = target["host"], target["port"], target["dbname"], target["sslrootcert"]
    enc_user, enc_pw = quote(user, safe=""), quote(password, safe="")
    return {
        "url": f"postgresql://{enc_user}:{enc_pw}@{host}:{port}/{db}?application_name=lab+url"
               f"&sslmode=verify-full&sslrootcert={ca}",
        # asyncpg takes ssl=, not sslmode=, and no root certificate in the URL: require
        "sqlalchemy+asyncpg": f"postgresql+asyncpg://{enc_user}:{enc_pw}@{host}:{port}/{db}"
                              f"?prepared_statement_cache_size=0&ssl=require",
        "sqlalchemy+psycopg2": f"postgresql+psycopg2://{enc_user}:{enc_pw}@{host}:{port}/{db}"
                               f"?sslmode=verify-full&connect_timeout=10&sslrootcert={ca}",
        # pgjdbc: ssl=true is verify-full; the credentials live in the query
        "jdbc": f"jdbc:postgresql://{host}:{port}/{db}?ssl=true&user={enc_user}"
                f"&ApplicationName=lab-jdbc&sslrootcert={ca}&password={enc_pw}",
        "keyword": f"host={host} port={port} dbname={db} user={quote_value(user)} "
                   f"password = {quote_value(password)} sslmode=verify-full "
                   f"sslrootcert={ca} application_name='lab kv'",
    }


def set_role_password(lab: dict, role: str, password: str) -> None:
    conn = psycopg2.connect(host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]),
                            user=lab["PGAUTH_LAB_ADMIN_USER"], dbname="postgres",
                            password=lab["PGAUTH_LAB_ADMIN_PASSWORD"], sslmode="verify-full",
                            sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"])
    conn.autocommit = True
    try:
        cur = conn.cursor()
        # a client-made verifier: the server log never sees the password
        verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                sql.Literal(verifier)))
    finally:
        conn.close()


def seed(lab: dict, meta: dict, tmp_path: Path, values: dict[str, str],
         file_value: str | None = None) -> list[dict]:
    """A Secrets Manager secret (format dsn) per dialect and the dotenv file; their stores,
    the JDBC one first (the primary: it holds the pending value)."""
    sm = lab_client(lab, "secretsmanager")
    run = uuid.uuid4().hex[:8]
    order = ["jdbc", *[name for name in values if name != "jdbc"]]
    stores = []
    for name in order:
        secret_id = f"dsn/{run}/{name}"
        sm.create_secret(Name=secret_id, SecretString=values[name])
        stores.append({"name": f"sm-{name.replace('+', '-')}", "type": "aws_secretsmanager",
                       "secret_id": secret_id, "format": "dsn"})
    env_file = tmp_path / "app.env"
    env_file.write_text(f"APP=dsn-lab\nDATABASE_URL={file_value or values['sqlalchemy+asyncpg']}\n")
    env_file.chmod(0o600)
    stores.append({"name": FILE_STORE, "type": "file", "path": str(env_file),
                   "format": "dotenv", "key": "DATABASE_URL", "value_format": "dsn"})
    return stores


def stored_texts(lab: dict, stores: list[dict]) -> dict[str, str]:
    options = lab_store_options(lab)
    return {spec["name"]: Store(spec, options).read()[1].value for spec in stores}


def dialect_of(store_name: str) -> str:
    if store_name == FILE_STORE:
        return "sqlalchemy+asyncpg"
    return store_name.removeprefix("sm-").replace("sqlalchemy-", "sqlalchemy+")


def diagnose(lab: dict, meta: dict, tmp_path: Path, stores: list[dict]) -> dict:
    variables = vars_for({**meta, "stores": stores}, lab, tmp_path / "reports")
    done = run_playbook(lab, tmp_path, variables)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return read_report(tmp_path / "reports" / "localhost" / "diagnose.json")


def test_the_lab_strings_log_in_with_their_own_clients(lab):
    """The strings above are right for their clients (so the runbook tests below test the
    collection, not the test); and the Azure incident is real: SQLAlchemy hands sslmode= to
    asyncpg.connect(), which raises a TypeError before it sends anything."""
    with scenario("healthy") as meta:
        set_role_password(lab, "app_user", TRICKY)
        for dialect, text in dialect_dsns(meta["target"], "app_user", TRICKY).items():
            assert login_as_client(dialect, text) == "app_user", (dialect, last_error)
        azure = dialect_dsns(meta["target"], "app_user", TRICKY)["sqlalchemy+asyncpg"] \
            .replace("ssl=require", "sslmode=require")
        assert login_with_sqlalchemy(azure) is None
        assert last_error["error"] == "TypeError"


CASES = {
    # case: (password in every store, the first finding's id)
    "mismatch": ("Wrong-but-long-pw-1", "store_password_mismatch"),
    "placeholder": ("changeme", "store_placeholder_password"),
    "whitespace": (TRICKY + "\n", "store_password_whitespace"),
}


@pytest.mark.parametrize("case", [*CASES, "healthy"])
def test_diagnose_names_the_incident_in_every_dialect(case, lab, tmp_path):
    with scenario("healthy") as meta:
        set_role_password(lab, "app_user", TRICKY)
        password, first = CASES.get(case, (TRICKY, None))
        stores = seed(lab, meta, tmp_path, dialect_dsns(meta["target"], "app_user", password))
        report = diagnose(lab, meta, tmp_path, stores)
        secrets = lab_secrets(lab) | {TRICKY, password.strip()}
    names = {store["name"] for store in stores}
    findings = report["findings"]
    assert_no_leak({"diagnose.json": json.dumps(report)}, {s for s in secrets if len(s) >= 6})
    probes = {probe["store"]: probe for probe in report["facts"]["probes"]}
    facts = {store["store"]: store for store in report["facts"]["stores"]}
    assert {facts[name]["credential"]["dialect"] for name in names} == set(DIALECTS)
    if first is None:
        assert report["verdict"] == "healthy", [f["id"] for f in findings]
        assert all(probes[name]["ok"] for name in names), probes
        return
    assert findings[0]["id"] == first, [f["id"] for f in findings]
    if case == "mismatch":
        assert set(findings[0]["evidence"]["stores"]) == names
    else:
        assert {f["evidence"]["store"] for f in findings if f["id"] == first} == names


def test_broken_strings_are_store_dsn_invalid_naming_the_parameter(lab, tmp_path):
    """An unencoded '@' in a URL's password, and parameters each client refuses: sslmode= for
    SQLAlchemy+asyncpg (the Azure incident), ssl= for psycopg2, a bad sslmode for pgjdbc, an
    unknown keyword for libpq.  A finding each, none of them a crash."""
    with scenario("healthy") as meta:
        set_role_password(lab, "app_user", TRICKY)
        good = dialect_dsns(meta["target"], "app_user", TRICKY)
        target = meta["target"]
        broken = {
            "url": f"postgresql://app_user:pa@ss@{target['host']}:{target['port']}/appdb",
            "sqlalchemy+asyncpg": good["sqlalchemy+asyncpg"].replace("ssl=require",
                                                                     "sslmode=require"),
            "sqlalchemy+psycopg2": good["sqlalchemy+psycopg2"] + "&ssl=true",
            "jdbc": good["jdbc"].replace("ssl=true", "sslmode=very-secure"),
            "keyword": good["keyword"] + " nosuchoption=1",
        }
        stores = seed(lab, meta, tmp_path, broken, file_value=broken["sqlalchemy+asyncpg"])
        report = diagnose(lab, meta, tmp_path, stores)
    invalid = {f["evidence"]["store"]: f["evidence"] for f in report["findings"]
               if f["id"] == "store_dsn_invalid"}
    assert set(invalid) == {store["name"] for store in stores}, report["findings"]
    assert "not URL-encoded" in invalid["sm-url"]["error"]
    expected = {"sm-sqlalchemy-asyncpg": "sslmode", FILE_STORE: "sslmode",
                "sm-sqlalchemy-psycopg2": "ssl", "sm-jdbc": "sslmode", "sm-keyword": "nosuchoption"}
    for name, parameter in expected.items():
        assert [p["parameter"] for p in invalid[name]["parameters"]] == [parameter], name
        assert invalid[name]["dialect"] == dialect_of(name)
    assert "ssl=" in invalid["sm-sqlalchemy-asyncpg"]["parameters"][0]["reason"]
    assert report["verdict"] == "broken"


def _without_credentials(text: str, user: str, password: str) -> str:
    for secret in (quote_value(password), quote(password, safe=""), password):
        text = text.replace(secret, "<pw>")
    return text.replace(quote(user, safe=""), "<user>")


def test_rotate_both_strategies_then_verify_every_dialect(lab, tmp_path):
    with scenario("healthy") as meta:
        set_role_password(lab, "app_user", TRICKY)
        stores = seed(lab, meta, tmp_path, dialect_dsns(meta["target"], "app_user", TRICKY))
        before = stored_texts(lab, stores)
        variables = vars_for({**meta, "stores": stores}, lab, tmp_path / "reports")
        variables.pop("pgauth_logs")
        seen = {TRICKY}
        for strategy, user in (("single_user", "app_user"),
                               ("alternating_users", "app_user_clone")):
            done = run_playbook(lab, tmp_path, {**variables, "pgauth_strategy": strategy},
                                playbook="rotate")
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            after = stored_texts(lab, stores)
            options = lab_store_options(lab)
            creds = {spec["name"]: Store(spec, options).read()[0] for spec in stores}
            passwords = {cred.password for cred in creds.values()}
            assert len(passwords) == 1 and not passwords & seen, strategy
            new = passwords.pop()
            seen.add(new)
            for name, text in after.items():
                # the same dialect, every other byte as it was (the user flips inside it)
                assert creds[name].username == user, (strategy, name)
                assert creds[name].dialect == dialect_of(name)
                assert _without_credentials(text, user, new) == \
                    _without_credentials(before[name], "app_user", TRICKY), (strategy, name)
                # and the client of the dialect logs in with it, exactly as stored
                assert login_as_client(dialect_of(name), text) == user, \
                    (strategy, name, last_error)
            secrets = lab_secrets(lab) | seen
            assert_no_leak({f"{strategy} output": done.stdout + done.stderr,
                            "rotate.json": (tmp_path / "reports" / "localhost" /
                                            "rotate.json").read_text()}, secrets)
        done = run_playbook(lab, tmp_path, {**variables, "pgauth_logs": meta["logs"]},
                            playbook="verify")
        assert done.returncode == 0, done.stdout[-3000:]
        verified = read_report(tmp_path / "reports" / "localhost" / "verify.json")
        assert verified["verdict"] == "healthy"


MODULE_PLAY = """
- name: secret_value, secret_value_info and the lookup on every DSN dialect
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Checksums before
      ansible.builtin.stat: {path: "{{ item.path }}"}
      loop: "{{ dsn_stores }}"
      register: before
    - name: Write the new password, check mode
      credops.pgauth.secret_value: {store: "{{ item }}", value: {password: "{{ new_pw }}"}}
      check_mode: true
      loop: "{{ dsn_stores }}"
      register: checked
    - name: Checksums after check mode
      ansible.builtin.stat: {path: "{{ item.path }}"}
      loop: "{{ dsn_stores }}"
      register: after_check
    - name: Write it
      credops.pgauth.secret_value: {store: "{{ item }}", value: {password: "{{ new_pw }}"}}
      loop: "{{ dsn_stores }}"
      register: first
    - name: Write it again
      credops.pgauth.secret_value: {store: "{{ item }}", value: {password: "{{ new_pw }}"}}
      loop: "{{ dsn_stores }}"
      register: second
    - name: Read it
      credops.pgauth.secret_value_info: {store: "{{ item }}"}
      loop: "{{ dsn_stores }}"
      register: info
    - name: The lookup gives each store's credential in its own dialect and in another
      ansible.builtin.assert:
        that:
          - (own | credops.pgauth.pg_dsn_parse).password == new_pw
          - (own | credops.pgauth.pg_dsn_parse).dialect == dsn_dialects[index]
          - (as_kv | credops.pgauth.pg_dsn_parse).password == new_pw
          - as_kv.startswith('host=')
      loop: "{{ dsn_stores }}"
      loop_control: {index_var: index}
      no_log: true
      vars:
        own: "{{ lookup('credops.pgauth.secret_value', item, field='dsn') }}"
        as_kv: "{{ lookup('credops.pgauth.secret_value', item, field='dsn', dialect='keyword') }}"
    - name: Results (no secrets in them)
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ {'before': before.results | map(attribute='stat.checksum') | list,
                      'after_check': after_check.results | map(attribute='stat.checksum') | list,
                      'checked': checked.results | map(attribute='changed') | list,
                      'first': first.results | map(attribute='changed') | list,
                      'second': second.results | map(attribute='changed') | list,
                      'info': info.results | map(attribute='credential') | list} | to_json }}"
"""


def test_the_modules_and_the_lookup_on_every_dialect(lab, tmp_path):
    """secret_value in check mode changes nothing, for real changes only the password's
    bytes, a second time nothing; secret_value_info names the dialect; the lookup renders
    the credential in its own dialect or in the one asked for."""
    with scenario("healthy") as meta:
        dsns = dialect_dsns(meta["target"], "app_user", TRICKY)
        new_pw = "Nëw pw/@?#&=+%'\"\\-2"
        stores = []
        for dialect, text in dsns.items():
            path = tmp_path / f"{dialect.replace('+', '-')}.env"
            path.write_text(f"DATABASE_URL={text}\n")
            path.chmod(0o600)
            stores.append({"name": f"file-{dialect}", "type": "file", "path": str(path),
                           "format": "dotenv", "key": "DATABASE_URL", "value_format": "dsn"})
            assert stored_texts(lab, stores[-1:])[stores[-1]["name"]] == text
        play = tmp_path / "modules.yml"
        play.write_text(MODULE_PLAY)
        out = tmp_path / "modules.json"
        vars_file = tmp_path / "vars.yml"
        vars_file.write_text(json.dumps({"dsn_stores": stores, "dsn_dialects": list(dsns),
                                         "new_pw": new_pw, "out": str(out)}))
        env = {**os.environ, **lab, "ANSIBLE_COLLECTIONS_PATH": str(BUILD), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
        done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(play),
                               "-e", f"@{vars_file}", "-v"], capture_output=True, text=True,
                              env=env, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        results = json.loads(out.read_text())
        texts = dict(zip(dsns, stored_texts(lab, stores).values(), strict=True))
    assert results["before"] == results["after_check"], "check mode changed a file"
    assert results["checked"] == [True] * 5 and results["first"] == [True] * 5
    assert results["second"] == [False] * 5, "the second write was not idempotent"
    assert [cred["dialect"] for cred in results["info"]] == list(DIALECTS)
    for dialect, value in texts.items():
        assert _without_credentials(value, "app_user", new_pw) == \
            _without_credentials(dsns[dialect], "app_user", TRICKY), dialect
    assert_no_leak({"the -v output": done.stdout + done.stderr, "results": json.dumps(results)},
                   {TRICKY, new_pw})
