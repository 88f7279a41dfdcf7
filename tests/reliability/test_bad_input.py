"""The bad-input corpus: each case runs the rotate runbook (the one that writes) with one
thing wrong - an identifier, a password option, a store dict, a secret's JSON, a variable
of the wrong type, an unreachable server, wrong admin credentials - and must fail with a
message that names the culprit, leaving the database roles and every store as they were
(before/after snapshot)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg2
import pytest
from labfixtures import lab_client, scenario
from psycopg2 import sql
from runbooks import lab_secrets, run_playbook, snapshot, vars_for
from tally import MESSAGES

MSG = re.compile(r'"msg": "((?:[^"\\]|\\.)*)"|^(ERROR! .*)$|^(fatal: .*)$', re.MULTILINE)

INJECTION = 'app_user"; DROP ROLE app_user; --'


def with_target(**changes):
    return lambda v: {**v, "pgauth_target": {**v["pgauth_target"], **changes}}


def with_store(index: int, **changes):
    def change(v):
        stores = [dict(store) for store in v["pgauth_stores"]]
        stores[index].update(changes)
        stores[index] = {key: value for key, value in stores[index].items() if value is not None}
        return {**v, "pgauth_stores": stores}

    return change


def with_vars(**changes):
    return lambda v: {**v, **changes}


def with_admin(**changes):
    return lambda v: {**v, "pgauth_admin": {**v["pgauth_admin"], **changes}}


def put_secret(text: str):
    def setup(lab):
        lab_client(lab, "secretsmanager").put_secret_value(
            SecretId="lab/app_user", SecretString=text
        )

    return setup


def superuser(lab: dict):
    conn = psycopg2.connect(
        host=lab["PGAUTH_LAB_PGSOCKET"],
        port=lab["PGAUTH_LAB_PGPORT"],
        user="postgres",
        dbname="postgres",
    )
    conn.autocommit = True
    return conn


def set_password(lab: dict, role: str, password: str) -> None:
    conn = superuser(lab)
    with conn.cursor() as cur:
        verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
        cur.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
        )
    conn.close()


def weak_admin(lab):
    """A login role with no CREATEROLE and no membership: it may not change app_user."""
    conn = superuser(lab)
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS weak_admin")
        cur.execute(
            sql.SQL("CREATE ROLE weak_admin LOGIN PASSWORD {}").format(
                sql.Literal(
                    psycopg2.extensions.encrypt_password(
                        "weak-admin-pw-1", "weak_admin", conn, "scram-sha-256"
                    )
                )
            )
        )
    conn.close()


# in the broken files below: it must never reach the output
BAD_FILE_SECRET = "Bad-F1le-S3cret-Mark"
BROKEN_FILES = {
    # a manifest whose data is not base64
    "k8s_secret": ("secret.yaml", "password", ("kind: Secret\nmetadata:\n  name: app-db\n"
                                               f"data:\n  password: '{BAD_FILE_SECRET}!!'\n")),
    # a properties file with a broken \\u escape (zz is no hex digit)
    "properties": ("application.properties", "app.password",
                   f"# app\napp.user=app_user\napp.password=\\u12zz{BAD_FILE_SECRET}\n"),
    # a TOML file with a key defined twice
    "toml": ("app.toml", "db.password",
             f"[db]\npassword = '{BAD_FILE_SECRET}'\npassword = '{BAD_FILE_SECRET}2'\n"),
    # an ini file with an option defined twice
    "ini": ("pg_service.conf", "app.password",
            f"[app]\npassword={BAD_FILE_SECRET}\npassword={BAD_FILE_SECRET}2\n"),
    # a .pgpass that libpq would ignore (mode 0644)
    "pgpass": ("pgpass", "127.0.0.1:5432:appdb:app_user",
               f"*:*:*:app_user:{BAD_FILE_SECRET}\n"),
}


def broken_file(fmt: str):
    def setup(lab):
        name, _key, text = BROKEN_FILES[fmt]
        path = Path(lab["PGAUTH_LAB_DIR"]) / "app" / name
        path.write_text(text)
        path.chmod(0o644 if fmt == "pgpass" else 0o600)
    return setup


def with_broken_file(fmt: str):
    def change(v):
        name, key, _text = BROKEN_FILES[fmt]
        app_dir = Path(v["pgauth_stores"][2]["path"]).parent
        store = {"name": f"bad-{fmt}", "type": "file", "format": fmt,
                 "path": str(app_dir / name), "key": key}
        return {**v, "pgauth_stores": [*v["pgauth_stores"], store]}
    return change


# id -> (change to the runbook's variables, what the message must name, optional setup[,
# the runbook: rotate unless named - rotate replaces a value it cannot decode, by design, so
# a broken secret is given to verify, which must name it)]
CASES = {
    # identifiers
    "role-sql-injection": (
        with_target(role=INJECTION),
        [r"role .*DROP ROLE app_user.* does not exist|role .*not found"],
        None,
    ),
    "role-quote-injection": (
        with_target(role="x'; ALTER ROLE postgres PASSWORD 'x"),
        [r"ALTER ROLE postgres"],
        None,
    ),
    "role-too-long": (with_target(role="r" * 64), [r"64 bytes", r"truncate"], None),
    "role-empty": (with_target(role=""), [r"role"], None),
    "role-missing": (with_target(role="no_such_role"), [r"no_such_role"], None),
    "source-store-unknown": (with_vars(pgauth_source_store="nope"), [r"source_store 'nope'"], None),
    # passwords and rotation options
    "password-length-tiny": (with_vars(pgauth_password_length=4), [r"length", r"4"], None),
    "valid-until-garbage": (
        with_vars(pgauth_valid_until="next tuesday-ish"),
        [r"valid_until"],
        None,
    ),
    "min-age-garbage": (
        with_vars(pgauth_rotation_min_age="soon"),
        [r"min_age|rotation_min_age", r"soon"],
        None,
    ),
    "rotate-via-unknown": (
        with_vars(pgauth_rotate_via="carrier-pigeon"),
        [r"pgauth_rotate_via"],
        None,
    ),
    "rds-api-with-alternating": (
        with_vars(pgauth_rotate_via="rds_api", pgauth_strategy="alternating_users"),
        [r"rds_api", r"single_user"],
        None,
    ),
    # store dicts
    "store-type-unknown": (with_store(1, type="s3"), [r"vault-app", r"type"], None),
    "store-type-missing": (with_store(1, type=None), [r"vault-app", r"type"], None),
    "store-not-a-dict": (
        with_vars(pgauth_stores=["aws-app"]),
        [r"pgauth_stores|stores\[0\]", r"dict"],
        None,
    ),
    "store-names-duplicate": (with_store(1, name="aws-app"), [r"unique"], None),
    "store-file-primary": (
        lambda v: {**v, "pgauth_stores": v["pgauth_stores"][2:]},
        [r"app-config", r"pending"],
        None,
    ),
    "store-file-missing": (
        with_store(2, path="/nonexistent/config.yml"),
        [r"app-config", r"/nonexistent/config.yml"],
        None,
    ),
    "store-file-key-missing": (
        with_store(2, key="no_such_key"),
        [r"app-config", r"no_such_key"],
        None,
    ),
    "store-secret-missing": (
        with_store(0, secret_id="lab/no-such-secret"),
        [r"aws-app", r"lab/no-such-secret"],
        None,
    ),
    "store-vault-path-missing": (
        with_store(1, path="lab/no-such-path"),
        [r"vault-app", r"lab/no-such-path"],
        None,
    ),
    "store-value-format-unknown": (
        with_store(2, value_format="xml"),
        [r"app-config", r"value_format"],
        None,
    ),
    "store-vault-value-format": (
        with_store(1, value_format="password"),
        [r"vault-app", r"value_format is for file stores"],
        None,
    ),
    "store-vault-format-unknown": (
        with_store(1, format="xml"),
        [r"vault-app", r"format must be one of"],
        None,
    ),
    "store-bare-password-alternating": (
        lambda v: with_store(1, format="password")(
            with_vars(pgauth_strategy="alternating_users")(v)
        ),
        [r"vault-app", r"bare password"],
        None,
    ),
    # command stores (a CLI): refused before anything runs or changes
    "store-command-primary": (
        lambda v: {**v, "pgauth_stores": [{"name": "pass-app", "type": "command",
                                           "read": ["true"], "write": ["true"]},
                                          *v["pgauth_stores"]]},
        [r"pass-app", r"pending"],
        None,
    ),
    "store-command-no-read": (
        with_store(1, type="command", write=["true"]),
        [r"vault-app", r"read is required"],
        None,
    ),
    "store-command-read-only": (
        with_store(1, type="command", read=["true"], format="json"),
        [r"vault-app", r"cannot be written"],
        None,
    ),
    "store-command-key-on-vault": (
        with_store(1, read=["pass", "show", "app/db"]),
        [r"vault-app", r"read is for command stores"],
        None,
    ),
    "store-command-not-found": (
        with_store(1, type="command", read=["no-such-cli-here", "show"], write=["true"]),
        [r"vault-app", r"no-such-cli-here.*not found"],
        None,
    ),
    # broken config files, one per format: an error naming the store and the fault
    "file-k8s-data-not-base64": (with_broken_file("k8s_secret"),
                                 [r"bad-k8s_secret", r"data.password is not valid base64"],
                                 broken_file("k8s_secret")),
    "file-properties-broken-escape": (with_broken_file("properties"),
                                      [r"bad-properties", r"malformed \\\\uXXXX escape",
                                       r"line 3"], broken_file("properties")),
    "file-toml-duplicate-key": (with_broken_file("toml"),
                                [r"bad-toml", r"a key is defined twice"], broken_file("toml")),
    "file-ini-duplicate-option": (with_broken_file("ini"),
                                  [r"bad-ini", r"option password of \[app\] is defined twice"],
                                  broken_file("ini")),
    "file-pgpass-world-readable": (with_broken_file("pgpass"),
                                   [r"bad-pgpass", r"libpq ignores this password file"],
                                   broken_file("pgpass")),
    # the primary secret's JSON
    "secret-json-broken": (
        with_vars(),
        [r"store_readable:aws-app \(.*(JSON|json)"],
        put_secret('{"username": "app_user", "password": '),
        "verify",
    ),
    "secret-json-a-list": (
        with_vars(),
        [r"store_readable:aws-app \("],
        put_secret('["app_user", "pw"]'),
        "verify",
    ),
    # variables of the wrong type
    "stores-a-string": (with_vars(pgauth_stores="aws-app"), [r"pgauth_stores"], None),
    "target-a-list": (with_vars(pgauth_target=["db"]), [r"pgauth_target"], None),
    "strategy-unknown": (with_vars(pgauth_strategy="fast"), [r"pgauth_strategy", r"fast"], None),
    "connect-timeout-a-word": (
        with_vars(pgauth_connect_timeout="ten"),
        [r"pgauth_connect_timeout"],
        None,
    ),
    "force-not-a-bool": (with_vars(pgauth_force="maybe"), [r"pgauth_force"], None),
    "port-not-a-number": (with_target(port="fivefourthreetwo"), [r"port"], None),
    # unreachable servers
    "database-port-closed": (with_target(port=1), [r"127\.0\.0\.1", r"\b1\b"], None),
    "database-host-unresolvable": (with_target(host="db.invalid"), [r"db\.invalid"], None),
    "vault-unreachable": (
        with_vars(pgauth_vault={"url": "http://127.0.0.1:1", "vault_timeout": 3}),
        [r"vault-app", r"127\.0\.0\.1:1"],
        None,
    ),
    "aws-unreachable": (
        with_vars(
            pgauth_aws={
                "endpoint_url": "http://127.0.0.1:1",
                "aws_config": {"connect_timeout": 2, "retries": {"max_attempts": 1}},
            }
        ),
        [r"aws-app"],
        None,
    ),
    # wrong admin credentials
    "admin-password-wrong": (
        with_admin(password="not-the-admin-password"),
        [r"postgres", r"password authentication failed"],
        None,
    ),
    "admin-password-injection": (
        with_admin(password="x' OR '1'='1"),
        [r"password authentication failed"],
        None,
    ),
    "admin-user-missing": (
        with_admin(user="nobody_admin", password="whatever-123"),
        [r"nobody_admin"],
        None,
    ),
    "admin-without-privilege": (
        with_admin(user="weak_admin", password="weak-admin-pw-1"),
        [r"'weak_admin' has neither CREATEROLE nor ADMIN OPTION on 'app_user'"],
        weak_admin,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_clearly_and_changes_nothing(lab, tmp_path, case):
    change, names, setup, *runbook = CASES[case]
    playbook = runbook[0] if runbook else "rotate"
    with scenario("healthy") as meta:
        if setup:
            setup(lab)
        before = snapshot(lab)
        secrets = lab_secrets(lab) | {"weak-admin-pw-1", BAD_FILE_SECRET}
        variables = change(vars_for(meta, lab, tmp_path / "reports"))
        variables.pop("pgauth_logs", None)
        done = run_playbook(lab, tmp_path, variables, playbook=playbook)
        after = snapshot(lab)
    output = done.stdout + done.stderr
    failure = (
        "\n".join(
            line
            for line in output.splitlines()
            if "FAILED" in line or '"msg"' in line or "ERROR" in line or "fatal:" in line
        )
        or output[-2000:]
    )
    assert done.returncode != 0, f"{case}: the run did not fail:\n{output[-2000:]}"
    first = MSG.search(output)
    MESSAGES[case] = next(group for group in first.groups() if group) if first else ""
    for name in names:
        assert re.search(name, failure), f"{case}: {name!r} not named in:\n{failure[-3000:]}"
    assert "Traceback" not in output, f"{case}: a traceback instead of a message"
    assert before == after, f"{case}: something changed"
    leaked = [secret for secret in secrets if secret in output]
    assert not leaked, f"{case}: a secret is in the output"
    report = tmp_path / "reports" / "localhost" / f"{playbook}.json"
    if report.exists():
        assert json.loads(report.read_text())["verdict"] != "healthy"


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 30


def test_a_password_of_every_printable_character_rotates_in(lab, tmp_path):
    """Not bad input: the worst password there is must go through every store intact."""
    import string

    password = string.punctuation + string.ascii_letters + string.digits + " "
    with scenario("healthy") as meta:
        # what an operator did by hand: the database and Secrets Manager have it, the
        # other stores are to be brought in line (the dotenv URL must percent-encode it)
        put_secret(json.dumps({"username": "app_user", "password": password}))(lab)
        set_password(lab, "app_user", password)
        variables = vars_for(meta, lab, tmp_path / "reports")
        variables.pop("pgauth_logs")
        done = run_playbook(
            lab,
            tmp_path,
            {**variables, "pgauth_source_store": "aws-app"},
            "-vvv",
            playbook="rotate",
        )
        from runbooks import logs_in, read_stores

        stores = read_stores(meta, lab)
        works = logs_in(lab, "app_user", password)
    assert done.returncode == 0, done.stdout[-3000:]
    assert {cred.password for cred in stores.values()} == {password}, "a store mangled it"
    assert works
    assert password not in done.stdout + done.stderr
    assert Path(tmp_path / "reports" / "localhost" / "rotate.json").exists()
