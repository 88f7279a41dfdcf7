# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's pure decisions: is a candidate a copy of the role's credential (current or
stale), which found copy is the primary, and the store names of vars.yml.

The rule (docs/discover.md).  A candidate's address *contradicts* the target when it names
another user, host, port or dbname (a part it does not name contradicts nothing):

- current: the password verifies against the role's stored verifier (or, where that
  verifier is unreadable, a login with it succeeded) and the address does not contradict
  the target;
- shared: the password verifies but the address names another user, host, port or db: the
  same value serves someone else; listed for review, never in vars.yml (a rotation would
  write the role's password into a store that belongs to another);
- stale: the password does not verify, the address names the role, names the target's host
  explicitly (a missing host is not enough), and its port and dbname are the target's or
  absent;
- unknown: the address names the role and does not contradict the target, but the password
  could not be checked, or it does not verify and the host is not named;
- unrelated: anything else.  Never listed, only counted.

Only current and stale copies go to vars.yml.
"""
from __future__ import annotations

CURRENT, STALE, SHARED, UNKNOWN, UNRELATED = ("current", "stale", "shared", "unknown",
                                              "unrelated")
LISTED = (CURRENT, STALE)  # the statuses vars.yml holds

# the primary holds pending versions during a rotation: a store type that has a pending
# stage of its own comes first (DESIGN §3), Secrets Manager before Vault
PRIMARY_RANK = {"aws_secretsmanager": 0, "vault_kv2": 1, "vault_kv1": 2, "aws_ssm": 3}


def _same_host(left: str | None, right: str | None) -> bool:
    # host names are case-insensitive; nothing else is folded (no DNS: that would be I/O)
    return (left or "").strip().lower() == (right or "").strip().lower()


def contradicts(candidate: dict, target: dict) -> bool:
    """The candidate names another user, host, port or dbname than the target's.
    candidate and target are {username|role, host, port, dbname} dicts."""
    if candidate.get("username") and candidate["username"] != target.get("role"):
        return True
    if candidate.get("host") and not _same_host(candidate["host"], target.get("host")):
        return True
    if candidate.get("port") and str(candidate["port"]).strip() != \
            str(target.get("port") or 5432):
        return True
    return bool(candidate.get("dbname") and target.get("dbname")
                and candidate["dbname"] != target["dbname"])


def address_matches(candidate: dict, target: dict) -> bool:
    """candidate names the role and contradicts nothing of the target."""
    return bool(candidate.get("username")) and not contradicts(candidate, target)


def names_target(candidate: dict, target: dict) -> bool:
    """candidate names the role AND the target's host explicitly (port, dbname equal or
    absent): the only candidates that may be stale, or whose password may be sent to the
    target in a login (a host-less copy may belong to staging)."""
    return bool(candidate.get("host")) and address_matches(candidate, target)


def classify(candidate: dict, target: dict, verified: bool | None) -> tuple[str, str | None]:
    """(status, match): status one of current, shared, stale, unknown, unrelated; match one
    of address, value, both, or None for unrelated.  verified is the password check's
    result: True, False, or None when it was not made (no password, no verifier, no login)."""
    if not candidate.get("has_password"):
        return UNRELATED, None
    address = address_matches(candidate, target)
    if verified is True:
        if contradicts(candidate, target):
            return SHARED, "value"
        return CURRENT, "both" if address else "value"
    if not address:
        return UNRELATED, None
    if verified is False and names_target(candidate, target):
        return STALE, "address"
    return UNKNOWN, "address"


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
