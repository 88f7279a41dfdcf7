# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: rds_targets
short_description: RDS and Aurora PostgreSQL roles as pgauth_targets hosts
version_added: 1.0.0
description:
  - Lists the RDS DB instances and (optionally) Aurora clusters of one or more regions, keeps
    the PostgreSQL ones that pass O(filters), and makes one inventory host per database and
    role, in group C(pgauth_targets), with the C(pgauth_target) and C(pgauth_stores)
    variables the collection's runbooks take.
  - "A role is found in two ways: the master user, when RDS manages its password
    (C(ManageMasterUserPassword): the C(MasterUserSecret) becomes the role's first store);
    and any secret (within O(secret_prefixes)) whose RDS-style JSON (C(username),
    C(password), C(host), C(port), C(dbname)) has C(host) equal to the instance endpoint or
    the cluster's writer endpoint (and C(port) equal, when given). A tag never suffices: a
    secret without C(host) is not matched, tagged or not. Several secrets of one role
    become several stores of one host."
  - "The master user gets only its RDS-managed secret unless O(master_extra_stores); a
    master user whose password RDS does not manage gets no host then."
  - "Store order: the RDS-managed secret first; then the other matching secrets of the
    role, oldest first (C(CreatedDate) from C(list_secrets); by name only between secrets
    of one creation time), so a newer secret cannot take the primary place by its name.
    When more than one such secret matches a role, a warning names them (names only):
    review them, the runbooks write every store."
  - "With O(cache) and the C(ansible.builtin.jsonfile) cache plugin, a cache directory or
    file not owned by the running user, or writable by group or others, is not read (a
    warning; AWS is asked and the cache is not written). With other cache plugins the
    cache's safety is the operator's. Cached host records that differ from what this
    plugin writes (unknown keys; a C(pgauth_target) host, port, sslmode or sslrootcert that
    the cached C(pgauth_rds) fields and O(connect) do not give) are dropped with a warning,
    and AWS is asked again."
  - Reading a secret's value is needed to see its C(host); the value is reduced to its
    address at once. No password is ever put into the inventory, its cache or a message;
    a store is a reference (C(secret_id) is the secret's ARN).
  - A secret whose value is not RDS-style JSON is skipped with a warning that names it.
    An AWS call that fails (access denied, endpoint unreachable) fails the source with
    an error naming the region and the call.
  - An instance that is a member of an Aurora cluster gets no host of its own; the
    cluster does (with O(include_clusters)).
  - Each host also has C(pgauth_rds) (C(kind), C(id), C(arn), C(engine),
    C(engine_version), C(status), C(region), C(tags), C(iam), C(master_username)) for
    O(keyed_groups), O(groups) and O(compose).
  - C(pgauth_target.auth) is C(iam) when the database has IAM authentication on and no
    store of the role holds a password; otherwise C(password).
author:
  - credops maintainers (@credops)
requirements:
  - boto3
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - credops.pgauth.plugin_connection.AWS
options:
  plugin:
    description: The name of this plugin; the inventory source file must set it.
    required: true
    type: str
    choices:
      - credops.pgauth.rds_targets
  regions:
    description:
      - The regions to list. Empty means the one region of O(region) (or E(AWS_REGION),
        E(AWS_DEFAULT_REGION), the profile).
    type: list
    elements: str
    default: []
  filters:
    description:
      - Which databases get hosts.
    type: dict
    default: {}
    suboptions:
      engine:
        description: The engines to keep.
        type: list
        elements: str
        default: [postgres, aurora-postgresql]
      tags:
        description:
          - Tags the database must carry, each with the value given (a list - any of
            them; C(*) or null - any value).
        type: dict
  include_clusters:
    description: List Aurora clusters too (one host per role on the writer endpoint).
    type: bool
    default: true
  secret_prefixes:
    description:
      - Read only the secrets whose name starts with one of these (tagged ones too; a tag
        does not bypass this). Empty reads every secret of the region except those RDS
        owns; set it to bound the calls, the C(secretsmanager:GetSecretValue) permission,
        and who can add a store (whoever may create a secret under these names).
    type: list
    elements: str
    default: []
  secret_tag:
    description:
      - A secret with this tag must hold the identifier of the DB instance or cluster it
        addresses; one whose tag names another database is not matched. The tag never
        matches a secret by itself - its C(host) (and C(port), when given) must be the
        database's endpoint. Empty turns the check off.
    type: str
    default: "pgauth:db-identifier"
  master_extra_stores:
    description:
      - Give the master user's host, after its RDS-managed secret, the other secrets that
        match it (and a host to a master user whose password RDS does not manage). Off,
        the master user's only store is C(MasterUserSecret), so nobody who can create a
        secret can make rotate write the master password into it.
    type: bool
    default: false
  hostname_template:
    description:
      - "The inventory hostname, from C({name}) fields: C(db_identifier), C(role),
        C(region), C(engine), C(kind) (instance or cluster), C(dbname). It is not Jinja
        (ansible-core would render that before the plugin sees it); use O(compose) with
        C(ansible_host) for more. Lowercased; any run of characters other than a-z,
        0-9, C(_), C(.) and C(-) becomes C(_)."
    type: str
    default: "{db_identifier}-{role}"
  connect:
    description: How the runbooks connect (C(pgauth_target) fields).
    type: dict
    default: {}
    suboptions:
      sslmode:
        description: C(pgauth_target.sslmode).
        type: str
        default: verify-full
      sslrootcert:
        description:
          - C(pgauth_target.sslrootcert), the CA bundle for verify-full (for RDS, the
            global bundle from AWS).
        type: path
      dbname:
        description: The database when neither the secret nor RDS names one.
        type: str
        default: postgres
"""

EXAMPLES = r"""
# prod.rds_targets.yml
plugin: credops.pgauth.rds_targets
regions: [eu-west-1, us-east-1]
filters:
  tags:
    team: payments
secret_prefixes: [prod/db/]
connect:
  sslrootcert: /etc/ssl/rds-global-bundle.pem
keyed_groups:
  - key: pgauth_rds.engine
    prefix: engine
  - key: pgauth_rds.region
    prefix: region
  - key: pgauth_rds.tags.env | default('none')
    prefix: env
groups:
  iam_users: pgauth_target.auth == 'iam'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/credops.pgauth/rds_targets
cache_timeout: 3600
"""

import json  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402

from ansible_collections.credops.pgauth.plugins.module_utils.errors import (  # noqa: E402
    PgauthError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.inventory_rds import (  # noqa: E402
    validate_cached,
)

GROUP = "pgauth_targets"
_AWS_PARAMS = ("region", "profile", "endpoint_url", "access_key", "secret_key",
               "session_token", "aws_config", "insecure_endpoint_ok")
_SUFFIXES = (".rds_targets.yml", ".rds_targets.yaml")
_NAMES = ("rds_targets.yml", "rds_targets.yaml")
_JSONFILE = ("jsonfile", "ansible.builtin.jsonfile", "ansible.legacy.jsonfile")


def unsafe_cache_path(path: str, uid: int | None = None) -> str | None:
    """Why a cache directory or file may not be trusted (None: it may): it is not a
    directory / regular file, it is not owned by uid (the running user), or group or
    others may write it.  A path that does not exist is no reason."""
    uid = os.geteuid() if uid is None else uid
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"{path} cannot be examined ({err.strerror})"
    if stat.S_ISLNK(info.st_mode):
        try:
            info = os.stat(path)
        except OSError as err:
            return f"{path} is a symlink that cannot be followed ({err.strerror})"
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return f"{path} is neither a directory nor a regular file"
    if info.st_uid != uid:
        return f"{path} is owned by uid {info.st_uid}, not by the running user ({uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """RDS databases and their roles' secrets as pgauth_targets hosts."""

    NAME = "credops.pgauth.rds_targets"

    def verify_file(self, path):
        return super().verify_file(path) and (
            path.endswith(_SUFFIXES) or path.rsplit("/", 1)[-1] in _NAMES)

    def _settings(self) -> tuple[dict, dict]:
        params = {name: self.get_option(name) for name in _AWS_PARAMS}
        filters = dict(self.get_option("filters") or {})
        connect = {"sslmode": "verify-full", "dbname": "postgres",
                   **{k: v for k, v in (self.get_option("connect") or {}).items()
                      if v is not None}}
        options = {"regions": list(self.get_option("regions") or []),
                   "filters": filters,
                   "include_clusters": self.get_option("include_clusters"),
                   "secret_prefixes": list(self.get_option("secret_prefixes") or []),
                   "secret_tag": self.get_option("secret_tag") or "",
                   "master_extra_stores": bool(self.get_option("master_extra_stores")),
                   "hostname_template": self.get_option("hostname_template"),
                   "connect": connect}
        return params, options

    def _fetch(self) -> list[dict]:
        # imported here: an inventory run that never uses this plugin loads no boto3
        from ansible_collections.credops.pgauth.plugins.module_utils import (
            inventory_rds_fetch,
        )

        params, options = self._settings()
        try:
            return inventory_rds_fetch.collect(params, options, self.display.warning)
        except PgauthError as err:
            raise AnsibleParserError(f"credops.pgauth.rds_targets: {err}") from None

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        hosts = None
        if self.get_option("cache"):
            problem = self._unsafe_cache(cache_key)
            if problem:
                self.display.warning(
                    f"rds_targets: the inventory cache is ignored and not written: {problem}; "
                    "make the cache directory the running user's, mode 0700")
                use_cache = update_cache = False
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                update_cache = True
            else:
                try:
                    # plain data: no Ansible type tag (a TrustedAsTemplate, say) a cache file
                    # may carry survives into the host variables
                    cached = json.loads(json.dumps(cached))
                except (TypeError, ValueError):
                    cached = None
                hosts, warnings = validate_cached(cached, self._settings()[1]["connect"])
                for warning in warnings:
                    self.display.warning(warning)
                if hosts is None or warnings:
                    hosts, update_cache = None, True  # ask AWS again, and rewrite the cache
        if hosts is None:
            hosts = self._fetch()
        if update_cache:
            # host records only: references to the stores, never a secret value
            self._cache[cache_key] = hosts
        self._populate(hosts)

    def _unsafe_cache(self, cache_key: str) -> str | None:
        """Why the jsonfile cache may not be read (its directory or this source's file is
        another user's, or writable by group or others); None when it may, or when another
        cache plugin is used (its safety is the operator's)."""
        if self.get_option("cache_plugin") not in _JSONFILE:
            return None
        directory = self.get_option("cache_connection")
        if not directory:
            return None
        directory = os.path.expanduser(os.path.expandvars(directory))
        problem = unsafe_cache_path(directory)
        if problem or not os.path.isdir(directory):
            return problem
        # this source's file: <cache_prefix>[s1_]<cache_key> (ansible-core 2.19 inserts a
        # key prefix of its own), so every entry that ends with the key is checked
        try:
            names = sorted(name for name in os.listdir(directory) if name.endswith(cache_key))
        except OSError as err:
            return f"{directory} cannot be listed ({err.strerror})"
        for name in names:
            problem = unsafe_cache_path(os.path.join(directory, name))
            if problem:
                return problem
        return None

    def _populate(self, hosts: list[dict]) -> None:
        strict = self.get_option("strict")
        self.inventory.add_group(GROUP)
        for host in hosts:
            name = host["name"]
            self.inventory.add_host(name, group=GROUP)
            for key, value in host["vars"].items():
                self.inventory.set_variable(name, key, value)
            hostvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            hostvars = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name,
                                              strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name,
                                           strict=strict)
