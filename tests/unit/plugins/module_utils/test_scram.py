"""SCRAM-SHA-256 verification against verifiers the PostgreSQL server made."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    hash_type,
    make_verifier,
    parse_verifier,
    saslprep,
    verify_md5,
    verify_password,
)

# (password, verifier) pairs made by the lab's PostgreSQL 15 server from the plaintext
# (ALTER ROLE ... PASSWORD 'plain' with password_encryption=scram-sha-256), so the server's
# own SASLprep and key derivation are the reference.  Test data, not secrets.
SERVER_VERIFIERS = [
    ("plain-ascii-1",
     "SCRAM-SHA-256$4096:SbEZIhf+2JJzcLhCbBP1Ow==$nAutlv20QUdrQzHZrIoE5vr8hXRWIehQbZh+GriZpGc=:yvM2vrljD+Ex5f44tRFMMa+6MitR0cp4Mq5YZ2covP8="),
    ("every !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ printable",
     "SCRAM-SHA-256$4096:T8nlt6icmyVhX73Ep54r7w==$viALz9/ipFpu6WuXW5bESvZs0SspNyRNsmTOMzL6BD8=:6accvEInSc1aejGDjXBn9hMdil3+Oi4nMTp+2z4XBXI="),
    ("p\u00e4ssw\u00f6rd",
     "SCRAM-SHA-256$4096:hvy+415HsXopHJXqA61fGg==$h5W5cUF4s+SZTPpeMxhHI8bALPfu52+m2EIgwoPGCPA=:/fZu0tKY8W4aiEgdAqZL3SM8FvbfGjV+Y5ZX1UnLkJ4="),
    ("\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",
     "SCRAM-SHA-256$4096:JHQYJWyqNxrK+88BRJRuDQ==$hUYZXKaF4+Ari0bp1OVsPa7Zwbv82t1W5WfOapWlUhk=:PkbuNZnAYKlP+MaslIUJ5Bb6wqO1yOVRtR1cyOdLyWY="),
    ("\ufb01-ligature",
     "SCRAM-SHA-256$4096:3qyYuuqprQ3loouwTy++wg==$LnZLNbHD84Dw21k2xrByqJ0qQbNigPjFXGxsVDZA7GY=:HbVGVy24jUhzwJ+r+E4B2ykSb++QcA9HDeZSog/Rwyw="),
    ("soft\u00adhyphen",
     "SCRAM-SHA-256$4096:miWppC5J5NVN6sIiDLE0cA==$Ym6r0lFoiFMtpD1cuVBWU9FZBhInchy3xxqDejDs9jY=:icslnwrFcUPIXpxpZNei7Y+ywgOHwrkfqFHUTHDrhXQ="),
    ("nbsp\u00a0space",
     "SCRAM-SHA-256$4096:9OYwbF5lJstIgQssCliD7w==$ujbOPeQo6dJhxpqE/7Y2zPpBbMJES1CcBPx8bt8lOsA=:iv1uJ0L9Etfhs18YQmjP9U6bTELfxQPHtp9j1kLoFGc="),
    ("\u0627\u0644\u0633\u0644\u0627\u0645",
     "SCRAM-SHA-256$4096:F5TOOdtRerQVK6r/6v/shg==$oC/k4SeVKeBX6Kv+3gBOI18HrWCje221COdUoqx1eMI=:3RhLRSfk11nxkAhsSqOOUOcpcJvkHlgKNhZkyVafkp0="),
    ("bad\u0627bidi",
     "SCRAM-SHA-256$4096:hh4LldEBPqdfwnBNRfAsCw==$nxtdE3pp/wZTwEACcBLRQZJemDbLj4hPDueGbat3Eh0=:Ux7gWC72SmSnMIRy8vl0y9vkj0JWj0cT9nb8XkKMzoo="),
    ("ctrl\u0007bell",
     "SCRAM-SHA-256$4096:uahhnQkbXW37Z8SzCJJjfw==$YUAgYllKvGujpmE+j4VekVvWXOW4y2H3WhD/PvYF3Mw=:ER9/Tg7kPsuDHs9g1WyB65k3x56gF2F/p13fke84f0Q="),
    ("\u2028lsep",
     "SCRAM-SHA-256$4096:nwS+3Mg67uZSjy6zqqelaw==$0hhsZHTZw/5+2+86/EjjEWeFS7ybPEoP4Upkd9QI4Eg=:E1/p4F5Nge/HlJDpKe9WMQhAQwo0km/r9TibUug6Blw="),
]


@pytest.mark.parametrize(("password", "verifier"), SERVER_VERIFIERS)
def test_server_verifiers_accept_their_password(password, verifier):
    assert verify_password(password, verifier)


@pytest.mark.parametrize(("password", "verifier"), SERVER_VERIFIERS)
def test_server_verifiers_reject_other_passwords(password, verifier):
    assert not verify_password(password + "x", verifier)
    assert not verify_password(password[:-1], verifier)


FULLWIDTH = "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48"


def _verifier_of(password: str) -> str:
    return dict(SERVER_VERIFIERS)[password]


def test_saslprep_makes_nfkc_equivalents_equal():
    # the server normalizes with NFKC: full-width letters and ligatures log in as ASCII
    assert verify_password("fullwidth", _verifier_of(FULLWIDTH))
    assert verify_password("fi-ligature", _verifier_of("\ufb01-ligature"))


def test_saslprep_maps_and_removes_like_the_server():
    assert verify_password("softhyphen", _verifier_of("soft\u00adhyphen"))  # B.1: removed
    assert verify_password("nbsp space", _verifier_of("nbsp\u00a0space"))  # C.1.2: to space


def test_saslprep_falls_back_to_raw_bytes_when_prohibited():
    assert saslprep("bad\u0627bidi") == "bad\u0627bidi".encode()  # RandAL mixed with L
    assert saslprep("\u2028lsep") == "\u2028lsep".encode()  # C.6/C.2.1: prohibited
    assert saslprep("ctrl\u0007bell") == b"ctrl\x07bell"  # ASCII passes untouched
    assert not verify_password("badbidi", _verifier_of("bad\u0627bidi"))


def test_make_verifier_round_trip_and_format():
    verifier = make_verifier("s3cret", salt=b"0123456789abcdef", iterations=4096)
    parsed = parse_verifier(verifier)
    assert parsed.iterations == 4096 and parsed.salt == b"0123456789abcdef"
    assert verify_password("s3cret", verifier)
    assert not verify_password("s3creT", verifier)


@pytest.mark.parametrize("text", [
    None, "", "md5" + "0" * 32, "SCRAM-SHA-256$4096:abc", "SCRAM-SHA-256$x:AA==$AA==:AA==",
    "SCRAM-SHA-256$4096:!!!$AA==:AA==",
])
def test_parse_verifier_rejects_non_verifiers(text):
    assert parse_verifier(text) is None
    assert not verify_password("anything", text)


def test_hash_type():
    assert hash_type(None) == "none" and hash_type("") == "none"
    assert hash_type(SERVER_VERIFIERS[0][1]) == "scram"
    assert hash_type("md5" + "a" * 32) == "md5"
    assert hash_type("legacy-plain") == "plain"


def test_verify_md5():
    # md5 verifiers are md5(password || role name)
    import hashlib
    stored = "md5" + hashlib.md5(b"pwapp_user").hexdigest()
    assert verify_md5("pw", "app_user", stored)
    assert not verify_md5("pw", "other", stored)
