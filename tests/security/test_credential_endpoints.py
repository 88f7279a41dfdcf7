"""Items 1 and 3 of the security review: a credential goes only to the endpoint it belongs
to, and no password or token is answered to a cleartext request over a connection that is
not verify-full.  The attacker is a fake server on loopback (CleartextPasswordThief) that
an application's config points at, or that sits in the path of a weak sslmode."""
from __future__ import annotations

import pytest
from secsupport import CleartextPasswordThief, run_tasks, self_signed_cert

ADMIN_PASSWORD_MARK = "admin-secret-"


@pytest.fixture
def admin_defaults(lab):
    """module_defaults that log in as the lab admin, as an AWX job template injects them."""
    return {"group/credops.pgauth.postgres": {
        "login_host": lab["PGAUTH_LAB_PGHOST"], "login_port": int(lab["PGAUTH_LAB_PGPORT"]),
        "login_user": lab["PGAUTH_LAB_ADMIN_USER"],
        "login_password": lab["PGAUTH_LAB_ADMIN_PASSWORD"],
        "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"], "connect_timeout": 5,
        "url": lab["VAULT_ADDR"], "token": lab["VAULT_TOKEN"]}}


def env_file(tmp_path, url: str):
    path = tmp_path / "app.env"
    path.write_text(f"DATABASE_URL={url}\n")
    path.chmod(0o600)
    return {"name": "app-env", "type": "file", "path": str(path), "format": "dotenv",
            "key": "DATABASE_URL"}


def secrets_in(thief: CleartextPasswordThief, *secrets: str) -> list[str]:
    return [secret for secret in secrets if any(secret in got for got in thief.received)]


def test_a_store_without_password_never_gets_the_admin_password(lab, tmp_path, admin_defaults):
    """Reproduces the review: DATABASE_URL with no password pointing at a listener; probe
    with password_from under module_defaults that hold the admin login, PGPASSWORD and a
    PGPASSFILE with a catch-all line in the module's environment."""
    admin_password = lab["PGAUTH_LAB_ADMIN_PASSWORD"]
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{admin_password}\n")
    passfile.chmod(0o600)
    with CleartextPasswordThief() as thief:
        store = env_file(tmp_path, f"postgresql://app_user@127.0.0.1:{thief.port}/appdb"
                                   "?sslmode=disable")
        done = run_tasks(lab, tmp_path, [
            {"name": "probe the app's store", "credops.pgauth.pg_login_probe":
                {"password_from": {"store": store}}, "register": "probe"},
            {"name": "diagnose's facts", "credops.pgauth.pg_auth_facts": {
                "role": "app_user", "stores": [store], "dbname": "appdb"}}],
            module_defaults=admin_defaults,
            env={"PGPASSWORD": admin_password, "PGPASSFILE": str(passfile)})
    assert done.returncode == 0, done.stdout[-3000:]
    assert thief.startups >= 2, "the probes never reached the listener: the test proves nothing"
    assert secrets_in(thief, admin_password) == [], "the admin password went to the store's host"
    assert thief.received == [], f"a password was sent: {len(thief.received)} time(s)"
    assert admin_password not in done.stdout


