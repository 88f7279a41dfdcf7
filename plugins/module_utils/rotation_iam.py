# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""strategy=iam: move a role from a password to RDS IAM tokens.

Order: the AWS side first (the principal's policy, then the instance flag), because nothing
should change while a token could not work anyway (a policy that is not decided "allowed"
stops the run unless force: the token login below uses the controller's identity, not the
application's, so it cannot prove that the application will connect); then GRANT rds_iam and a
token login over TLS (revoked again if that login fails); only then the stores switch to
auth=iam with no password.  Between the grant and the switch, clients that still send the
password are refused: converting one role cannot be zero-downtime (use a new role for that).
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.iam_policy import ALLOWED, DENIED
from ansible_collections.credops.pgauth.plugins.module_utils.pg import (
    login_kwargs,
    try_login,
    with_iam_token,
)
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import (
    apply,
    check_role_name,
    plan_membership,
    role_exists,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import (
    iam_facts,
    modify_database,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
    Executor,
    FailpointHook,
    Outcome,
    RotationError,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_stores import store_versions
from ansible_collections.credops.pgauth.plugins.module_utils.store import Store


class IamConversion:
    def __init__(self, params: dict, cur, hide, check_mode: bool,
                 failpoint: FailpointHook | None = None):
        self.params, self.cur, self.hide, self.check_mode = params, cur, hide, check_mode
        self.role = params["role"]
        check_role_name(self.role)
        self.stores = [Store(spec, params) for spec in params.get("stores") or []]
        self.store_list = self.stores
        self.out = Outcome("iam", self.role, login_user=self.role)
        self.execute = Executor(self.out, check_mode, failpoint)

    def step(self, name: str, stores: list, needed: bool, work, *args, detail=None) -> None:
        self.execute.run(name, stores, work, *args, needed=needed, detail=detail)

    def aws_side(self) -> None:
        """Nothing changes (not even the instance flag) until the AWS side is known to work:
        the principal's policy decided first, then the flag."""
        params = self.params
        instance = params.get("db_instance_identifier")
        cluster = params.get("db_cluster_identifier")
        if not (instance or cluster):
            self.out.notes.append("no RDS instance or cluster given: the IAM flag and the "
                                  "principal's policy were not checked")
            return
        principal = params.get("principal_arn")
        facts = iam_facts(params, instance, cluster, self.role, principal)
        self.check_policy(facts, principal)
        # IAM on an Aurora cluster is the cluster's setting, even when named by an instance
        cluster = cluster or facts.get("aurora_cluster")
        if facts.get("aurora_cluster"):
            instance = None
        what = f"instance {instance}" if instance else f"cluster {cluster}"
        if not facts["iam_enabled"] and not params.get("iam_enable_instance"):
            raise RotationError(f"IAM database authentication is off on {what}; turn it on, or "
                                "run with pgauth_iam_enable_instance: true (it is applied "
                                "immediately); nothing was changed")
        self.step("enable_iam_on_" + ("instance" if instance else "cluster"), [],
                  not facts["iam_enabled"], self.enable_flag, instance, cluster,
                  detail=what)

    def check_policy(self, facts: dict, principal: str | None) -> None:
        """The token login below proves only the controller's identity, never the app's: the
        app's principal must be decided allowed, or the user must say pgauth_force."""
        if not principal:
            self.out.notes.append("no principal_arn (pgauth_target.iam_principal_arn): whether "
                                  "the application's IAM principal may rds-db:connect was not "
                                  "checked; the token login proves only the controller's "
                                  "identity")
            return
        decision, arn = facts.get("decision"), facts.get("connect_arn")
        if decision == DENIED:
            raise RotationError(
                f"{principal} may not rds-db:connect on {arn} (denied); allow it in the "
                "principal's policy; nothing was changed in the database or the stores")
        if decision == ALLOWED:
            return
        reasons = ", ".join(facts.get("reasons") or []) or "unknown"
        if not self.params.get("force"):
            raise RotationError(
                f"whether {principal} may rds-db:connect on {arn} could not be decided "
                f"({reasons}); converting could leave the application unable to connect. Check "
                "it with the IAM policy simulator and the real request context, then run again "
                "with pgauth_force: true to convert anyway; nothing was changed in the database "
                "or the stores")
        self.out.notes.append(f"forced (pgauth_force) past an undecided IAM policy decision for "
                              f"{principal} ({reasons}): the application may not be able to "
                              "connect")

    def enable_flag(self, instance: str | None, cluster: str | None) -> None:
        modify_database(self.params, instance, cluster, "turning IAM authentication on",
                        EnableIAMDatabaseAuthentication=True)

    def token_login(self) -> None:
        """A token login at the target's endpoint.  The token travels only over verify-full
        (transport_guard), unless the user opted out: then the report's notes say so."""
        params = self.params
        login = {**params, "login_db": params.get("dbname") or params.get("login_db"),
                 "login_iam": True}
        kwargs = with_iam_token(login, login_kwargs(login, self.role, None))
        result = try_login(kwargs, "iam", bool(params.get("iam_allow_unverified_tls")))
        if result.warning and result.warning not in self.out.notes:
            self.out.notes.append(result.warning)
        if not result.authenticated:
            raise RotationError(f"token login as {self.role!r} over TLS failed "
                                f"({result.category}): {result.message}")

    def store_is_iam(self, store: Store) -> bool:
        if store.write_only:
            return False  # cannot be read back: always written
        cred, _stored = store.read("current")
        # a DSN cannot say auth=iam: no password and the role's name is what it can say
        return cred is not None and cred.auth in ("iam", None) and not cred.password \
            and cred.username == self.role

    def switch_store(self, store: Store) -> None:
        if store.supports_pending and store.pending() is not None:
            store.discard_pending()
        update = Credential(username=self.role, password="", auth="iam")
        plan = store.plan_write({"username": update.username, "password": update.password,
                                 "auth": update.auth}, "current")
        if plan.changed:
            store.write(plan, "current")

    def run(self) -> Outcome:
        out = self.out
        if not role_exists(self.cur, self.role):
            raise RotationError(f"role {self.role!r} does not exist")
        bare = [store.name for store in self.stores if store.value_format == "password"]
        if bare:
            raise RotationError("an IAM application's stores must name the user, and these hold "
                                f"a bare password: {', '.join(bare)}; nothing was changed")
        read_only = [store.name for store in self.stores if not store.writable]
        if read_only:
            raise RotationError(f"these stores cannot be written (no write command): "
                                f"{', '.join(read_only)}; nothing was changed")
        out.versions_before = store_versions(self.stores)
        self.aws_side()
        grant = plan_membership(self.cur, self.role, "rds_iam", True)
        self.step("grant_rds_iam", [], grant.changed, apply, self.cur, grant,
                  f"role {self.role!r}")
        try:
            self.step("token_login", [], True, self.token_login)
        except RotationError as err:
            if grant.changed and not self.check_mode:
                revoke = plan_membership(self.cur, self.role, "rds_iam", False)
                apply(self.cur, revoke, f"role {self.role!r}")
                out.outcome = "rolled_back"
                raise RotationError(f"{err}; rolled back (rds_iam revoked, so password logins "
                                    "work as before; the stores were not changed)") from None
            raise
        for store in self.stores:
            self.step("switch:" + store.name, [store], not self.store_is_iam(store),
                      self.switch_store, store)
        out.outcome = "converted"
        out.promoted = any(step.status == "done" for step in out.steps
                           if step.name.startswith("switch:"))
        if not self.check_mode:
            out.versions_after = store_versions(self.stores)
        return out
