"""The rotate runbook (playbook credops.pgauth.rotate) on the lab, with its four stores:
Secrets Manager (json), Vault KV v2 (json), a YAML config and a dotenv DATABASE_URL.

Each strategy must leave every store holding the same new credential, which logs in.  Runs
killed at every step boundary, servers failing mid-run and concurrent runs are in
tests/reliability.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import psycopg2
import pytest
from lab.loadclient import ClientLoad
from labfixtures import lab_store_options, scenario
from runbooks import (
    assert_no_leak,
    lab_secrets,
    logs_in,
    read_report,
    read_stores,
    run_playbook,
    snapshot,
    vars_for,
)

PENDING_STORES = ("aws-app", "vault-app")


def rotate_vars(meta: dict, lab: dict, tmp_path: Path, **extra) -> dict:
    variables = vars_for(meta, lab, tmp_path / "reports")
    variables.pop("pgauth_logs")
    return {**variables, **extra}


def rotate(lab: dict, tmp_path: Path, meta: dict, *args: str, env: dict | None = None,
           **extra):
    return run_playbook(lab, tmp_path, rotate_vars(meta, lab, tmp_path, **extra), *args,
                        playbook="rotate", env=env)


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "reports" / "localhost" / "rotate.json").read_text())


def load_for(meta: dict, lab: dict, workers: int = 8) -> ClientLoad:
    target = meta["target"]
    return ClientLoad(meta["stores"], lab_store_options(lab), {
        "host": target["host"], "port": target["port"], "dbname": target["dbname"],
        "sslmode": "verify-full", "sslrootcert": target["sslrootcert"]}, workers=workers)


def converged(meta: dict, lab: dict):
    """Every store holds one credential that logs in, and no pending value is left."""
    stores = read_stores(meta, lab)
    creds = list(stores.values())
    assert all(cred is not None for cred in creds), stores
    assert len({cred.password for cred in creds}) == 1, "the stores disagree"
    assert len({cred.username for cred in creds if cred.username}) == 1, "users differ"
    pending = read_stores({"stores": [s for s in meta["stores"] if s["name"] in PENDING_STORES]},
                          lab, "pending")
    assert all(cred is None for cred in pending.values()), "a pending value is left"
    first = creds[0]
    assert logs_in(lab, first.username, first.password), "the stores' credential does not log in"
    return first


def test_single_user_rotates_every_store(lab, tmp_path):
    hook = tmp_path / "after_promote.yml"
    hook.write_text("- name: Record what the hook saw\n  ansible.builtin.copy:\n"
                    "    dest: \"{{ hook_marker }}\"\n    content: \"{{ rotate_result.outcome }} "
                    "{{ rotate_result.promoted }}\"\n    mode: '0600'\n")
    server_log = Path(lab["PGAUTH_LAB_PGLOG"])
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        offset = server_log.stat().st_size
        with load_for(meta, lab) as load:
            done = rotate(lab, tmp_path, meta, "-vvv", pgauth_after_promote_tasks=str(hook),
                          hook_marker=str(tmp_path / "hook.txt"))
        assert done.returncode == 0, done.stdout[-3000:]
        new = converged(meta, lab)
        secrets = lab_secrets(lab) | {old.password}
        with server_log.open(errors="replace") as handle:
            handle.seek(offset)
            logged = handle.read()
    # statement logging is off while the verifier is sent (the SET itself is still logged)
    assert 'SET "log_statement"' in logged and "SCRAM-SHA-256$" not in logged
    assert new.password != old.password and new.username == "app_user"
    assert not logs_in(lab, old.username, old.password), "the old password still works"
    assert (tmp_path / "hook.txt").read_text() == "rotated True"
    result = report(tmp_path)
    assert result["outcome"] == "rotated" and result["verdict"] == "healthy"
    assert [step["step"] for step in result["steps"]] == [
        "stage:aws-app", "stage_others", "set_database", "test_login", "promote:aws-app",
        "promote:vault-app", "promote:app-config", "promote:app-env"]
    assert result["versions_before"]["aws-app"] != result["versions_after"]["aws-app"]
    markdown = (tmp_path / "reports" / "localhost" / "rotate.md").read_text()
    assert_no_leak({"the -vvv output": done.stdout + done.stderr, "rotate.md": markdown,
                    "rotate.json": json.dumps(result), "the server log": logged}, secrets)
    print("single_user under load:", load.report())


def test_alternating_users_never_fails_a_client(lab, tmp_path):
    with scenario("healthy") as meta:
        first = read_stores(meta, lab)["aws-app"]
        with load_for(meta, lab) as load:
            once = rotate(lab, tmp_path, meta, pgauth_strategy="alternating_users")
            after_once = converged(meta, lab) if once.returncode == 0 else None
            twice = rotate(lab, tmp_path, meta, pgauth_strategy="alternating_users")
        assert once.returncode == 0 and twice.returncode == 0, \
            once.stdout[-2000:] + twice.stdout[-2000:]
        after_twice = converged(meta, lab)
        assert after_once.username == "app_user_clone" and after_twice.username == "app_user"
        # the user the clients held keeps its password through the next rotation
        assert logs_in(lab, first.username, first.password) is False  # rotated the 2nd time
        assert logs_in(lab, after_once.username, after_once.password)
    stats = load.report()
    assert stats["failed_logins"] == 0, stats
    assert stats["logins_ok"] > 50, stats


def test_clone_acts_as_the_role(lab, tmp_path):
    """Objects the clone creates belong to the base role (no ownership split)."""
    with scenario("healthy") as meta:
        assert rotate(lab, tmp_path, meta, pgauth_strategy="alternating_users").returncode == 0
        cred = converged(meta, lab)
        conn = psycopg2.connect(
            host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]), dbname="appdb",
            user=cred.username, password=cred.password, sslmode="verify-full",
            sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE made_by_clone (id int)")
            cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_clone'")
            owner = cur.fetchone()[0]
            cur.execute("SELECT session_user, current_user")
            session_user, current_user = cur.fetchone()
        conn.close()
    assert (owner, session_user, current_user) == ("app_user", "app_user_clone", "app_user")


def test_iam_conversion(lab, tmp_path):
    if lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    from ansible_collections.credops.pgauth.plugins.module_utils.pg import probe
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        done = rotate(lab, tmp_path, meta, "-vvv", pgauth_strategy="iam")
        assert done.returncode == 0, done.stdout[-3000:]
        assert_no_leak({"the -vvv output": done.stdout + done.stderr}, lab_secrets(lab))
        stores = read_stores(meta, lab)
        again = rotate(lab, tmp_path, meta, pgauth_strategy="iam")
        params = {**lab_store_options(lab), "login_host": lab["PGAUTH_LAB_PGHOST"],
                  "login_port": int(lab["PGAUTH_LAB_PGPORT"]), "login_db": "appdb",
                  "ssl_mode": "verify-full", "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"],
                  "connect_timeout": 5, "login_iam": True}
        token_login = probe(params, "app_user", None)
        password_login = logs_in(lab, "app_user", old.password)
    assert all(not cred.password for cred in stores.values()), "a store kept a password"
    assert {cred.auth for cred in stores.values()} <= {"iam", None}
    assert token_login.ok, token_login.message
    assert not password_login
    assert report(tmp_path)["outcome"] == "converted"
    assert "changed=0" in again.stdout.split("PLAY RECAP")[1]


def test_check_mode_plans_and_changes_nothing(lab, tmp_path):
    with scenario("password_mismatch") as meta:
        before = snapshot(lab)
        done = rotate(lab, tmp_path, meta, "--check")
        assert done.returncode == 0, done.stdout[-3000:]
        assert snapshot(lab) == before
    steps = report(tmp_path)["steps"]
    assert {step["status"] for step in steps} == {"planned"}
    assert [step["step"] for step in steps][:3] == ["stage:aws-app", "stage_others",
                                                    "set_database"]


def test_min_age_makes_scheduled_runs_idempotent(lab, tmp_path):
    with scenario("healthy") as meta:
        before = snapshot(lab)
        done = rotate(lab, tmp_path, meta, pgauth_rotation_min_age="1d")
        assert done.returncode == 0 and "changed=0" in done.stdout.split("PLAY RECAP")[1]
        assert snapshot(lab) == before and report(tmp_path)["outcome"] == "not_due"
        forced = rotate(lab, tmp_path, meta, pgauth_rotation_min_age="1d", pgauth_force=True)
        assert forced.returncode == 0 and report(tmp_path)["outcome"] == "rotated"
        converged(meta, lab)


def test_a_held_lock_fails_fast_and_changes_nothing(lab, tmp_path):
    with scenario("password_mismatch") as meta:
        holder = psycopg2.connect(host=lab["PGAUTH_LAB_PGSOCKET"],
                                  port=lab["PGAUTH_LAB_PGPORT"], user="postgres",
                                  dbname="postgres")
        holder.autocommit = True
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))",
                        ("credops.pgauth.rotate:app_user",))
        before = snapshot(lab)
        try:
            done = rotate(lab, tmp_path, meta)
        finally:
            holder.close()
        assert snapshot(lab) == before
    assert done.returncode != 0
    assert "another rotation of role 'app_user' is in progress" in done.stdout
    assert report(tmp_path)["verdict"] == "broken"


def unchanged_but_pending(before: dict, after: dict) -> bool:
    """The database roles and every store's current value are as they were."""
    return after["roles"] == before["roles"] and after["files"] == before["files"] \
        and after["vault"] == before["vault"] and all(
            "AWSCURRENT" in (after["aws"][name].get(version) or [])
            for name, stages in before["aws"].items()
            for version, labels in stages.items() if "AWSCURRENT" in labels)