@pytest.mark.parametrize("sslmode", ["prefer", "require", "verify-ca", "allow"])
def test_a_password_is_not_answered_in_cleartext_below_verify_full(lab, tmp_path, sslmode):
    """A downgrade: the attacker says "no TLS" (or presents its own certificate under
    require) and asks for the password in cleartext; libpq would send it."""
    password = "store-pw-" + sslmode + "-Zq7"
    tls = self_signed_cert(tmp_path) if sslmode in ("require", "verify-ca") else None
    with CleartextPasswordThief(tls) as thief:
        store = env_file(tmp_path, f"postgresql://app_user:{password}@127.0.0.1:{thief.port}"
                                   f"/appdb?sslmode={sslmode}")
        # with a CA at hand the probe first tries verify-full (which the attacker fails),
        # then the application's way: both attempts must keep the password
        done = run_tasks(lab, tmp_path, [{
            "name": "probe", "credops.pgauth.pg_login_probe": {
                "password_from": {"store": store}, "connect_timeout": 5,
                "ssl_rootcert": lab["PGAUTH_LAB_SSLROOTCERT"]},
            "register": "probe"}, {"ansible.builtin.debug": {"var": "probe"}}])
    assert done.returncode == 0, done.stdout[-3000:]
    if sslmode == "verify-ca":
        # the attacker's certificate fails verification before any password is asked for
        assert thief.startups == 0
    else:
        assert thief.startups == 1
    assert thief.received == [], "the store's password was sent in cleartext"
    if sslmode != "verify-ca":
        assert "over a connection that is not sslmode=verify-full" in done.stdout


def test_the_admin_password_is_not_answered_in_cleartext(lab, tmp_path):
    """The admin's own login (pg_role_info) through a downgraded connection."""
    with CleartextPasswordThief() as thief:
        done = run_tasks(lab, tmp_path, [{
            "name": "role info", "credops.pgauth.pg_role_info": {
                "name": "app_user", "login_host": "127.0.0.1", "login_port": thief.port,
                "login_user": "postgres", "login_password": ADMIN_PASSWORD_MARK + "1",
                "ssl_mode": "prefer", "connect_timeout": 5}, "ignore_errors": True}])
    assert thief.startups == 1
    assert thief.received == [], "the admin password was sent in cleartext"
    assert "cleartext" in done.stdout


@pytest.mark.parametrize("opt_out", [False, True])
def test_an_iam_token_goes_only_over_verify_full(lab, tmp_path, opt_out):
    """sslmode=require accepts the attacker's certificate; the token is a bearer credential
    for 15 minutes.  With the explicit opt-out it is sent, and the output says so: that half
    also proves the listener would have caught it."""
    tls = self_signed_cert(tmp_path)
    with CleartextPasswordThief(tls) as thief:
        done = run_tasks(lab, tmp_path, [{
            "name": "token probe", "credops.pgauth.pg_login_probe": {
                "user": "app_user", "login_host": "127.0.0.1", "login_port": thief.port,
                "login_iam": True, "ssl_mode": "require", "connect_timeout": 5,
                "region": lab["AWS_REGION"], "iam_allow_unverified_tls": opt_out},
            "register": "probe"}, {"ansible.builtin.debug": {"var": "probe"}}], verbosity="")
    assert done.returncode == 0, done.stdout[-3000:]
    tokens = [got for got in thief.received if "X-Amz-Signature" in got]
    if opt_out:
        assert len(tokens) == 1
        assert "does not verify the server" in done.stdout
    else:
        assert tokens == [], "an IAM token was sent over an unverified connection"
        assert '"category": "iam_tls_missing"' in done.stdout


def test_no_token_is_minted_for_an_endpoint_a_store_names(lab, tmp_path, admin_defaults):
    """A store with auth=iam that points elsewhere: the operator's AWS identity signs no
    token for that host, even over verify-full."""
    with CleartextPasswordThief() as thief:
        store = env_file(tmp_path, f"postgresql://app_user@127.0.0.1:{thief.port}/appdb"
                                   "?sslmode=verify-full")
        done = run_tasks(lab, tmp_path, [{
            "name": "token probe of the store", "credops.pgauth.pg_login_probe": {
                "password_from": {"store": store}, "login_iam": True,
                "region": lab["AWS_REGION"]}, "register": "probe"},
            {"ansible.builtin.debug": {"var": "probe"}}], module_defaults=admin_defaults,
            verbosity="")
    assert done.returncode == 0, done.stdout[-3000:]
    assert thief.startups == 0 and thief.received == []
    assert "store_target_mismatch" in done.stdout
    assert "no IAM token is minted" in done.stdout
