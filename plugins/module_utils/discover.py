# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's engine: every scope listed into candidate stores (discover_aws, discover_vault,
discover_files), each candidate read through Store, its password checked against the role,
and each classified (discover_classify).  Read-only; no value ever leaves this module: the
result names stores, never what they hold.

The password check (``method``):

- ``verifier``: the role's SCRAM (or md5) verifier is read from pg_authid with the admin
  connection and each candidate's password is checked against it locally: no login, any
  number of candidates, and a value from an unrelated secret never leaves this host;
- ``login``: where pg_authid is unreadable (an RDS master user), one login per candidate,
  at most ``login_rate`` per second, and only for candidates that name the role AND the
  target's host explicitly (DESIGN §7: a credential goes only to the endpoint it belongs
  to; a host-less copy may be staging's);
- ``none``: the verifier is unreadable and logins are off: address matches are ``unknown``.
"""
from __future__ import annotations

import math
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.credops.pgauth.plugins.module_utils import discover_classify as dc
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError
from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import argument_spec
from ansible_collections.credops.pgauth.plugins.module_utils.pg import admin_connect, probe
from ansible_collections.credops.pgauth.plugins.module_utils.scram import (
    MAX_ITERATIONS,
    hash_type,
    parse_verifier,
    verify_md5,
    verify_password,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store, StoreError

SCOPE_TYPES = ("aws_secretsmanager", "aws_ssm", "aws_ecs_task_definition",
               "aws_lambda_environment", "vault_kv2", "vault_kv1", "file")
_LIST = {"type": "list", "elements": "str"}
# a scope dict (registry-shaped, so the role spec documents the same keys)
SCOPE_KEYS = {
    "type": {"type": "str", "required": True, "choices": list(SCOPE_TYPES),
             "description": ["Where to look."]},
    "name": {"type": "str", "description": ["A label for the progress line and the report."]},
    "name_prefixes": {**_LIST, "description": ["aws_secretsmanager: secret name prefixes."]},
    "tags": {"type": "dict", "description": ["aws_secretsmanager: tags a secret must have."]},
    "paths": {**_LIST, "description": ["aws_ssm: parameter paths, listed recursively."]},
    "family_prefixes": {**_LIST, "description": [
        "aws_ecs_task_definition: task-definition family prefixes."]},
    "clusters": {**_LIST, "description": [
        ("aws_ecs_task_definition: clusters whose services using a found family become "
         "aws_ecs_service consumers.")]},
    "function_prefixes": {**_LIST, "description": [
        "aws_lambda_environment: function name prefixes."]},
    "mount_point": {"type": "str", "description": ["vault_kv2/vault_kv1: the KV mount."]},
    "path": {"type": "str", "default": "", "description": ["vault: the subtree to list."]},
    "max_depth": {"type": "int", "default": 5, "description": [
        "vault: how many levels below path are listed."]},
    "globs": {**_LIST, "description": ["file: file globs (** recursive)."]},
    "max_candidates": {"type": "int", "default": 500, "description": [
        "At most this many values are looked at; the rest of the scope is left, with a warning."]},
    "timeout": {"type": "float", "default": 60, "description": [
        "Seconds for the scope; past it the scope ends with a warning, the run goes on."]},
}
SCOPE_SPEC = argument_spec(SCOPE_KEYS)
MASK_MIN = 8
TEMPLATE_MARKERS = ("{{", "{%", "{#")


def holds_template(value) -> bool:
    """Whether a found store dict (keys and values, nested) holds a Jinja marker: such a
    candidate is never listed, whatever vars.yml's quoting (finding: template injection)."""
    if isinstance(value, dict):
        return any(holds_template(key) or holds_template(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_template(item) for item in value)
    return isinstance(value, str) and any(marker in value for marker in TEMPLATE_MARKERS)


class DiscoverError(PgauthError):
    """discover cannot run at all (bad scopes, the role's state unreadable)."""


class ScopeBudget(Exception):
    """A scope's count or time bound is reached: it ends there, with a warning."""


def validated_scopes(items: list) -> list[dict]:
    validator = ArgumentSpecValidator(SCOPE_SPEC)
    scopes = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise DiscoverError(f"scopes[{index}]: a scope must be a dict")
        checked = validator.validate(item)
        if checked.error_messages:
            raise DiscoverError(f"scopes[{item.get('name') or index}]: "
                                f"{'; '.join(checked.error_messages)}")
        scopes.append(checked.validated_parameters)
    return scopes


def _enumerator(kind: str):
    # imported when used: a file-only run needs neither boto3 nor hvac
    if kind == "file":
        from ansible_collections.credops.pgauth.plugins.module_utils.discover_files import (
            enumerate_files,
        )
        return enumerate_files
    if kind.startswith("vault"):
        from ansible_collections.credops.pgauth.plugins.module_utils.discover_vault import (
            vault_kv,
        )
        return vault_kv
    from ansible_collections.credops.pgauth.plugins.module_utils import discover_aws
    return {"aws_secretsmanager": discover_aws.secretsmanager, "aws_ssm": discover_aws.ssm,
            "aws_ecs_task_definition": discover_aws.ecs_task_definitions,
            "aws_lambda_environment": discover_aws.lambda_functions}[kind]


class ScopeRun:
    """One scope's bounds and counts; the enumerators call tick() per value they look at."""

    def __init__(self, index: int, scope: dict, clock=time.monotonic):
        self.scope, self.clock = scope, clock
        self.label = f"scope {index + 1} ({scope.get('name') or scope['type']})"
        self.started = clock()
        self.deadline = self.started + float(scope["timeout"])
        self.looked = 0
        self.counts = {status: 0 for status in (dc.CURRENT, dc.STALE, dc.SHARED, dc.UNKNOWN,
                                                dc.UNRELATED)}
        self.skipped: list[str] = []
        self.warnings: list[str] = []
        self.error: str | None = None

    def check_time(self) -> None:
        """The time bound alone (between items that are not values: files, listings)."""
        if self.clock() > self.deadline:
            raise ScopeBudget(f"{self.label}: timeout {self.scope['timeout']}s reached after "
                              f"{self.looked} values; the rest was not looked at")

    def tick(self) -> None:
        """One more value looked at: both bounds."""
        self.check_time()
        if self.looked >= self.scope["max_candidates"]:
            raise ScopeBudget(f"{self.label}: max_candidates {self.scope['max_candidates']} "
                              "reached; the rest was not looked at")
        self.looked += 1

    def left(self) -> float:
        return max(0.0, self.deadline - self.clock())

    def bounded(self, params: dict) -> dict:
        """params whose AWS and Vault calls end within the scope's time left: AWS clients
        with 2 attempts and connect/read timeouts no longer than that, hvac's timeout too
        (a hanging endpoint would otherwise hold the scope far past its deadline)."""
        left = max(1, math.ceil(self.left()))  # whole seconds: few distinct cached clients
        user = dict(params.get("aws_config") or {})
        retries = dict(user.get("retries") or {})
        retries["max_attempts"] = min(int(retries.get("max_attempts") or 2), 2)
        aws_config = {**user, "retries": retries,
                      "connect_timeout": min(float(user.get("connect_timeout") or 10), left),
                      "read_timeout": min(float(user.get("read_timeout") or 30), left)}
        return {**params, "aws_config": aws_config,
                "vault_timeout": min(int(params.get("vault_timeout") or 10), left)}

    def stop(self, why: str) -> None:
        """End the scope on another bound than time or count (the file walk's entries)."""
        raise ScopeBudget(f"{self.label}: {why} after {self.looked} values; the rest was not "
                          "looked at")

    def skip(self, reason: str) -> None:
        self.skipped.append(reason)

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.label}: {message}")

    def progress(self) -> str:
        seconds = self.clock() - self.started
        parts = ", ".join(f"{count} {status}" for status, count in self.counts.items())
        line = (f"{self.label}: {self.looked} values looked at, {parts}, "
                f"{len(self.skipped)} skipped in {seconds:.1f}s")
        return line + (f" (error: {self.error})" if self.error else "")


