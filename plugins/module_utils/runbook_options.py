# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook roles' shared inputs: their one definition, and their mapping to module
options (the connection_options filter).

RUNBOOK_INPUTS is the source of every input that more than one of the diagnose, rotate and
verify roles takes; hack/gen_specs.py merges it with each role's own options into
roles/*/meta/argument_specs.yml (``make specs``), so ansible-doc shows one text for each.

connection_options maps pgauth_target, pgauth_admin, pgauth_aws and pgauth_vault to the
option names of the postgres, aws and vault doc fragments; what is not given is left out, so
the modules' own defaults and PG*/AWS_*/VAULT_*/BAO_* environment fallbacks apply.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.option_registry import (
    AWS_OPTIONS,
    SSL_MODES,
    VAULT_OPTIONS,
)

# the keys of pgauth_aws and pgauth_vault: the module options of the same names
AWS_KEYS = tuple(AWS_OPTIONS)
VAULT_KEYS = tuple(VAULT_OPTIONS)


def _keys(names) -> str:
    return ", ".join(f"C({name})" for name in names)


TARGET_KEYS = {
    "host": {"type": "str", "required": True, "description": ["The database endpoint."]},
    "port": {"type": "int", "default": 5432, "description": ["The database port."]},
    "dbname": {"type": "str", "description": ["The application's database."]},
    "role": {"type": "str", "required": True, "description": [
        "The application's login role (case-sensitive)."]},
    "auth": {"type": "str", "choices": ["password", "iam"], "default": "password",
             "description": ["How the application logs in."]},
    "sslmode": {"type": "str", "choices": SSL_MODES, "description": [
        ("The libpq sslmode of the logins. Without it, C(verify-full) when C(sslrootcert) is "
         "given, else C(prefer)."),
        ("Below C(verify-full), a server's request for a cleartext password is refused and "
         "IAM tokens are not sent (see C(iam_allow_unverified_tls)).")]},
    "sslrootcert": {"type": "path", "description": [
        "CA bundle for verify-ca and verify-full (for RDS, the RDS CA bundle)."]},
    "iam_allow_unverified_tls": {"type": "bool", "default": False, "description": [
        ("Send IAM tokens over a connection that does not verify the server (an C(sslmode) "
         "other than C(verify-full)). A token is a bearer credential for 15 minutes; the output "
         "and the report say when this was used.")]},
    "rds_instance_id": {"type": "str", "description": ["The RDS instance, for the IAM checks."]},
    "rds_cluster_id": {"type": "str", "description": ["The Aurora cluster, for the IAM checks."]},
    "region": {"type": "str", "description": ["The AWS region of the instance or cluster."]},
    "iam_principal_arn": {"type": "str", "description": [
        ("The application's IAM principal; diagnose, and rotate with C(pgauth_strategy=iam), "
         "check that its policies allow C(rds-db:connect) as the role.")]},
}

ADMIN_KEYS = {
    "user": {"type": "str", "description": ["The admin role."]},
    "password": {"type": "str", "no_log": True, "description": ["The admin password."]},
    "store": {"type": "dict", "description": ["A store dict holding the admin credential."]},
    "dbname": {"type": "str", "default": "postgres", "description": [
        "The database the admin connects to."]},
    "host": {"type": "str", "description": [
        "Admin endpoint, when it differs from C(pgauth_target.host)."]},
    "port": {"type": "int", "description": [
        "Admin port, when it differs from C(pgauth_target.port)."]},
    "sslmode": {"type": "str", "description": [
        "Admin sslmode, when it differs from C(pgauth_target.sslmode)."]},
    "iam": {"type": "bool", "default": False, "description": [
        "The admin logs in with an IAM token."]},
}

LOGS_KEYS = {
    "files": {"type": "list", "elements": "str", "description": [
        "Log file globs, read where the play runs."]},
    "cloudwatch_log_group": {"type": "str", "description": [
        "A CloudWatch log group, such as C(/aws/rds/instance/NAME/postgresql)."]},
    "since": {"type": "str", "default": "1h", "description": [
        "How far back to look (V(15m), V(1h), V(2d) or an ISO timestamp)."]},
}

