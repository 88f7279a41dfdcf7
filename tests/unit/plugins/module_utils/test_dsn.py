"""DSN dialects: libpq URL, SQLAlchemy, JDBC, libpq keyword/value.  Round trips through our
parser and, where the client's own parser is a library here, through that one too (libpq's
via psycopg2.extensions.parse_dsn, SQLAlchemy's make_url)."""
from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils import dsn
from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    Credential,
    CredentialError,
    build_dsn,
    client_sslmode,
    decode,
    dsn_rejected,
    encode,
    looks_like_dsn,
    parse_dsn,
    same_value,
)
from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose
from ansible_collections.credops.pgauth.plugins.module_utils.kvdsn import LIBPQ_KEYWORDS

psycopg2_ext = pytest.importorskip("psycopg2.extensions")
sqlalchemy_url = pytest.importorskip("sqlalchemy.engine.url")

DIALECTS = ["url", "sqlalchemy+asyncpg", "sqlalchemy+psycopg2", "sqlalchemy+psycopg", "jdbc",
            "keyword"]
# every printable character and any other unicode but NUL (which no client takes) and lone
# surrogates (which are not text)
secret_text = st.text(st.one_of(st.sampled_from(string.printable),
                                st.characters(blacklist_categories=("Cs",),
                                              blacklist_characters="\x00")),
                      min_size=1, max_size=40)
hosts = st.sampled_from(["db", "db.example.com", "10.0.0.7", "::1", "h-1"])
ports = st.one_of(st.none(), st.integers(1, 65535))
param_names = st.sampled_from(["application_name", "connect_timeout", "options",
                               "target_session_attrs"])
params = st.lists(st.tuples(param_names, secret_text), max_size=3, unique_by=lambda p: p[0])
DEFAULTS = settings(max_examples=150, deadline=None)


def fields(cred: Credential) -> tuple:
    return (cred.username, cred.password, cred.host, cred.port, cred.dbname, cred.sslmode,
            cred.params)


@DEFAULTS
@given(dialect=st.sampled_from(DIALECTS), user=secret_text, password=secret_text, host=hosts,
       port=ports, dbname=st.one_of(st.none(), secret_text),
       sslmode=st.one_of(st.none(), st.sampled_from(dsn.SSLMODES)), extra=params)
def test_every_dialect_round_trips(dialect, user, password, host, port, dbname, sslmode,
                                   extra):
    cred = Credential(username=user, password=password, host=host, port=port, dbname=dbname,
                      sslmode=sslmode, params=extra)
    text = build_dsn(cred, dialect)
    assert looks_like_dsn(text)
    back = parse_dsn(text)
    assert back.dialect == (dialect if dialect != "sqlalchemy" else "sqlalchemy+psycopg2")
    assert fields(back) == fields(cred)
    # rewriting with nothing changed is the same text, byte for byte
    assert encode(back, "dsn", text) == text


@DEFAULTS
@given(user=secret_text, password=secret_text, host=hosts, port=ports, dbname=secret_text,
       form=st.sampled_from(["url", "keyword"]))
def test_libpq_reads_what_we_write(user, password, host, port, dbname, form):
    """libpq's own parser (PQconninfoParse through psycopg2) reads the same fields."""
    text = build_dsn(Credential(username=user, password=password, host=host, port=port,
                                dbname=dbname, sslmode="require"), form)
    seen = psycopg2_ext.parse_dsn(text)
    assert (seen["user"], seen["password"], seen["host"], seen["dbname"], seen["sslmode"]) == \
        (user, password, host, dbname, "require")
    assert seen.get("port") == (str(port) if port else None)


@DEFAULTS
@given(driver=st.sampled_from(["asyncpg", "psycopg2", "psycopg"]), user=secret_text,
       password=secret_text, dbname=secret_text, extra=params)
def test_sqlalchemy_reads_what_we_write(driver, user, password, dbname, extra):
    text = build_dsn(Credential(username=user, password=password, host="db", port=5432,
                                dbname=dbname, sslmode="require", params=extra),
                     f"sqlalchemy+{driver}")
    url = sqlalchemy_url.make_url(text)
    assert url.drivername == f"postgresql+{driver}"
    assert (url.username, url.password, url.host, url.port, url.database) == \
        (user, password, "db", 5432, dbname)
    tls = "ssl" if driver == "asyncpg" else "sslmode"
    assert dict(url.query) == {**dict(extra), tls: "require"}


@DEFAULTS
@given(dialect=st.sampled_from(DIALECTS), old=secret_text, new=secret_text,
       user=secret_text)
def test_a_rotation_rewrites_only_the_password(dialect, old, new, user):
    """A hand-written string with parameters in an odd order: after a password change, the
    rest is byte-identical (the password's own segment is the only difference)."""
    base = Credential(username=user, password=old, host="db", port=5432, dbname="app",
                      params=[("connect_timeout", "10"), ("application_name", "a b")])
    text = build_dsn(base, dialect)
    rotated = encode(parse_dsn(text).merged({"password": new}), "dsn", text)
    assert parse_dsn(rotated).password == new
    assert fields(parse_dsn(rotated).merged({"password": old})) == fields(parse_dsn(text))
    # back to the old password: the very same text
    assert encode(parse_dsn(rotated).merged({"password": old}), "dsn", rotated) == text