def test_a_store_that_stops_answering_fails_the_run_and_changes_nothing(lab, tmp_path):
    from lab.services import OpenBao
    from lab.settings import Lab
    pid = OpenBao(Lab.from_env()).pid()
    with scenario("healthy") as meta:
        before = snapshot(lab)
        old = read_stores(meta, lab)["aws-app"]
        os.kill(pid, signal.SIGSTOP)
        try:
            failed = rotate(lab, tmp_path, meta, pgauth_vault={"vault_timeout": 2})
        finally:
            os.kill(pid, signal.SIGCONT)
        assert failed.returncode != 0
        assert "store 'vault-app'" in failed.stdout and "cannot reach Vault" in failed.stdout
        assert unchanged_but_pending(before, snapshot(lab))
        assert logs_in(lab, old.username, old.password)
        again = rotate(lab, tmp_path, meta)
        assert again.returncode == 0, again.stdout[-3000:]
        assert converged(meta, lab).password != old.password


def test_a_store_refusing_the_pending_write_is_rolled_back(lab, tmp_path):
    """Vault can be read but not written (a read-only token): the primary's pending value
    is discarded again and nothing else changed."""
    import hvac
    vault = hvac.Client(url=lab["VAULT_ADDR"], token=lab["VAULT_TOKEN"])
    vault.sys.create_or_update_policy("pgauth-read-only", """
        path "secret/data/*" { capabilities = ["read"] }
        path "secret/metadata/*" { capabilities = ["read", "list"] }""")
    created = vault.auth.token.create(policies=["pgauth-read-only"], ttl="10m")
    token = created["auth"]["client_token"]
    with scenario("healthy") as meta:
        before = snapshot(lab)
        old = read_stores(meta, lab)["aws-app"]
        failed = rotate(lab, tmp_path, meta, pgauth_vault={"token": token})
        after = snapshot(lab)
        pending = read_stores({"stores": meta["stores"][:1]}, lab, "pending")["aws-app"]
    assert failed.returncode != 0
    assert "vault-app" in failed.stdout and "rolled back" in failed.stdout, failed.stdout[-2000:]
    assert unchanged_but_pending(before, after) and pending is None
    assert logs_in(lab, old.username, old.password)
    assert [s["status"] for s in report(tmp_path)["steps"]][:2] == ["done", "failed"]


