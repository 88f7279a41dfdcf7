# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's pure decisions: is a candidate a copy of the role's credential (current or
stale), which found copy is the primary, and the store names of vars.yml.

The rule (docs/discover.md):

- current: the candidate's password verifies against the role's stored verifier (or, where
  that verifier is unreadable, a login with it succeeded);
- stale: the candidate's address matches the target (username equal to the role, and host,
  port and dbname equal to the target's or absent) and it holds a password that does not
  verify;
- unknown: the address matches and the password could not be checked (no verifier and no
  login was allowed, or the login failed for another reason than the password);
- unrelated: anything else.  Never listed, only counted.
"""
from __future__ import annotations

CURRENT, STALE, UNKNOWN, UNRELATED = "current", "stale", "unknown", "unrelated"

# the primary holds pending versions during a rotation: a store type that has a pending
# stage of its own comes first (DESIGN §3), Secrets Manager before Vault
PRIMARY_RANK = {"aws_secretsmanager": 0, "vault_kv2": 1, "vault_kv1": 2, "aws_ssm": 3}


def _same_host(left: str | None, right: str | None) -> bool:
    # host names are case-insensitive; nothing else is folded (no DNS: that would be I/O)
    return (left or "").strip().lower() == (right or "").strip().lower()


def address_matches(candidate: dict, target: dict) -> bool:
    """candidate names the role and, where it names them, the target's host, port and dbname.
    candidate and target are {username|role, host, port, dbname} dicts."""
    if not candidate.get("username") or candidate["username"] != target.get("role"):
        return False
    if candidate.get("host") and not _same_host(candidate["host"], target.get("host")):
        return False
    if candidate.get("port") and int(candidate["port"]) != int(target.get("port") or 5432):
        return False
    return not (candidate.get("dbname") and target.get("dbname")
                and candidate["dbname"] != target["dbname"])


def classify(candidate: dict, target: dict, verified: bool | None) -> tuple[str, str | None]:
    """(status, match): status one of current, stale, unknown, unrelated; match one of
    address, value, both, or None for unrelated.  verified is the password check's result:
    True, False, or None when it was not made (no password, no verifier, no login)."""
    address = address_matches(candidate, target)
    if verified is True and candidate.get("has_password"):
        return CURRENT, "both" if address else "value"
    if not address or not candidate.get("has_password"):
        return UNRELATED, None
    return (STALE if verified is False else UNKNOWN), "address"


def primary_order(found: list[dict]) -> list[dict]:
    """The found copies, primary first: current copies before stale ones, then by store type
    (PRIMARY_RANK, the rest after), ties by store name."""
    def key(item: dict) -> tuple:
        store = item["store"]
        return (item["status"] != CURRENT, PRIMARY_RANK.get(store.get("type"), 9),
                store.get("name") or "")
    return sorted(found, key=key)


def unique_name(base: str, taken: set[str]) -> str:
    """A store name not yet used in this run (names label findings and must be unique)."""
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name
