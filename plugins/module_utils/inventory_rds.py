# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rds_targets inventory's decisions, as pure functions: RDS instances and clusters (the
describe_db_instances / describe_db_clusters items) and what Secrets Manager holds for them
(list_secrets items and the parsed RDS-style JSON of their values) become inventory hosts,
one per database and role, with the pgauth_target and pgauth_stores variables.

Nothing here sees a password: a secret's value is reduced by rds_secret_fields to its
address (username, host, port, dbname) and whether it holds a password at all, before
anything else looks at it.  I/O lives in inventory_rds_fetch."""
from __future__ import annotations

import json
import re

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

POSTGRES_ENGINES = ("postgres", "aurora-postgresql")
DEFAULT_SECRET_TAG = "pgauth:db-identifier"
DEFAULT_HOSTNAME_TEMPLATE = "{db_identifier}-{role}"
# The names a hostname_template may use, as {name} (the whole of its language: not Jinja,
# which ansible-core would render, with no variables, before the plugin sees it).
TEMPLATE_NAMES = ("db_identifier", "role", "region", "engine", "kind", "dbname")
_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UNSAFE_HOST_CHARS = re.compile(r"[^a-z0-9_.-]+")
# Secrets that RDS owns (ManageMasterUserPassword) are found through MasterUserSecret; their
# names start with "rds!" and they carry no host.
_RDS_OWNED_PREFIX = "rds!"


class InventoryError(PgauthError):
    """The inventory source cannot be turned into hosts (a bad option, two hosts with one
    name); the message names the option or the databases."""


class BrokenSecret(PgauthError):
    """A secret's value is not the RDS-style JSON it should be; the message names the secret
    and never holds its value."""


def tags_of(item: dict) -> dict[str, str]:
    return {str(tag.get("Key")): str(tag.get("Value", "")) for tag in item.get("TagList")
            or item.get("Tags") or []}


def instance_record(item: dict, region: str) -> dict:
    """One describe_db_instances item, as the fields the inventory uses."""
    endpoint = item.get("Endpoint") or {}
    secret = item.get("MasterUserSecret") or {}
    return {"kind": "instance", "id": item.get("DBInstanceIdentifier"),
            "arn": item.get("DBInstanceArn"), "engine": item.get("Engine") or "",
            "engine_version": item.get("EngineVersion"), "status": item.get("DBInstanceStatus"),
            "host": endpoint.get("Address"), "port": endpoint.get("Port") or 5432,
            "dbname": item.get("DBName"), "master_username": item.get("MasterUsername"),
            "iam": bool(item.get("IAMDatabaseAuthenticationEnabled")),
            "master_secret_arn": secret.get("SecretArn"), "tags": tags_of(item),
            "region": region, "cluster": item.get("DBClusterIdentifier")}


def cluster_record(item: dict, region: str) -> dict:
    """One describe_db_clusters item, as the fields the inventory uses (the writer endpoint:
    the one a rotation must reach)."""
    secret = item.get("MasterUserSecret") or {}
    return {"kind": "cluster", "id": item.get("DBClusterIdentifier"),
            "arn": item.get("DBClusterArn"), "engine": item.get("Engine") or "",
            "engine_version": item.get("EngineVersion"), "status": item.get("Status"),
            "host": item.get("Endpoint"), "port": item.get("Port") or 5432,
            "dbname": item.get("DatabaseName"), "master_username": item.get("MasterUsername"),
            "iam": bool(item.get("IAMDatabaseAuthenticationEnabled")),
            "master_secret_arn": secret.get("SecretArn"), "tags": tags_of(item),
            "region": region, "cluster": None}


def matches(record: dict, filters: dict) -> bool:
    """Whether a database passes the filters: its engine is one of filters['engine'] and
    every tag of filters['tags'] has the value given (a list: any of them; None or '*':
    the tag is present)."""
    engines = filters.get("engine") or POSTGRES_ENGINES
    if record["engine"] not in engines:
        return False
    for key, wanted in (filters.get("tags") or {}).items():
        if key not in record["tags"]:
            return False
        if wanted in (None, "*"):
            continue
        allowed = [str(v) for v in wanted] if isinstance(wanted, list) else [str(wanted)]
        if record["tags"][key] not in allowed:
            return False
    return True


def databases(instances: list[dict], clusters: list[dict], region: str, filters: dict,
              include_clusters: bool) -> list[dict]:
    """The databases of one region that get hosts.  An instance that is a member of an
    Aurora cluster is left out: its roles and master user are the cluster's, reached
    through the cluster's writer endpoint."""
    found = [instance_record(item, region) for item in instances]
    found = [record for record in found if not record["cluster"] and record["host"]]
    if include_clusters:
        found += [cluster_record(item, region) for item in clusters]
    return [record for record in found if record["host"] and matches(record, filters)]


