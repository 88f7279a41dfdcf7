from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.verification import (
    checks_verdict,
    health_request,
    health_requests,
    redact_url,
    scrub,
    url_secrets,
    verify_checks,
)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://app/healthz", "https://app/healthz"),
    ("http://user:s3cr3t@127.0.0.1:8080/health", "http://***@127.0.0.1:8080/health"),
    ("http://token@app/health", "http://***@app/health"),
    ("http://u:p%40ss@app/h?password=p%26q&x=1", "http://***@app/h?password=***&x=1"),
    ("https://app/h?token=abc&verbose=1&api_key=k&X-Amz-Signature=s",
     "https://app/h?token=***&verbose=1&api_key=***&X-Amz-Signature=***"),
    ("https://app/h#access_token=abc", "https://app/h#access_token=***"),
    ("https://app/h?flag", "https://app/h?flag"),
    # an unencoded '/' in the password: urlsplit sees host 'u', port 'pa'
    ("http://u:pa/ss@app/h", "http://***@app/h"),
    ("http://u:12/ss@app/h", "http://***@app/h"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_url_secrets_are_what_redact_url_hides():
    url = "http://u:p%40ss@app/h?token=t%2Bk&x=1"
    assert set(url_secrets(url)) == {"u:p%40ss", "u:p@ss", "p%40ss", "p@ss", "t%2Bk", "t+k"}
    assert url_secrets("https://app/healthz?x=1") == []


def test_scrub_redacts_urls_and_secrets_in_a_message():
    message = "Request failed: <urlopen error http://u:pw@app/x?token=tk> (pw)"
    assert scrub(message, ["pw", "tk"]) == (
        "Request failed: <urlopen error http://***@app/x?token=***> (***)")


def test_health_request_moves_the_userinfo_to_basic_auth():
    request = health_request("http://mon:s%3Acret@127.0.0.1:8080/health?x=1")
    assert request == {"url": "http://127.0.0.1:8080/health?x=1", "username": "mon",
                       "password": "s:cret", "basic_auth": True,
                       "label": "http://***@127.0.0.1:8080/health?x=1", "error": ""}


def test_health_request_keeps_a_query_token_for_the_request_only():
    request = health_request("https://app/ready?token=tk")
    assert request["url"] == "https://app/ready?token=tk"
    assert request["label"] == "https://app/ready?token=***"
    assert not request["basic_auth"] and not request["error"]


@pytest.mark.parametrize("url", ["http://u:pa/ss@app/h", "http://u:12/ss@app/h",
                                 "http://[::1/h"])
def test_an_ambiguous_url_is_not_requested(url):
    request = health_request(url)
    assert request["error"].startswith("not requested")
    assert "pa/ss" not in request["url"] and "12/ss" not in request["url"]


def health_results(urls: list[str], outcomes: list[dict]) -> list[dict]:
    return [{"item": request, **outcome}
            for request, outcome in zip(health_requests(urls), outcomes, strict=True)]


def test_health_checks_show_the_label_and_scrub_the_message():
    results = health_results(
        ["http://mon:pw-1234@app/health", "https://app/ready?token=tk-5678",
         "http://u:pa/ss@app/h"],
        [{"status": 200, "url": "http://app/health"},
         {"status": -1, "msg": "Request failed: https://app/ready?token=tk-5678 refused"},
         {"skipped": True}])
    checks = [check for check in verify_checks({}, results) if check["check"].startswith("health")]
    assert [(check["check"], check["ok"]) for check in checks] == [
        ("health:http://***@app/health", True),
        ("health:https://app/ready?token=***", False),
        ("health:http://***@app/h", False)]
    assert checks[1]["detail"] == "Request failed: https://app/ready?token=*** refused"
    assert checks[2]["detail"].startswith("not requested")
    assert not any(secret in str(checks) for secret in ("pw-1234", "tk-5678", "pa/ss"))


def test_health_checks_of_ones_own_uri_loop_are_redacted_too():
    """verify_checks with results of a plain uri loop over the raw URLs."""
    checks = verify_checks({}, [{"item": "http://mon:pw-1234@app/h", "status": 503,
                                 "url": "http://mon:pw-1234@app/h"},
                                {"url": "https://app/h?key=k-999", "status": 200}])
    names = [check["check"] for check in checks][-2:]
    assert names == ["health:http://***@app/h", "health:https://app/h?key=***"]
    assert "pw-1234" not in str(checks) and "k-999" not in str(checks)


@pytest.mark.parametrize(("valid_until", "warned"), [
    ("2026-12-02T10:00:00+00:00", True),      # tomorrow
    ("2027-06-01T00:00:00+00:00", False),     # months ahead
    ("infinity", False), (None, False),
])
def test_verify_warns_of_a_password_that_expires_soon(valid_until, warned):
    facts = {"target": {"role": "app_user"}, "gathered_at": "2026-12-01T10:00:00+00:00",
             "role": {"exists": True, "can_login": True, "expired": False,
                      "valid_until": valid_until},
             "stores": [{"store": "aws", "readable": True, "password_fingerprint": "f"}],
             "probes": [{"store": "aws", "ok": True}]}
    checks = {check["check"]: check for check in verify_checks(facts)}
    assert ("role_password_not_expiring" in checks) is warned
    if warned:
        assert checks["role_password_not_expiring"]["severity"] == "warning"
        assert "24 h" in checks["role_password_not_expiring"]["detail"]


def test_a_connection_string_its_client_refuses_fails_verify():
    from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
        dsn_rejected,
        parse_dsn,
    )
    cred = parse_dsn("postgresql+asyncpg://app:pw@db/app?sslmode=require")
    store = {"store": "env", "readable": True, "exists": True, "password_fingerprint": "f",
             "credential": cred.public(), "dsn_rejected": dsn_rejected(cred)}
    facts = {"stores": [store], "probes": [{"store": "env", "ok": True}]}
    checks = {check["check"]: check for check in verify_checks(facts)}
    assert not checks["dsn_accepted:env"]["ok"]
    assert "sslmode" in checks["dsn_accepted:env"]["detail"]
    assert checks_verdict(list(checks.values())) == "broken"
    fixed = parse_dsn("postgresql+asyncpg://app:pw@db/app?ssl=require")
    store.update(credential=fixed.public(), dsn_rejected=dsn_rejected(fixed))
    checks = {check["check"]: check for check in verify_checks(facts)}
    assert checks["dsn_accepted:env"]["ok"]
