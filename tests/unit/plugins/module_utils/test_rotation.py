from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.rotation import (
    RotationError,
    clone_name,
    same_secret,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_plan import is_due
from ansible_collections.credops.pgauth.plugins.module_utils.runbook_options import (
    connection_options,
)


@pytest.mark.parametrize(("left", "right", "same"), [
    (Credential("u", "p"), Credential("u", "p"), True),
    (Credential("u", "p"), Credential("u", "q"), False),
    (Credential("u", "p"), Credential("v", "p"), False),
    (Credential(None, "p"), Credential("u", "p"), True),   # a bare-password store has no user
    (Credential("u", "p"), None, False),
    (None, None, False),
])
def test_same_secret(left, right, same):
    assert same_secret(left, right) is same


def test_clone_name_fits_63_bytes():
    assert clone_name("app_user") == "app_user_clone"
    assert clone_name("r" * 57) == "r" * 57 + "_clone"
    with pytest.raises(RotationError, match="63 bytes"):
        clone_name("r" * 58)
    with pytest.raises(RotationError, match="63 bytes"):
        clone_name("é" * 29)  # 58 bytes in UTF-8


def due(min_age: str | None, changed: dt.datetime | None, force: bool = False) -> bool:
    return is_due(min_age, force, changed.isoformat() if changed else None,
                  dt.datetime.now(dt.timezone.utc))


def test_min_age():
    now = dt.datetime.now(dt.timezone.utc)
    assert due(None, now)
    assert not due("30d", now - dt.timedelta(days=29))
    assert due("30d", now - dt.timedelta(days=31))
    assert due("30d", now, force=True)
    assert due("30d", None)  # a secret with no date is due
    assert not due("12h", (now - dt.timedelta(hours=1)).replace(tzinfo=None))  # naive = UTC
    with pytest.raises(RotationError, match="min_age"):
        due("soon", now)


def test_connection_options_leave_out_what_is_not_given():
    target = {"host": "db", "port": 5433, "sslmode": "verify-full", "sslrootcert": "/ca.pem",
              "region": "eu-west-1"}
    assert connection_options(target, {"user": "admin", "password": "pw"}) == {
        "login_host": "db", "login_port": 5433, "login_user": "admin", "login_password": "pw",
        "login_db": "postgres", "login_iam": False, "ssl_mode": "verify-full",
        "ssl_rootcert": "/ca.pem", "region": "eu-west-1"}
    store = {"type": "file", "path": "/a"}
    options = connection_options({"host": "db"}, {"user": "a", "store": store, "host": "admin-db",
                                                  "dbname": "ops"},
                                 {"profile": "p", "region": "us-east-1"}, {"url": "https://v"}, 7)
    assert options["login_password_from"] == {"store": store}
    assert "login_password" not in options
    assert (options["login_host"], options["login_db"], options["region"], options["profile"],
            options["url"], options["connect_timeout"]) == ("admin-db", "ops", "us-east-1", "p",
                                                            "https://v", 7)