def test_a_failed_test_login_restores_the_old_password(lab, tmp_path):
    """The new password is set, but the test login cannot work (pg_hba.conf has no rule for
    the app's database): the database gets the old verifier back, the stores stay."""
    with scenario("no_hba_entry") as meta:
        before = snapshot(lab)
        failed = rotate(lab, tmp_path, meta)
        after = snapshot(lab)
    assert failed.returncode != 0
    assert "test login" in failed.stdout and "previous stored verifier" in failed.stdout
    assert unchanged_but_pending(before, after)


def make_ops_master(lab: dict, tmp_path: Path, password: str) -> list[dict]:
    """A CREATEROLE admin, ops_master, with the master-user instance lab-ops-db in moto, its
    credential in Secrets Manager (primary) and in a YAML config."""
    import yaml
    from labfixtures import create_admin_role, lab_client
    create_admin_role(lab, "ops_master", password)
    rds = lab_client(lab, "rds")
    with contextlib.suppress(rds.exceptions.DBInstanceAlreadyExistsFault):
        rds.create_db_instance(
            DBInstanceIdentifier="lab-ops-db", Engine="postgres", DBInstanceClass="db.t3.micro",
            AllocatedStorage=20, MasterUsername="ops_master", MasterUserPassword=password,
            Port=int(lab["PGAUTH_LAB_PGPORT"]))
    secret = {"username": "ops_master", "password": password, "host": lab["PGAUTH_LAB_PGHOST"],
              "port": int(lab["PGAUTH_LAB_PGPORT"]), "dbname": "postgres"}
    lab_client(lab, "secretsmanager").create_secret(Name="lab/ops_master",
                                                    SecretString=json.dumps(secret))
    config = tmp_path / "ops.yml"
    config.write_text(yaml.safe_dump({"db": {"user": "ops_master", "password": password}}))
    return [{"name": "aws-ops", "type": "aws_secretsmanager", "secret_id": "lab/ops_master",
             "format": "json"},
            {"name": "ops-config", "type": "file", "path": str(config), "format": "yaml",
             "key": "db", "value_format": "json"}]


