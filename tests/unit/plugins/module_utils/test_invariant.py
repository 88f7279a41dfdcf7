"""The invariant of the findings engine (DESIGN §5), as properties over generated fact
sets: a failed probe or a store without a credential never gives `healthy`, and every
failed probe is explained by some finding."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.credops.pgauth.plugins.module_utils.diagnosis import diagnose, verdict
from ansible_collections.credops.pgauth.plugins.module_utils.findings_catalogue import (
    FINDING_IDS,
)
from ansible_collections.credops.pgauth.plugins.module_utils.findings_checks import (
    _explains,
)
from ansible_collections.credops.pgauth.plugins.module_utils.verification import (
    checks_verdict,
    verify_checks,
)

CATEGORIES = [*FINDING_IDS, "unknown", "something_new"]
NAMES = ["aws", "vault", "env", "config"]
role_facts = st.fixed_dictionaries({
    "exists": st.booleans(), "can_login": st.booleans(), "expired": st.booleans(),
    "password_set": st.booleans(), "password_hash": st.sampled_from(["scram", "md5", None]),
    "conn_limit": st.sampled_from([-1, 0, 5]), "connections": st.integers(0, 6),
    "rds_iam_member": st.booleans(),
    "valid_until": st.sampled_from([None, "infinity", "2026-12-02 10:00:00+00"])})
credential = st.fixed_dictionaries({}, optional={
    "username": st.sampled_from(["app_user", "app_usr", "app_user_clone", None]),
    "host": st.sampled_from(["db", "other", None]), "port": st.sampled_from([5432, 6432]),
    "dbname": st.sampled_from(["appdb", "other"]), "auth": st.sampled_from(["iam", "password"])})


@st.composite
def fact_sets(draw):
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    stores, probes = [], []
    for name in names:
        readable = draw(st.booleans())
        store = {"store": name, "readable": readable,
                 "type": draw(st.sampled_from(["aws_secretsmanager", "vault_kv2", "file"])),
                 "stages": draw(st.sampled_from([["AWSCURRENT"], ["AWSCURRENT", "AWSPENDING"]]))}
        if readable:
            store.update(exists=draw(st.booleans()), placeholder=draw(st.booleans()),
                         password_fingerprint=draw(st.sampled_from(["f1", "f2", None])),
                         credential=draw(credential))
        else:
            store["error"] = draw(st.sampled_from(["cannot reach Vault", "percent-encoded",
                                                   "denied"]))
        stores.append(store)
        if draw(st.booleans()):
            ok = draw(st.booleans())
            probe = {"store": name, "ok": ok,
                     "category": "ok" if ok else draw(st.sampled_from(CATEGORIES)),
                     "sqlstate": None, "message": "m"}
            if not ok and draw(st.booleans()):
                probe["pending"] = {"ok": draw(st.booleans()), "category": "ok"}
            if not ok and draw(st.booleans()):
                probe["whitespace"] = {"ends": ["trailing"], "characters": ["newline"],
                                       "stripped_matches": draw(st.booleans())}
            probes.append(probe)
    return {"target": {"host": "db", "port": 5432, "dbname": "appdb", "role": "app_user",
                       "auth": draw(st.sampled_from(["password", "iam"])),
                       "sslmode": draw(st.sampled_from(["verify-full", "disable"]))},
            **draw(st.sampled_from([
                {"admin_error": None, "admin_error_category": None},
                {"admin_error": "server_unreachable: refused",
                 "admin_error_category": "server_unreachable"}])),
            "server": {"password_encryption": "scram-sha-256"},
            "role": draw(st.one_of(st.none(), role_facts)),
            "stores": stores, "probes": probes,
            "iam": draw(st.one_of(st.none(), st.fixed_dictionaries({
                "iam_enabled": st.booleans(),
                "connect_allowed": st.sampled_from([True, False, None]),
                "decision": st.sampled_from(["allowed", "denied", "undecided"])}))),
            "logs": None, "gathered_at": "2026-12-01T10:00:00+00:00"}


@settings(max_examples=400, deadline=None)
@given(fact_sets())
def test_a_failed_probe_or_a_store_without_credential_is_never_healthy(facts):
    found = diagnose(facts)
    failed = [probe for probe in facts["probes"] if not probe["ok"]]
    empty = [store for store in facts["stores"]
             if not store["readable"] or not store.get("exists", True)]
    if failed or empty:
        assert verdict(found) != "healthy", (failed, empty, found)


@settings(max_examples=400, deadline=None)
@given(fact_sets())
def test_every_failed_probe_is_explained_by_some_finding(facts):
    found = diagnose(facts)
    for probe in facts["probes"]:
        if not probe["ok"]:
            assert _explains(found, probe["store"], probe["category"]), (probe, found)


@settings(max_examples=200, deadline=None)
@given(fact_sets())
def test_every_finding_is_a_catalogue_id(facts):
    for finding in diagnose(facts):
        assert finding["id"] in FINDING_IDS
        assert finding["severity"] in ("critical", "warning", "info")


@settings(max_examples=400, deadline=None)
@given(fact_sets())
def test_verify_is_never_healthy_while_a_store_gives_no_working_login(facts):
    logged_in = {probe["store"] for probe in facts["probes"] if probe["ok"]}
    failing = [store["store"] for store in facts["stores"]
               if not store["readable"] or not store.get("exists", True)
               or store["store"] not in logged_in]
    checks = verify_checks(facts)
    if failing:
        assert checks_verdict(checks) != "healthy", (failing, checks)
        for name in failing:
            assert not next(check for check in checks if check["check"] == f"login:{name}")["ok"] \
                or not next(check for check in checks
                            if check["check"] == f"store_readable:{name}")["ok"]


def test_verify_with_no_store_proves_nothing():
    facts = {"target": {"role": "app_user"}, "stores": [], "probes": [],
             "role": {"exists": True, "can_login": True}}
    assert checks_verdict(verify_checks(facts)) == "broken"


# -- write-only stores (a `command` store with write_only: true) --------------------------
# The rule: a write-only store yields no credential by design.  It is out of the read and
# probe set (facts carry it as {"write_only": true}), the invariant holds for the other
# stores, each write-only store is listed as "write-only, not checked" (an info finding, an
# info check), and the verdict is never healthy on write-only stores alone.
def _blind(name: str) -> dict:
    return {"store": name, "type": "command", "write_only": True, "checked": False,
            "status": "write-only, not checked"}


@st.composite
def with_write_only(draw):
    facts = draw(fact_sets())
    names = draw(st.lists(st.sampled_from(["gh", "k8s"]), min_size=1, max_size=2, unique=True))
    stores = [*facts["stores"], *(_blind(name) for name in names)]
    if draw(st.booleans()):
        stores = [_blind(name) for name in names]   # nothing but write-only stores
        facts = {**facts, "probes": []}
    return {**facts, "stores": draw(st.permutations(stores))}


def _without_write_only(facts: dict) -> dict:
    return {**facts, "stores": [s for s in facts["stores"] if not s.get("write_only")]}


def _not_checked(found: list[dict]) -> set:
    return {f["evidence"]["store"] for f in found
            if f["id"] == "store_unreadable" and f["severity"] == "info"
            and f["evidence"].get("status") == "write-only, not checked"}


@settings(max_examples=300, deadline=None)
@given(with_write_only())
def test_write_only_stores_are_listed_not_checked_and_never_make_healthy(facts):
    found = diagnose(facts)
    blind = {s["store"] for s in facts["stores"] if s.get("write_only")}
    assert _not_checked(found) == blind
    readable = _without_write_only(facts)
    if not readable["stores"]:
        assert verdict(found) != "healthy", found
    else:
        # the other stores decide, exactly as without the write-only ones
        assert verdict(found) == verdict(diagnose(readable))
    for probe in facts["probes"]:
        if not probe["ok"]:
            assert _explains(found, probe["store"], probe["category"]), (probe, found)


@settings(max_examples=300, deadline=None)
@given(with_write_only())
def test_verify_lists_write_only_stores_and_is_never_healthy_on_them_alone(facts):
    checks = verify_checks(facts)
    blind = {s["store"] for s in facts["stores"] if s.get("write_only")}
    listed = {c["check"].split(":", 1)[1] for c in checks if c["check"].startswith("write_only:")}
    assert listed == blind
    assert all(c["severity"] == "info" and c["detail"] == "write-only, not checked"
               for c in checks if c["check"].startswith("write_only:"))
    assert not any(c["check"] in {f"store_readable:{n}" for n in blind} for c in checks)
    readable = _without_write_only(facts)
    if not readable["stores"]:
        assert checks_verdict(checks) == "broken", checks
    else:
        assert checks_verdict(checks) == checks_verdict(verify_checks(readable))


def test_a_healthy_store_beside_a_write_only_one_is_healthy():
    facts = {"target": {"host": "db", "port": 5432, "dbname": "appdb", "role": "app_user",
                        "auth": "password", "sslmode": "verify-full"},
             "admin_error": None, "admin_error_category": None,
             "server": {"password_encryption": "scram-sha-256"},
             "role": {"exists": True, "can_login": True, "expired": False, "password_set": True,
                      "password_hash": "scram", "conn_limit": -1, "connections": 0,
                      "rds_iam_member": False, "valid_until": None},
             "stores": [{"store": "aws", "readable": True, "exists": True, "placeholder": False,
                         "type": "aws_secretsmanager", "stages": ["AWSCURRENT"],
                         "password_fingerprint": "f1", "credential": {"username": "app_user"}},
                        _blind("gh")],
             "probes": [{"store": "aws", "ok": True, "category": "ok", "sqlstate": None,
                         "message": ""}],
             "iam": None, "logs": None, "gathered_at": "2026-12-01T10:00:00+00:00"}
    assert verdict(diagnose(facts)) == "healthy"
    assert checks_verdict(verify_checks(facts)) == "healthy"
    assert _not_checked(diagnose(facts)) == {"gh"}
