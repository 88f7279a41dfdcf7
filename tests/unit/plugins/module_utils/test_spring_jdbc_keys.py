"""Spring's application.properties: the JDBC URL, the username and the password in three keys
of one file (issue 17's own example).  A rotation changes the keys that hold what changed,
and the URL only where it holds it too, in its own dialect."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.store import Store

KEYS = {"password": "spring.datasource.password", "username": "spring.datasource.username",
        "dsn": "spring.datasource.url"}


def spring(tmp_path, url: str):
    path = tmp_path / "application.properties"
    path.write_text("# datasource\n"
                    f"spring.datasource.url={url}\n"
                    "spring.datasource.username=app_user\n"
                    "spring.datasource.password=Old-Pw-1234\n"
                    "server.port=8080\n")
    path.chmod(0o600)
    return path, {"name": "spring", "type": "file", "path": str(path),
                  "format": "properties", "keys": KEYS}


@pytest.mark.parametrize("url, expected_url", [
    ("jdbc:postgresql://db:5432/app?ssl=true&sslmode=verify-full",
     "jdbc:postgresql://db:5432/app?ssl=true&sslmode=verify-full"),
    ("jdbc:postgresql://db:5432/app?user=app_user&password=Old-Pw-1234&ssl=true",
     "jdbc:postgresql://db:5432/app?user=app_user_clone&password=New-Pw%3A5678%40x&ssl=true"),
])
def test_a_rotation_reaches_every_key_and_keeps_the_url_a_jdbc_url(
        tmp_path, url, expected_url):
    path, spec = spring(tmp_path, url)
    store = Store(spec, {})
    cred, _stored = store.read()
    assert (cred.username, cred.host, cred.dbname, cred.dialect) == (
        "app_user", "db", "app", "jdbc")
    store.write(store.plan_write({"password": "New-Pw:5678@x", "username": "app_user_clone"}))
    lines = path.read_text().splitlines()
    assert lines[0] == "# datasource" and lines[4] == "server.port=8080"
    assert lines[2] == "spring.datasource.username=app_user_clone"
    assert lines[1] == f"spring.datasource.url={expected_url}"
    again = Store(spec, {}).read()[0]
    assert (again.username, again.password) == ("app_user_clone", "New-Pw:5678@x")
