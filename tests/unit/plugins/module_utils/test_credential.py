"""The credential model: formats, DSNs, placeholders, generated passwords."""
from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    DEFAULT_EXCLUDE,
    Credential,
    CredentialError,
    build_dsn,
    decode,
    encode,
    generate_password,
    is_placeholder,
    parse_dsn,
    same_value,
)

HOSTILE = "p@ss:w/o?r#d%25 +'\"\\ünï✓"
# every character a URL treats specially, plus quotes, backslash, space and unicode
hostile_text = st.text(alphabet=st.sampled_from(list("@:/?#%+ '\"\\&=[]!$*,;~") + list(
    string.ascii_letters + string.digits) + ["ü", "✓", "密"]), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(user=hostile_text, password=hostile_text, dbname=hostile_text,
       port=st.integers(min_value=1, max_value=65535))
def test_dsn_round_trip_is_lossless(user, password, dbname, port):
    cred = Credential(username=user, password=password, host="db.example.internal",
                      port=port, dbname=dbname, sslmode="verify-full",
                      params=[("sslrootcert", "/etc/ssl/a b.pem")])
    back = parse_dsn(build_dsn(cred))
    assert (back.username, back.password) == (user, password)
    assert (back.dbname, back.port) == (dbname, port)
    assert back.sslmode == "verify-full" and back.params == [("sslrootcert", "/etc/ssl/a b.pem")]


@settings(max_examples=200, deadline=None)
@given(password=hostile_text)
def test_every_format_round_trips_a_hostile_password(password):
    base = Credential(username="app", password=password, host="h", port=5432, dbname="d")
    for fmt in ("json", "password", "dsn"):
        for as_text in (True, False) if fmt == "json" else (True,):
            value = encode(base, fmt, None, as_text=as_text)
            assert decode(value, fmt).password == password


def test_json_keeps_unknown_keys_order_and_aliases():
    existing = json.dumps({"engine": "postgres", "user": "app", "password": "old",
                           "proxy": {"x": 1}, "host": "h"})
    cred = decode(existing, "json").merged({"password": "new-Pw-123"})
    written = json.loads(encode(cred, "json", existing))
    assert list(written) == ["engine", "user", "password", "proxy", "host"]
    assert written["password"] == "new-Pw-123" and written["proxy"] == {"x": 1}
    assert "username" not in written  # written back under the key the secret used


def test_semantic_json_equality_ignores_order_and_spacing():
    assert same_value('{"a": 1, "b": "x"}', '{"b":"x","a":1}', "json")
    assert not same_value('{"a": 1}', '{"a": 2}', "json")
    assert same_value("postgresql://u:p%40@h/d", "postgres://u:p%40@h/d", "dsn")


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql://u:p@h/d", "not a postgresql:// URL"),
    ("postgresql://u:p@ss@h/d", "more than one '@'"),
    ("postgresql://u:pa ss@h/d", "must be percent-encoded"),
    ("postgresql://u:p#w@h/d", "must be percent-encoded"),
    ("postgresql://u:p/w@h/d", "must be percent-encoded"),
    ("postgresql://u:p@h:notaport/d", "port is not a number"),
    ("postgresql://u:p@h1,h2/d", "multi-host"),
])
def test_broken_dsns_are_refused_without_echoing_the_password(url, reason):
    with pytest.raises(CredentialError, match=reason) as err:
        parse_dsn(url)
    assert "p@ss" not in str(err.value) and "pa ss" not in str(err.value)


@pytest.mark.parametrize(("url", "secret"), [
    # an '@' in the password, then a '/', '?' or '#': urllib would read host 'ss'
    ("postgresql://app:p@ss/word@db/appdb", "ss/word"),
    ("postgresql://app:p@ss?word@db/appdb", "ss?word"),
    ("postgresql://app:p@ss#word@db/appdb", "ss#word"),
    # a password starting with '/', '?' or '#': urllib would read host 'app'
    ("postgresql://app:/s3cret@db/appdb", "s3cret"),
    ("postgresql://app:?s3cret@db/appdb", "s3cret"),
    ("postgresql://app:#s3cret@db/appdb", "s3cret"),
    # digits then '/': urllib would read port 12 and database 's3cret@db/appdb'
    ("postgresql://app:12/s3cret@db/appdb", "s3cret"),
    ("postgresql://:/s3cret@db/appdb", "s3cret"),
])
def test_passwords_with_unencoded_delimiters_are_refused(url, secret):
    with pytest.raises(CredentialError, match=r"more than one '@'|must be percent-encoded") as err:
        parse_dsn(url)
    assert secret not in str(err.value)


def test_a_password_without_a_user_is_kept():
    url = build_dsn(Credential(password="s3cret/@", host="h", dbname="d"))
    assert url == "postgresql://:s3cret%2F%40@h/d"
    back = parse_dsn(url)
    assert (back.username, back.password, back.host, back.dbname) == (None, "s3cret/@", "h", "d")


def test_a_query_with_an_at_sign_is_not_a_password():
    cred = parse_dsn("postgresql://h:5432/d?application_name=a@b")
    assert cred.host == "h" and cred.port == 5432 and cred.password is None


@pytest.mark.parametrize(("text", "err"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('"a string"', "not an object"),
    ("[" * 3000, "not valid JSON"),
    ('{"a": ' + "{" * 3000, "not valid JSON"),
])
def test_broken_json_is_a_clear_error(text, err):
    with pytest.raises(CredentialError, match=err):
        decode(text, "json")


@pytest.mark.parametrize("password", ["", "DB", "db", "changeme", "password", "short", "aaaaaaaa",
                                      None, " CHANGEME "])
def test_placeholders(password):
    assert is_placeholder(password)


def test_real_passwords_are_not_placeholders():
    assert not is_placeholder(generate_password())
    assert not is_placeholder(HOSTILE)


def test_generated_passwords():
    seen = {generate_password() for _attempt in range(50)}
    assert len(seen) == 50
    for pw in seen:
        assert len(pw) == 32 and not set(pw) & set(DEFAULT_EXCLUDE)
        assert any(c.islower() for c in pw) and any(c.isupper() for c in pw)
        assert any(c.isdigit() for c in pw) and any(c in string.punctuation for c in pw)
    with pytest.raises(CredentialError):
        generate_password(length=4)
    with pytest.raises(CredentialError):
        generate_password(exclude_characters=string.printable)


@pytest.mark.parametrize("url", [
    "postgresql://app:pw@db:5432/appdb?application_name=svc@web1",
    "postgresql://app:pw@db/appdb?sslrootcert=/home/me@corp/ca.pem",
    "postgresql://app@db/appdb?application_name=a@b",
])
def test_an_at_in_a_query_value_is_ordinary(url):
    cred = parse_dsn(url)
    assert cred.host == "db" and cred.dbname == "appdb"


@pytest.mark.parametrize("url", [
    "postgresql://u:a@b?c@h/d",
    "postgresql://app:p@ss/word@db/appdb",
    "postgresql://app:p?ss@db/appdb",
])
def test_an_unencoded_at_is_still_refused(url):
    with pytest.raises(CredentialError):
        parse_dsn(url)