@pytest.mark.parametrize(("text", "new_text"), [
    ("jdbc:postgresql://db:5432/app?ssl=true&user=app&ApplicationName=a+b&password=old1",
     "jdbc:postgresql://db:5432/app?ssl=true&user=app_clone&ApplicationName=a+b&password=n%40w"),
    ("postgresql+asyncpg://app:old1@db:5432/app?prepared_statement_cache_size=0&ssl=require",
     "postgresql+asyncpg://app_clone:n%40w@db:5432/app?prepared_statement_cache_size=0&ssl=require"),
    ("postgres://app:old1@db/app?application_name=a+b&sslmode=verify-full#frag",
     "postgres://app_clone:n%40w@db/app?application_name=a+b&sslmode=verify-full#frag"),
    ("  host = db  port=5432 user=app password = old1 application_name='a b'  ",
     "  host = db  port=5432 user=app_clone password = n@w application_name='a b'  "),
    ("dbname=app host=db sslmode=require password='old \\'1\\''",
     "dbname=app host=db sslmode=require password=n@w user=app_clone"),
])
def test_rewrite_changes_only_what_changed(text, new_text):
    cred = parse_dsn(text).merged({"password": "n@w", "username": "app_clone"})
    assert encode(cred, "dsn", text) == new_text


def test_a_new_jdbc_url_without_a_database_keeps_its_slash():
    assert build_dsn(Credential(username="u", host="db"), "jdbc") == \
        "jdbc:postgresql://db/?user=u"


def test_jdbc_credentials_stay_in_the_query_and_are_added_there():
    text = "jdbc:postgresql://db/app?ssl=true"
    out = encode(parse_dsn(text).merged({"username": "app", "password": "p&w=1"}), "dsn", text)
    assert out == "jdbc:postgresql://db/app?ssl=true&user=app&password=p%26w%3D1"
    with pytest.raises(CredentialError, match="user= and password= in the query"):
        parse_dsn("jdbc:postgresql://app:pw@db/app")


@pytest.mark.parametrize("text", [
    "postgresql://app:pw@h1,h2/app", "postgresql+psycopg2://app:pw@h1:5432,h2:5432/app",
    "postgresql+asyncpg://app:pw@/app?host=h1:5432&host=h2:5432",
    "jdbc:postgresql://h1:5432,h2:5432/app", "host=h1,h2 dbname=app password=x",
])
def test_multi_host_strings_are_refused_not_corrupted(text):
    with pytest.raises(CredentialError, match="multi-host"):
        parse_dsn(text)


@pytest.mark.parametrize(("text", "sslmode", "rejected"), [
    # the Azure incident: SQLAlchemy hands sslmode to asyncpg.connect(), a TypeError
    ("postgresql+asyncpg://admin:pw@server:5432/app?sslmode=require", None, ["sslmode"]),
    ("postgresql+asyncpg://admin:pw@server:5432/app?ssl=require", "require", []),
    ("postgresql+asyncpg://admin:pw@server/app?ssl=true", None, ["ssl"]),
    ("postgresql+asyncpg://admin:pw@server/app?application_name=x", None,
     ["application_name"]),
    ("postgresql+psycopg2://app:pw@db/app?ssl=true", None, ["ssl"]),
    ("postgresql+psycopg://app:pw@db/app?sslmode=verify-full", "verify-full", []),
    ("postgresql://app:pw@db/app?sslmode=bogus", None, ["sslmode"]),
    # a postgresql:// URL's client is not known (node-postgres reads ssl=true): no verdict
    ("postgresql://app:pw@db/app?ssl=true&schema=public", None, []),
    # pgjdbc: ssl=true alone verifies the certificate and the host name
    ("jdbc:postgresql://db/app?ssl=true&user=app&password=pw", "verify-full", []),
    ("jdbc:postgresql://db/app?ssl=true&sslmode=require", "require", []),
    ("jdbc:postgresql://db/app?ssl=false", None, []),
    ("jdbc:postgresql://db/app?sslmode=nope", None, ["sslmode"]),
    ("host=db dbname=app sslmode=verify-ca nosuchoption=1", "verify-ca", ["nosuchoption"]),
])
def test_each_client_reads_its_own_parameters(text, sslmode, rejected):
    cred = parse_dsn(text)
    assert client_sslmode(cred) == sslmode
    found = dsn_rejected(cred)
    assert [item["parameter"] for item in found] == rejected
    for item in found:
        assert item["dialect"] == cred.dialect and item["reason"]
        assert "pw" not in item["reason"]


def test_every_keyword_we_know_is_libpqs():
    for keyword in LIBPQ_KEYWORDS:
        psycopg2_ext.parse_dsn(f"{keyword}=1")
    with pytest.raises(pytest.importorskip("psycopg2").ProgrammingError):
        psycopg2_ext.parse_dsn("nosuchoption=1")


