# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook roles' shared inputs as module options (the connection_options filter).

One place maps pgauth_target, pgauth_admin, pgauth_aws and pgauth_vault to the option names
of the postgres, aws and vault doc fragments; what is not given is left out, so the modules'
own defaults and PG*/AWS_*/VAULT_* environment fallbacks apply.
"""
from __future__ import annotations

AWS_KEYS = ("region", "profile", "endpoint_url", "access_key", "secret_key", "session_token",
            "aws_config")
VAULT_KEYS = ("url", "token", "auth_method", "role_id", "secret_id", "namespace", "ca_cert",
              "validate_certs", "vault_timeout")


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