class PasswordCheck:
    """Whether a candidate's password is the role's (see the module docstring: method)."""

    def __init__(self, params: dict, target: dict, login_rate: float, login_fallback: bool):
        self.params, self.target = params, target
        self.interval = 1.0 / login_rate if login_rate > 0 else 0.0
        self.last_login = 0.0
        self.logins = 0
        self._seen: dict[str, bool | None] = {}  # password -> result, this run only
        self.stored, self.method = self._read_verifier(login_fallback)

    def _read_verifier(self, login_fallback: bool) -> tuple[str | None, str]:
        conn = admin_connect(self.params)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                        (self.target["role"],))
            if cur.fetchone() is None:
                raise DiscoverError(f"role {self.target['role']!r} does not exist on the "
                                    "target: nothing to compare candidates with")
            cur.execute("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')")
            if cur.fetchone()[0]:
                cur.execute("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s",
                            (self.target["role"],))
                return cur.fetchone()[0], "verifier"
        finally:
            conn.close()
        return None, "login" if login_fallback else "none"

    def _login(self, password: str) -> bool | None:
        wait = self.last_login + self.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.last_login = time.monotonic()
        self.logins += 1
        params = {**self.params, "login_host": self.target["host"],
                  "login_port": self.target.get("port") or 5432,
                  "login_db": self.target.get("dbname") or self.params.get("login_db"),
                  "login_unix_socket": None, "login_iam": False}
        result = probe(params, self.target["role"], password)
        if result.ok or result.authenticated:
            return True
        return False if result.category == "store_password_mismatch" else None

    def check(self, password: str | None, address: bool) -> bool | None:
        if not password:
            return None
        if self.method == "verifier":
            kind = hash_type(self.stored)
            if kind == "scram":
                parsed = parse_verifier(self.stored)
                if parsed is None or parsed.iterations > MAX_ITERATIONS:
                    return None  # unknown: the role's owner sets the cost, not discover
                return verify_password(password, self.stored)
            if kind == "md5":
                return verify_md5(password, self.target["role"], self.stored)
            return False  # no password set: no candidate is current
        if self.method != "login" or not address:
            return None  # never sent to the target: it may belong elsewhere
        if password not in self._seen:
            self._seen[password] = self._login(password)
        return self._seen[password]