def wanted_secret(entry: dict, prefixes: list[str], secret_tag: str = "") -> bool:
    """Whether a list_secrets entry is worth reading: its name starts with one of the
    prefixes (no prefixes: every secret).  A tag does not bypass the prefixes: whoever may
    tag a secret is not thereby trusted to add a store to a database.  The secrets RDS owns
    are not read here (MasterUserSecret names them)."""
    del secret_tag  # kept in the signature: a tag no longer widens what is read
    name = str(entry.get("Name") or "")
    if name.startswith(_RDS_OWNED_PREFIX) or entry.get("OwningService") == "rds":
        return False
    return not prefixes or any(name.startswith(prefix) for prefix in prefixes)


def rds_secret_fields(name: str, secret_string: str | None) -> dict:
    """The address an RDS-style JSON secret holds (username, host, port, dbname) and whether
    it holds a password; the password itself is dropped here.  BrokenSecret names the
    secret, never its value."""
    if secret_string is None:
        raise BrokenSecret(f"secret {name!r} has no SecretString (a binary secret)")
    try:
        value = json.loads(secret_string)
    except ValueError:
        raise BrokenSecret(f"secret {name!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BrokenSecret(f"secret {name!r} holds JSON that is not an object")
    username = value.get("username")
    if not isinstance(username, str) or not username:
        raise BrokenSecret(f"secret {name!r} has no 'username' string")
    port = value.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise BrokenSecret(f"secret {name!r} has a 'port' that is not a number") from None
    host = value.get("host")
    dbname = value.get("dbname")
    return {"username": username, "host": host if isinstance(host, str) else None,
            "port": port, "dbname": dbname if isinstance(dbname, str) else None,
            "has_password": bool(value.get("password"))}


def _same_host(left, right) -> bool:
    return str(left or "").lower().rstrip(".") == str(right or "").lower().rstrip(".")


def _secret_for(secret: dict, record: dict, secret_tag: str) -> str | None:
    """How secret belongs to the database: 'tagged' or 'host' when its JSON addresses the
    endpoint (host, and the port when it gives one) -- 'tagged' when secret_tag also names
    the database's identifier --, None otherwise.  A tag alone never suffices (anyone who
    may tag a secret could otherwise make it a store of any role), a secret without a host
    is never matched, and a secret tagged with another database's identifier is not
    matched either (its tag and its host disagree)."""
    fields = secret["fields"]
    if not fields.get("host") or not _same_host(fields["host"], record["host"]) \
            or fields["port"] not in (None, int(record["port"])):
        return None
    tags = secret.get("tags") or {}
    if secret_tag and secret_tag in tags:
        return "tagged" if tags[secret_tag] == record["id"] else None
    return "host"


def _created_key(secret: dict) -> tuple:
    """Oldest first; a secret without a creation date after every dated one; then by name
    (a tie only: a name is the attacker's to choose, a creation date is not)."""
    created = secret.get("created")
    return (created is None, created if created is not None else 0.0, secret["name"])


def store_dict(name: str, arn: str, region: str) -> dict:
    """The pgauth store dict for a Secrets Manager secret (DESIGN §3): by ARN, in the
    secret's own region, RDS-style JSON."""
    return {"name": name, "type": "aws_secretsmanager", "secret_id": arn, "format": "json",
            "region": region}


def roles_of(record: dict, secrets: list[dict], secret_tag: str,
             master_extra_stores: bool = False,
             warnings: list[str] | None = None) -> dict[str, dict]:
    """{role: {"stores": [...], "dbname", "has_password"}} for one database.  The master
    user's managed secret comes first (the primary: RDS rotates it); the master user gets
    no other store unless master_extra_stores.  The other matching secrets follow, oldest
    first (an outsider's newer secret cannot become the primary by its name); when a role
    has more than one of them, a warning naming them (names only) goes to warnings."""
    roles: dict[str, dict] = {}

    def add(role: str, store: dict, dbname: str | None, has_password: bool) -> None:
        entry = roles.setdefault(role, {"stores": [], "dbname": None, "has_password": False})
        if any(known["secret_id"] == store["secret_id"] for known in entry["stores"]):
            return
        entry["stores"].append(store)
        entry["dbname"] = entry["dbname"] or dbname
        entry["has_password"] = entry["has_password"] or has_password

    if record["master_secret_arn"] and record["master_username"]:
        add(record["master_username"], store_dict(
            f"{record['id']}-master-managed", record["master_secret_arn"], record["region"]),
            None, True)
    master = record["master_username"]
    per_role: dict[str, list[dict]] = {}
    for secret in secrets:
        if _secret_for(secret, record, secret_tag) is None:
            continue
        role = secret["fields"]["username"]
        if master and role == master and not master_extra_stores:
            continue  # the master's stores: the RDS-managed secret only, unless opted in
        per_role.setdefault(role, []).append(secret)
    for role in sorted(per_role):
        found = sorted(per_role[role], key=_created_key)
        if len(found) > 1 and warnings is not None:
            warnings.append(
                f"rds_targets: role {role!r} of {record['id']} is in {len(found)} secrets, "
                "ordered oldest first: " + ", ".join(repr(s["name"]) for s in found)
                + "; review them (any of them becomes a store the runbooks write)")
        for secret in found:
            fields = secret["fields"]
            add(role, store_dict(secret["name"], secret["arn"], record["region"]),
                fields["dbname"], fields["has_password"])
    return roles


def render_hostname(template: str, values: dict) -> str:
    """template with each {name} replaced (TEMPLATE_NAMES only), lowercased, and every
    run of characters other than a-z 0-9 _ . - made one '_'."""
    def field(found: re.Match) -> str:
        name = found.group(1)
        if name not in TEMPLATE_NAMES:
            raise InventoryError(f"hostname_template uses {name!r}; it may use "
                                 + ", ".join(TEMPLATE_NAMES))
        return str(values.get(name) or "")

    rendered = _TEMPLATE_FIELD.sub(field, template)
    if "{" in rendered or "}" in rendered:
        raise InventoryError("hostname_template may hold only {name} fields (no Jinja), "
                             "with a name of " + ", ".join(TEMPLATE_NAMES))
    name = _UNSAFE_HOST_CHARS.sub("_", rendered.lower()).strip("_")
    if not name:
        raise InventoryError(f"hostname_template {template!r} renders an empty name")
    return name


def auth_for(record: dict, has_password: bool) -> str:
    """iam when the database has IAM authentication on and no store of the role holds a
    password (a secret that is only an address is the app's IAM configuration); otherwise
    password: a stored password is what the app sends, and diagnose names it when the role
    is in rds_iam (iam_role_blocks_password)."""
    return "iam" if record["iam"] and not has_password else "password"


def target_for(rds: dict, role: str, dbname: str, auth: str, connect: dict) -> dict:
    """pgauth_target of one host, from its pgauth_rds fields and the connect option."""
    target = {"host": rds["host"], "port": int(rds["port"]), "dbname": dbname,
              "role": role, "auth": auth,
              "sslmode": connect.get("sslmode") or "verify-full",
              f"rds_{rds['kind']}_id": rds["id"], "region": rds["region"]}
    if connect.get("sslrootcert"):
        target["sslrootcert"] = connect["sslrootcert"]
    return target


RDS_KEYS = ("kind", "id", "arn", "engine", "engine_version", "status", "region", "tags",
            "iam", "host", "port", "master_username")
STORE_KEYS = ("name", "type", "secret_id", "format", "region")


def build_hosts(records: list[dict], secrets: list[dict], connect: dict, secret_tag: str,
                template: str, master_extra_stores: bool = False,
                warnings: list[str] | None = None) -> list[dict]:
    """The inventory hosts: one per database and role, {"name", "vars"} sorted by name;
    InventoryError when two render to one name."""
    hosts: dict[str, dict] = {}
    for record in records:
        for role, entry in roles_of(record, secrets, secret_tag, master_extra_stores,
                                    warnings).items():
            dbname = entry["dbname"] or record["dbname"] or connect.get("dbname") or "postgres"
            values = {"db_identifier": record["id"], "role": role, "region": record["region"],
                      "engine": record["engine"], "kind": record["kind"], "dbname": dbname}
            name = render_hostname(template, values)
            if name in hosts:
                raise InventoryError(
                    f"two hosts are named {name!r} ({hosts[name]['vars']['pgauth_rds']['arn']} "
                    f"and {record['arn']}, role {role}): put more of {TEMPLATE_NAMES} into "
                    "hostname_template, e.g. {region}")
            rds = {key: record[key] for key in RDS_KEYS}
            rds["port"] = int(rds["port"])
            target = target_for(rds, role, dbname, auth_for(record, entry["has_password"]),
                                connect)
            hosts[name] = {"name": name, "vars": {"pgauth_target": target,
                                                  "pgauth_stores": entry["stores"],
                                                  "pgauth_rds": rds}}
    return [hosts[name] for name in sorted(hosts)]


def merge_regions(per_region: list[list[dict]]) -> list[dict]:
    """The hosts of every region, sorted by name; InventoryError when one name is in two."""
    seen: dict[str, str] = {}
    for hosts in per_region:
        for host in hosts:
            region = host["vars"]["pgauth_target"]["region"]
            if host["name"] in seen:
                raise InventoryError(
                    f"host {host['name']!r} is found in {seen[host['name']]} and {region}: put "
                    "{region} into hostname_template")
            seen[host["name"]] = region
    return sorted((host for hosts in per_region for host in hosts), key=lambda h: h["name"])


def _cached_problem(host, connect: dict) -> str | None:
    """Why one cached host record is not one this plugin writes (None: it is)."""
    if not isinstance(host, dict) or set(host) != {"name", "vars"} \
            or not isinstance(host["name"], str) or not isinstance(host["vars"], dict):
        return "not a host record"
    variables = host["vars"]
    if set(variables) != {"pgauth_target", "pgauth_stores", "pgauth_rds"}:
        return "unknown or missing variables"
    rds, target, stores = (variables["pgauth_rds"], variables["pgauth_target"],
                           variables["pgauth_stores"])
    if not isinstance(rds, dict) or set(rds) != set(RDS_KEYS) \
            or rds["kind"] not in ("instance", "cluster") \
            or not all(isinstance(rds[k], str) and rds[k] for k in ("id", "host", "region")) \
            or not isinstance(rds["port"], int) or isinstance(rds["port"], bool) \
            or not isinstance(rds["iam"], bool):
        return "pgauth_rds is not what the plugin writes"
    if not isinstance(target, dict) or not isinstance(target.get("role"), str) \
            or not isinstance(target.get("dbname"), str) \
            or target.get("auth") not in ("password", "iam") \
            or (target.get("auth") == "iam" and not rds["iam"]):
        return "pgauth_target is not what the plugin writes"
    if target != target_for(rds, target["role"], target["dbname"], target["auth"], connect):
        return ("pgauth_target (host, port, sslmode, sslrootcert, ids) differs from what the "
                "cached RDS fields and the connect option give")
    if not isinstance(stores, list) or not stores or not all(
            isinstance(store, dict) and set(store) == set(STORE_KEYS)
            and store["type"] == "aws_secretsmanager" and store["format"] == "json"
            and store["region"] == rds["region"]
            and all(isinstance(store[k], str) for k in ("name", "secret_id"))
            for store in stores):
        return "pgauth_stores is not what the plugin writes"
    return None


def validate_cached(hosts, connect: dict) -> tuple[list[dict] | None, list[str]]:
    """The cached host records that are exactly what build_hosts writes for this connect
    option, and a warning for each one dropped (naming the record, never its values).
    None (re-query AWS) when the cache is not a list of records at all."""
    if not isinstance(hosts, list):
        return None, [("rds_targets: the inventory cache does not hold host records; "
                       "it is ignored and AWS is asked again")]
    kept, warnings = [], []
    for index, host in enumerate(hosts):
        problem = _cached_problem(host, connect)
        if problem is None:
            kept.append(host)
            continue
        name = host.get("name") if isinstance(host, dict) else None
        label = repr(name[:80]) if isinstance(name, str) else f"#{index}"
        warnings.append(f"rds_targets: cached host {label} dropped: {problem}")
    return kept, warnings