@pytest.mark.parametrize("via", ["sql", "rds_api"])
def test_the_admin_rotates_its_own_password_everywhere(lab, tmp_path, via):
    """The classic: the master password changed in one place only.  Here the admin reads its
    own password from the primary store, and the rotation reaches every store."""
    import secrets as random
    first = "ops-" + random.token_urlsafe(18)
    with scenario("healthy") as meta:
        stores = make_ops_master(lab, tmp_path, first)
        target = {**meta["target"], "role": "ops_master", "dbname": "postgres",
                  "rds_instance_id": "lab-ops-db"}
        done = run_playbook(lab, tmp_path, {
            **rotate_vars(meta, lab, tmp_path), "pgauth_target": target,
            "pgauth_stores": stores, "pgauth_admin": {"store": stores[0]},
            "pgauth_rotate_via": via}, playbook="rotate")
        assert done.returncode == 0, done.stdout[-3000:]
        creds = read_stores({"stores": stores}, lab)
        worked = logs_in(lab, "ops_master", creds["aws-ops"].password, dbname="postgres")
        old_works = logs_in(lab, "ops_master", first, dbname="postgres")
    assert creds["ops-config"].password == creds["aws-ops"].password != first
    assert worked and not old_works
    assert [step["status"] for step in report(tmp_path)["steps"]
            if step["step"] == "set_database"] == ["done"]