# Every input more than one runbook role takes, in the order the role specs show them.
RUNBOOK_INPUTS = {
    "pgauth_target": {"type": "dict", "required": True, "suboptions": TARGET_KEYS,
                      "description": ["The database and the application's role."]},
    "pgauth_admin": {"type": "dict", "default": {}, "suboptions": ADMIN_KEYS, "description": [
        ("How the runbook logs in as an admin (to read the role's state, and for rotate to "
         "change its password). Either C(password), or C(store) (a store dict holding the "
         "admin credential, read inside the module). Without either, C(PGUSER) and "
         "C(PGPASSWORD) apply.")]},
    "pgauth_stores": {"type": "list", "elements": "dict", "default": [], "description": [
        ("Every store that holds the application's credential, primary first. Each item is a "
         "store dict (C(name), C(type), C(secret_id) or C(mount_point)/C(path), C(format), "
         "C(key)); see the C(store) option of the secret_value_info module.")]},
    "pgauth_consumers": {"type": "list", "elements": "dict", "default": [], "description": [
        ("What uses the credential and must pick up a new one. rotate refreshes each after "
         "promote, then confirms it (a consumer not confirmed fails the run, and the next run "
         "finishes it without rotating again); diagnose probes through a pooler; verify "
         "confirms each. Each item has C(name), C(type) and the type's keys."),
        ("C(type=pgbouncer): C(host), C(port) (the pooler's listen address), C(dbname), "
         "C(admin) (C({user, password}) or C({user, store}), a user of C(admin_users)), "
         "C(admin_db) (default C(pgbouncer)), C(auth_file) (the userlist.txt that gets the "
         "role's SCRAM verifier, never the password; leave it out for C(auth_query)), "
         "C(sslmode), C(sslrootcert), C(reconnect) (default true: RECONNECT after RELOAD)."),
        ("C(type=http): C(url), which must answer 2xx within C(timeout) seconds (default 30, "
         "tried every C(interval) seconds, default 1); C(validate_certs), C(ca_cert)."),
        ("C(type=aws_ecs_service): C(cluster), C(service) (and C(region), C(endpoint_url), "
         "C(profile)); refreshed by a new deployment on the latest ACTIVE revision of the "
         "service's family, confirmed when the service is stable (one deployment, as many "
         "tasks running as desired) within C(timeout)."),
        ("C(type=command): C(argv) (a list, no shell: C([systemctl, restart, app])), "
         "C(command_timeout) (default 120), C(env), C(inherit_env), C(cwd); refreshed by "
         "running it (exit code checked, stderr redacted), confirmed by C(health_url) or "
         "C(sessions) when given, else by the exit code alone."),
        ("Any type: C(health_url) (also 2xx), C(sessions) (C(application_name) and/or "
         "C(client_addr), C(min)): pg_stat_activity must show that many sessions of the role "
         "opened after the switch from that consumer.")]},
    "pgauth_logs": {"type": "dict", "default": {}, "suboptions": LOGS_KEYS, "description": [
        "Server logs to scan for the role's failed logins."]},
    "pgauth_report_dir": {"type": "path", "default": "./pgauth-reports", "description": [
        "Where the reports go, on the controller."]},
    "pgauth_aws": {"type": "dict", "default": {}, "description": [
        (f"AWS connection settings ({_keys(AWS_KEYS)}), the options of the same names of the "
         "modules. Empty means the usual C(AWS_*) environment.")]},
    "pgauth_vault": {"type": "dict", "default": {}, "description": [
        (f"Vault/OpenBao connection settings ({_keys(VAULT_KEYS)}), the options of the same "
         "names of the modules. Empty means the C(VAULT_*) (or C(BAO_*)) environment.")]},
    "pgauth_connect_timeout": {"type": "int", "default": 10, "description": [
        "Seconds to wait for each PostgreSQL connection."]},
    "pgauth_expiry_warning": {"type": "str", "default": "7d", "description": [
        ("How far ahead a role's VALID UNTIL counts as expiring, such as C(7d), C(12h) or "
         "C(2w): diagnose reports C(role_password_expiring) and verify fails its check "
         "C(role_password_not_expiring), both warnings (verdict C(degraded)).")]},
    "pgauth_metrics_file": {"type": "str", "default": "", "description": [
        ("Also write the report as Prometheus metrics in the node_exporter textfile-collector "
         "format (docs/metrics.md). A directory gets one file per host and runbook, "
         "C(pgauth_<host>_<runbook>.prom); a file name may contain C({host}) and "
         "C({runbook}). Empty: no metrics.")]},
    "pgauth_fleet_report": {"type": "bool", "default": True, "description": [
        ("Once per play, after every host wrote its report, write "
         "C(<pgauth_report_dir>/index.html) and C(index.md): a row per host with its "
         "verdict, first finding and fix command, broken hosts first "
         "(M(credops.pgauth.fleet_report)).")]},
}


def connection_options(target: dict, admin: dict | None = None, aws: dict | None = None,
                       vault: dict | None = None, connect_timeout: int | None = None) -> dict:
    target, admin, aws, vault = target or {}, admin or {}, aws or {}, vault or {}
    options = {
        "login_host": admin.get("host") or target.get("host"),
        "login_port": admin.get("port") or target.get("port"),
        "login_user": admin.get("user"),
        "login_password": admin.get("password"),
        "login_password_from": {"store": admin["store"]} if admin.get("store") else None,
        "login_db": admin.get("dbname") or "postgres",
        "login_iam": bool(admin.get("iam")),
        "ssl_mode": admin.get("sslmode") or target.get("sslmode"),
        "ssl_rootcert": target.get("sslrootcert"),
        "iam_allow_unverified_tls": target.get("iam_allow_unverified_tls"),
        "connect_timeout": connect_timeout,
        "region": target.get("region") or aws.get("region"),
        **{key: aws.get(key) for key in AWS_KEYS if key != "region"},
        **{key: vault.get(key) for key in VAULT_KEYS},
    }
    return {key: value for key, value in options.items() if value is not None}