def _base_name(spec: dict) -> str:
    kind = spec["type"]
    if kind == "aws_secretsmanager":
        return f"sm:{spec['secret_id']}"
    if kind == "aws_ssm":
        return f"ssm:{spec['parameter']}"
    if kind == "aws_ecs_task_definition":
        return f"ecs:{spec['family']}/{spec['container']}/{spec['variable']}"
    if kind == "aws_lambda_environment":
        return f"lambda:{spec['function']}/{spec['variable']}"
    if kind.startswith("vault"):
        return f"vault:{spec['mount_point']}/{spec['path']}" + (
            f"[{spec['key']}]" if spec.get("key") else "")
    where = spec.get("key") or ",".join((spec.get("keys") or {}).values())
    return f"file:{spec['path']}[{where}]"


def pgpass_address(spec: dict) -> dict:
    """A .pgpass line's address is its key (host:port:database:username; * is any), not
    part of the credential a pgpass store reads."""
    if spec.get("type") != "file" or spec.get("format") != "pgpass":
        return {}
    from ansible_collections.credops.pgauth.plugins.module_utils.file_pgpass import parse_key
    host, port, dbname, username = (None if field == "*" else field
                                    for field in parse_key(spec["key"]))
    return {"username": username, "host": host, "dbname": dbname,
            "port": int(port) if port and port.isdigit() else None}