@pytest.mark.parametrize("value", [
    "", "plain", "with space", "it's", "back\\slash", "tab\tnew\nline", "'", "\\", "=",
    "ünïcødé ✓", "a\\'b",
])
def test_keyword_values_are_quoted_the_way_libpq_reads_them(value):
    text = build_dsn(Credential(username="app", password=value or None, host="db"), "keyword")
    seen = psycopg2_ext.parse_dsn(text)
    assert seen.get("password") == (value or None)
    assert parse_dsn(text).password == (value or None)


@pytest.mark.parametrize("text", ["password=a=b", "hunter2", "a=b c=d", "host=", "x"])
def test_a_bare_password_is_not_mistaken_for_keyword_value(text):
    assert not looks_like_dsn(text) or text == "host="


def test_keyword_errors_never_echo_a_value():
    with pytest.raises(CredentialError) as err:
        parse_dsn("host=db password='s3cretMARK")
    assert "s3cretMARK" not in str(err.value)


def test_same_value_is_per_dialect():
    assert same_value("jdbc:postgresql://db/app?user=a&password=b",
                      "jdbc:postgresql://db/app?user=a&password=%62", "dsn")
    assert not same_value("jdbc:postgresql://db/app?user=a&password=b",
                          "postgresql://a:b@db/app", "dsn")
    assert decode("host=db user=a password=b", "dsn").dialect == "keyword"


@pytest.mark.parametrize("name", ["mysql", "sqlalchemy+", "jdbc+x", "odbc"])
def test_unknown_dialects_are_refused(name):
    with pytest.raises(CredentialError, match="dialect"):
        build_dsn(Credential(host="db"), name)


def test_a_refused_parameter_is_store_dsn_invalid_naming_it():
    cred = parse_dsn("postgresql+asyncpg://admin:pw@server:5432/app?sslmode=require")
    facts = {"target": {"role": "admin"}, "probes": [{"store": "env", "ok": True}],
             "stores": [{"store": "env", "readable": True, "exists": True,
                         "dsn_rejected": dsn_rejected(cred)}]}
    found = [f for f in diagnose(facts) if f["id"] == "store_dsn_invalid"]
    assert len(found) == 1 and found[0]["severity"] == "critical"
    assert found[0]["evidence"]["dialect"] == "sqlalchemy+asyncpg"
    assert found[0]["evidence"]["parameters"][0]["parameter"] == "sslmode"
    assert "asyncpg" in found[0]["evidence"]["parameters"][0]["reason"]
    assert found[0]["fix"]["manual"]


def test_into_another_dialect_the_tls_goes_along():
    jdbc = parse_dsn("jdbc:postgresql://db/app?ssl=true&user=app&password=pw&ApplicationName=x")
    kv = build_dsn(jdbc, "keyword")
    assert kv == "host=db dbname=app user=app password=pw sslmode=verify-full ApplicationName=x"
    assert [item["parameter"] for item in dsn_rejected(parse_dsn(kv))] == ["ApplicationName"]
    asyncpg = parse_dsn("postgresql+asyncpg://app:pw@db/app?ssl=require")
    assert build_dsn(asyncpg, "jdbc") == \
        "jdbc:postgresql://db/app?sslmode=require&user=app&password=pw"
    assert build_dsn(asyncpg) == "postgresql+asyncpg://app:pw@db/app?ssl=require"


MARK = "S3cr3tMARK"
hostile = st.text(st.sampled_from(list("@:/?#&=+%'\"\\ ,[]\t\nab12")), max_size=12)
# where a password goes in each dialect, written as a careless hand would (not encoded)
password_slots = st.sampled_from([
    "jdbc:postgresql://db/app?user=u&password={}", "jdbc:postgresql://db/app?password={}&ssl=1",
    "postgresql+asyncpg://u:{}@db/app?ssl=require", "postgresql+psycopg2://u:{}@db/app",
    "postgres://u:{}@db:5432/app", "host=db password={}", "dbname=app password='{}'",
    "host=h user=u password={} sslmode=require", "host=h password = {} x=1"])


@settings(max_examples=500, deadline=None)
@given(slot=password_slots, before=hostile, after=hostile)
# found by this test in CI: the password's tail glued to its closing quote became a keyword
@example(slot="dbname=app password='{}'", before="'", after="=1")
def test_a_careless_password_never_shows_in_errors_fields_or_findings(slot, before, after):
    text = slot.format(f"{before}{MARK}{after}")
    try:
        cred = parse_dsn(text)
    except CredentialError as err:
        assert MARK not in str(err)
        return
    assert MARK not in repr(cred.public())
    assert MARK not in repr(dsn_rejected(cred))
    assert looks_like_dsn(text)


def test_an_unquoted_password_with_a_space_is_named_as_such():
    cred = parse_dsn("host=db user=app password=two words=x")
    assert [item["parameter"] for item in dsn_rejected(cred)] == ["password"]
    assert "words" not in repr(dsn_rejected(cred))
    # "u:1?pw@host": the port-like start puts the password's tail in the query
    cred = parse_dsn("postgresql+asyncpg://u:1?tail=@db/app")
    assert [item["parameter"] for item in dsn_rejected(cred)] == ["password"]
    assert "tail" not in repr(dsn_rejected(cred))