# scenario -> pgauth_target.auth for the diagnosis after the fix
FIXED_BY_ROTATE = {
    "password_mismatch": "password", "role_password_expired": "password",
    "role_password_missing": "password", "role_password_hash_incompatible": "password",
    "store_placeholder_password": "password", "stores_disagree": "password",
    "store_dsn_invalid": "password", "iam_role_blocks_password": "iam",
    "iam_role_not_granted": "iam", "iam_disabled_on_instance": "iam",
    "role_password_expiring": "password", "store_target_mismatch": "password",
    "rotation_incomplete": "password", "store_password_whitespace": "password",
    "pooler_auth_stale": "password",
}


@pytest.mark.parametrize("name", sorted(FIXED_BY_ROTATE))
def test_the_fix_diagnose_names_is_accepted_and_works(lab, tmp_path, name):
    """diagnose -> the first finding's fix (rotate with its extra_vars) -> diagnose: healthy."""
    import datetime as dt
    if FIXED_BY_ROTATE[name] == "iam" and lab["PGAUTH_LAB_IAM_ENABLED"] != "1":
        pytest.skip("IAM emulation off (not root)")
    with scenario(name) as meta:
        first = run_playbook(lab, tmp_path, vars_for(meta, lab, tmp_path / "before"))
        assert first.returncode == 0, first.stdout[-2000:]
        finding = read_report(tmp_path / "before" / "localhost" / "diagnose.json")[
            "findings"][0]
        assert finding["fix"]["runbook"] == "rotate", finding
        fixed = rotate(lab, tmp_path, meta, **finding["fix"]["extra_vars"])
        assert fixed.returncode == 0, fixed.stdout[-3000:]
        since = dt.datetime.now(dt.timezone.utc).isoformat()
        after_vars = vars_for(meta, lab, tmp_path / "after")
        after_vars["pgauth_target"] = {**meta["target"], "auth": FIXED_BY_ROTATE[name]}
        after_vars["pgauth_logs"] = {**meta["logs"], "since": since}
        second = run_playbook(lab, tmp_path, after_vars)
        assert second.returncode == 0, second.stdout[-2000:]
    after = read_report(tmp_path / "after" / "localhost" / "diagnose.json")
    assert after["verdict"] == "healthy", [f["id"] for f in after["findings"]]
    # an interrupted rotation is finished with the password it had set, not a second one
    # a stale pooler is refreshed: the stores are right, no new password
    outcomes = ("resumed",) if name == "rotation_incomplete" else (
        ("consumers_refreshed",) if name == "pooler_auth_stale" else (
            "rotated", "converged", "converted"))
    assert report(tmp_path)["outcome"] in outcomes


def test_two_stores_in_one_file_both_get_the_new_password(lab, tmp_path):
    """DATABASE_URL and PGPASSWORD in one .env are two stores: switched at once, each write
    would replace the file with its own copy and lose the other's change."""
    from urllib.parse import quote

    from ansible_collections.credops.pgauth.plugins.module_utils.store_file import (
        dotenv_get,
        dotenv_quote,
    )
    with scenario("healthy") as meta:
        old = read_stores(meta, lab)["aws-app"]
        target = meta["target"]
        shared = tmp_path / "shared.env"
        url = (f"postgresql://app_user:{quote(old.password, safe='')}@{target['host']}:"
               f"{target['port']}/appdb")
        shared.write_text(f"DATABASE_URL={dotenv_quote(url)}\n"
                          f"PGPASSWORD={dotenv_quote(old.password)}\n")
        stores = [meta["stores"][0],
                  {"name": "shared-url", "type": "file", "path": str(shared), "format": "dotenv",
                   "key": "DATABASE_URL", "value_format": "dsn"},
                  {"name": "shared-pw", "type": "file", "path": str(shared), "format": "dotenv",
                   "key": "PGPASSWORD", "value_format": "password"}]
        for _attempt in range(3):  # the lost write was a race: give it chances
            done = rotate(lab, tmp_path, {**meta, "stores": stores})
            assert done.returncode == 0, done.stdout[-3000:]
            text = shared.read_text()
            new = read_stores(meta, lab)["aws-app"]
            assert dotenv_get(text, "PGPASSWORD") == new.password
            assert quote(new.password, safe="") in dotenv_get(text, "DATABASE_URL")
        assert logs_in(lab, "app_user", new.password) and new.password != old.password