class Discovery:
    """One discover run over the scopes (the module calls run())."""

    def __init__(self, params: dict, target: dict, scopes: list[dict], hide):
        self.params, self.target, self.scopes, self.hide = params, target, scopes, hide
        self.check = PasswordCheck(params, target, float(params.get("login_rate") or 0),
                                   bool(params.get("login_fallback", True)))
        self.taken: set[str] = set()
        self.found: list[dict] = []

    def _examine(self, spec: dict, run: ScopeRun) -> None:
        if holds_template(spec):  # the reason names the scope only: the name is hostile
            run.skip(f"{run.label}: a candidate whose name or path holds a template marker "
                     "({{, {% or {#) was not read or listed")
            return
        run.check_time()  # before each read: a slow store must not carry the scope past it
        spec = {"name": dc.unique_name(_base_name(spec), self.taken), **spec}
        try:
            cred, _stored = Store(spec, run.bounded(self.params)).read()
        except StoreError as err:  # the message names the store, never a value
            run.skip(str(err))
            return
        if cred is None:
            run.skip(f"store {spec['name']!r}: no value")
            return
        candidate = {"username": cred.username, "host": cred.host, "port": cred.port,
                     "dbname": cred.dbname, "has_password": bool(cred.password),
                     **pgpass_address(spec)}
        # a login is tried only with a copy that names the role at the target's host
        allowed = dc.names_target(candidate, self.target)
        status, match = dc.classify(candidate, self.target,
                                    self.check.check(cred.password, allowed))
        run.counts[status] += 1
        # no value is ever returned; masking is the safety net.  An unrelated short value
        # ("true", "5432") would mask every such word of the output, so only the role's
        # copies, and unrelated values long enough to be secrets, are registered
        if cred.password and (status != dc.UNRELATED or len(cred.password) >= MASK_MIN):
            self.hide(cred.password)
        if status != dc.UNRELATED:
            self.found.append({"store": spec, "status": status, "match": match,
                               "scope": run.label, **{key: candidate[key] for key in
                                                      ("username", "host", "port", "dbname")}})

    def _scope(self, index: int, scope: dict) -> ScopeRun:
        run = ScopeRun(index, scope)
        try:
            for spec in _enumerator(scope["type"])(scope, run.bounded(self.params), run):
                self._examine(spec, run)
        except ScopeBudget as stop:
            run.warnings.append(str(stop))
        except PgauthError as err:  # ScopeError, AwsError, VaultError: never a value
            run.error = str(err)
        return run

    def _consumers(self, errors: list[str]) -> list[dict]:
        from ansible_collections.credops.pgauth.plugins.module_utils.discover_aws import (
            ecs_consumers,
        )
        families = {item["store"]["family"] for item in self.found
                    if item["store"]["type"] == "aws_ecs_task_definition"}
        consumers: list[dict] = []
        for index, scope in enumerate(self.scopes):
            if scope["type"] != "aws_ecs_task_definition":
                continue
            run = ScopeRun(index, scope)  # the scope's timeout again, for its consumers
            try:
                found = ecs_consumers(scope, run.bounded(self.params), families,
                                      f"scope {index + 1} consumers", run.check_time)
            except ScopeBudget as stop:
                errors.append(f"consumers: {stop}")
                continue
            except PgauthError as err:
                errors.append(str(err))
                continue
            hostile = [item for item in found if holds_template(item)]
            if hostile:  # a service named like a template: not listed (vars.yml feeds ansible)
                errors.append(f"scope {index + 1} consumers: {len(hostile)} services whose "
                              "name holds a template marker were not listed")
            consumers += [{"name": dc.unique_name(f"ecs:{item['cluster']}/{item['service']}",
                                                  self.taken), **item} for item in found
                          if not holds_template(item)]
        return consumers

    def run(self) -> dict:
        runs = [self._scope(index, scope) for index, scope in enumerate(self.scopes)]
        errors = [f"{run.label}: {run.error}" if not run.error.startswith(run.label)
                  else run.error for run in runs if run.error]
        consumers = self._consumers(errors)
        ordered = dc.primary_order(self.found)
        listed = [item for item in ordered if item["status"] in dc.LISTED]
        totals = {status: sum(run.counts[status] for run in runs) for status in runs[0].counts} \
            if runs else {}
        statuses = {item["status"] for item in ordered}
        verdict = ("broken" if dc.CURRENT not in statuses else
                   "degraded" if statuses - {dc.CURRENT} or errors else "healthy")
        return {
            "verdict": verdict, "method": self.check.method, "logins": self.check.logins,
            "candidates": ordered, "counts": totals,
            "skipped": sum(len(run.skipped) for run in runs),
            "skipped_reasons": [reason for run in runs for reason in run.skipped][:50],
            "progress": [run.progress() for run in runs],
            "errors": errors,
            "scope_warnings": [warning for run in runs for warning in run.warnings] + (
                [(f"{len(ordered) - len(listed)} candidates are shared (the role's password "
                  "in a store naming another user, host, port or db) or unknown (not "
                  "checked, or no host named): listed for review, not in vars.yml")]
                if len(ordered) > len(listed) else []),
            "vars": {"pgauth_target": self.target,
                     "pgauth_stores": [item["store"] for item in listed],
                     "pgauth_consumers": consumers},
        }


def discover(params: dict, hide) -> dict:
    target = dict(params["target"])
    if not target.get("role") or not target.get("host"):
        raise DiscoverError("target needs role and host")
    return Discovery(params, target, validated_scopes(params["scopes"]), hide).run()
