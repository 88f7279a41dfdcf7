# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: pg_dsn
short_description: Build a connection string of any DSN dialect from a credential
version_added: 0.1.0
description:
  - Turns a credential dict (V(username), V(password), V(host), V(port), V(dbname),
    V(sslmode), and V(params) for other parameters) into a connection string that its
    client reads back exactly (libpq, psycopg, SQLAlchemy and its drivers, pgjdbc).
    Passwords with C(@), C(:), C(/), C(?), C(#), C(%) or spaces are encoded; not encoding
    them is what breaks hand-built DATABASE_URLs.
  - O(dialect) picks the connection string's dialect; every part is encoded the way that
    dialect's client decodes it.
  - The inverse is P(credops.pgauth.pg_dsn_parse#filter).
options:
  _input:
    description: The credential.
    type: dict
    required: true
  dialect:
    description:
      - V(url) a libpq URL (C(postgresql://user:pw@host:port/db?sslmode=...)).
      - V(sqlalchemy+asyncpg), V(sqlalchemy+psycopg2), V(sqlalchemy+psycopg) (or any other
        driver) a SQLAlchemy URL (C(postgresql+asyncpg://...)); V(sqlalchemy) alone is
        V(sqlalchemy+psycopg2). For asyncpg the credential's V(sslmode) is written as C(ssl=),
        the parameter asyncpg reads.
      - V(jdbc) a PostgreSQL JDBC URL, C(jdbc:postgresql://host:port/db?user=...&password=...).
      - V(keyword) a libpq keyword/value string, C(host=db port=5432 user=app password='...'),
        quoted with libpq's rules.
    type: str
    default: url
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: A DATABASE_URL for the app
  ansible.builtin.set_fact:
    database_url: "{{ app_credential | credops.pgauth.pg_dsn }}"
  vars:
    app_credential: {username: app, password: "{{ pw }}", host: db, port: 5432, dbname: app}
  no_log: true

- name: The same credential for a Java service and for an asyncpg one
  ansible.builtin.set_fact:
    jdbc_url: "{{ app_credential | credops.pgauth.pg_dsn(dialect='jdbc') }}"
    async_url: "{{ app_credential | credops.pgauth.pg_dsn(dialect='sqlalchemy+asyncpg') }}"
  vars:
    app_credential: {username: app, password: "{{ pw }}", host: db, dbname: app,
                     sslmode: verify-full}
  no_log: true
"""

RETURN = r"""
_value:
  description: The connection string.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    CredentialError,
    build_dsn,
    from_mapping,
    parse_dsn,
)


def pg_dsn(credential: dict, dialect: str = "url") -> str:
    if not isinstance(credential, dict):
        raise AnsibleFilterError("pg_dsn expects a dict (username, password, host, ...)")
    data = dict(credential)
    params = data.pop("params", None) or {}
    # what pg_dsn_parse returns besides the fields: the dialect argument decides
    data.pop("dialect", None)
    try:
        cred = from_mapping(data)
        cred.params = list(params.items()) if isinstance(params, dict) else list(params)
        return build_dsn(cred, dialect or "url")
    except CredentialError as err:
        raise AnsibleFilterError(f"pg_dsn: {err}") from None


def pg_dsn_parse(url: str) -> dict:
    try:
        cred = parse_dsn(url)
    except CredentialError as err:
        raise AnsibleFilterError(f"pg_dsn_parse: {err}") from None
    out = {"username": cred.username, "password": cred.password, "host": cred.host,
           "port": cred.port, "dbname": cred.dbname, "sslmode": cred.sslmode,
           "params": dict(cred.params), "dialect": cred.dialect}
    return out


class FilterModule:
    def filters(self):
        return {"pg_dsn": pg_dsn, "pg_dsn_parse": pg_dsn_parse}