def test_rotate_refuses_a_credential_another_rotator_manages(lab, tmp_path):
    """rotation_conflict: OpenBao's database engine owns app_user; rotate changes nothing
    and names it, unless forced."""
    with scenario("rotation_conflict") as meta:
        before = snapshot(lab)
        refused = rotate(lab, tmp_path, meta)
        assert refused.returncode != 0
        assert "another rotator already manages this credential" in refused.stdout
        assert "vault_database_static_role" in refused.stdout
        assert snapshot(lab) == before, "a refused rotation changed something"
        forced = rotate(lab, tmp_path, meta, pgauth_force=True)
        assert forced.returncode == 0, forced.stdout[-3000:]


def test_remediate_applies_the_fix_of_a_warning_a_runbook_fixes(lab, tmp_path, admin):
    """role_password_expiring is a warning (degraded), and rotate fixes it: remediate applies
    it, and VALID UNTIL is gone."""
    with scenario("role_password_expiring") as meta:
        variables = vars_for(meta, lab, tmp_path / "reports")
        variables.update(pgauth_apply=True)
        done = run_playbook(lab, tmp_path, variables, playbook="remediate")
        assert done.returncode == 0, done.stdout[-3000:]
        assert "role_password_expiring: ansible-playbook credops.pgauth.rotate" in done.stdout
        admin.execute("SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = 'app_user'")
        assert admin.fetchone()[0] in (None, "infinity")
        assert read_report(tmp_path / "reports" / "localhost" / "verify.json")["verdict"] \
            == "healthy"


def test_a_flow_style_yaml_mapping_keeps_its_comments(lab, tmp_path):
    """A flow-style mapping cannot be edited on its line: ruamel.yaml's round trip writes it,
    and the comments, the flow style and the quoting stay (the old editor re-dumped the file
    without its comments; without ruamel.yaml it still does, and warns: unit-tested)."""
    import yaml
    with scenario("healthy") as meta:
        config = Path(lab["PGAUTH_LAB_DIR"]) / "app" / "config.yml"
        database = yaml.safe_load(config.read_text())["database"]
        config.write_text("# the app's config: a comment the rewrite keeps\n"
                          f"database: {json.dumps(database)}  # flow\n")
        done = rotate(lab, tmp_path, meta)
        assert done.returncode == 0, done.stdout[-3000:]
        new = converged(meta, lab)
        text = config.read_text()
    output = done.stdout + done.stderr
    assert "could not be edited in place" not in output, output[-3000:]
    assert text.startswith("# the app's config: a comment the rewrite keeps\ndatabase: {")
    # ruamel keeps a comment at its column: the longer password pushes no text over it
    assert text.rstrip(" #flow\n").endswith("}") and text.endswith(" # flow\n")
    assert new.password != database["password"]


def test_the_drain_guard_refuses_while_a_client_holds_the_inactive_user(lab, tmp_path):
    """After one alternating rotation the stores hold the clone; a client that never re-read
    them stays connected as app_user.  The next rotation would give app_user a new password
    and break that client at its next connection: it refuses, naming the client, with
    nothing changed; once the client is gone it proceeds."""
    for name in ("once", "refused", "done"):
        (tmp_path / name).mkdir()
    with scenario("healthy") as meta:
        first = read_stores(meta, lab)["aws-app"]
        once = rotate(lab, tmp_path / "once", meta, pgauth_strategy="alternating_users")
        assert once.returncode == 0, once.stdout[-2000:]
        stale = psycopg2.connect(
            host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]), dbname="appdb",
            user=first.username, password=first.password, sslmode="verify-full",
            sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"], application_name="legacy-worker")
        try:
            before = read_stores(meta, lab)
            refused = rotate(lab, tmp_path / "refused", meta,
                             pgauth_strategy="alternating_users", pgauth_drain_timeout=2)
            after = read_stores(meta, lab)
        finally:
            stale.close()
        assert refused.returncode != 0
        assert "legacy-worker" in refused.stdout and "app_user" in refused.stdout
        assert "nothing was changed" in refused.stdout
        assert {k: v.password for k, v in before.items()} == \
            {k: v.password for k, v in after.items()}
        assert logs_in(lab, first.username, first.password)  # its password was not touched
        done = rotate(lab, tmp_path / "done", meta, pgauth_strategy="alternating_users",
                      pgauth_drain_timeout=10)
        assert done.returncode == 0, done.stdout[-2000:]
        assert read_stores(meta, lab)["aws-app"].username == "app_user"


def test_the_drain_guard_holds_for_a_resumed_run(lab, tmp_path):
    """A run killed after staging app_user's new password (before set_database) is resumed
    while a client that never re-read the stores is connected as app_user: the resumed run
    sets that password too, so it refuses, naming the client, with nothing changed; once the
    client is gone the resumed run finishes."""
    for name in ("once", "killed", "refused", "done"):
        (tmp_path / name).mkdir()
    with scenario("healthy") as meta:
        first = read_stores(meta, lab)["aws-app"]
        once = rotate(lab, tmp_path / "once", meta, pgauth_strategy="alternating_users")
        assert once.returncode == 0, once.stdout[-2000:]
        killed = rotate(lab, tmp_path / "killed", meta, pgauth_strategy="alternating_users",
                        env={"PGAUTH_FAILPOINT": "stage:aws-app"})
        assert killed.returncode != 0
        pending_of = {"stores": [s for s in meta["stores"] if s["name"] == "aws-app"]}
        staged = read_stores(pending_of, lab, "pending")["aws-app"]
        assert staged is not None and staged.username == "app_user"
        stale = psycopg2.connect(
            host=lab["PGAUTH_LAB_PGHOST"], port=int(lab["PGAUTH_LAB_PGPORT"]), dbname="appdb",
            user=first.username, password=first.password, sslmode="verify-full",
            sslrootcert=lab["PGAUTH_LAB_SSLROOTCERT"], application_name="legacy-worker")
        try:
            before = read_stores(meta, lab)
            refused = rotate(lab, tmp_path / "refused", meta,
                             pgauth_strategy="alternating_users", pgauth_drain_timeout=1)
            after = read_stores(meta, lab)
            still_staged = read_stores(pending_of, lab, "pending")["aws-app"]
        finally:
            stale.close()
        assert refused.returncode != 0
        assert "legacy-worker" in refused.stdout and "nothing was changed" in refused.stdout
        refused_steps = [step["step"] for step in report(tmp_path / "refused")["steps"]]
        assert "set_database" not in refused_steps and "drain:app_user" in refused_steps
        assert {k: (v.username, v.password) for k, v in before.items()} == \
            {k: (v.username, v.password) for k, v in after.items()}
        assert still_staged.password == staged.password  # the pending value is kept
        assert logs_in(lab, first.username, first.password)  # the database was not touched
        done = rotate(lab, tmp_path / "done", meta, pgauth_strategy="alternating_users",
                      pgauth_drain_timeout=10)
        assert done.returncode == 0, done.stdout[-2000:]
        assert report(tmp_path / "done")["outcome"] == "resumed"
        new = converged(meta, lab)
        assert (new.username, new.password) == ("app_user", staged.password)
        assert not logs_in(lab, first.username, first.password)
