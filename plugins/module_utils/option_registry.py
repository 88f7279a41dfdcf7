# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every option the modules, the lookup and the doc fragments share, defined once.

An option is plain data: ``type``, ``description`` (a list of paragraphs), and where it has
them ``default``, ``env`` (environment fallbacks, first one set wins), ``aliases``,
``no_log``, ``choices``, ``required``, ``elements`` and ``suboptions``.  From these groups:

- ``argument_spec(group)`` builds an AnsibleModule argument spec (env becomes env_fallback);
- ``module_doc(group)`` / ``plugin_doc(group)`` build the doc fragments' options, which
  hack/gen_specs.py writes into plugins/doc_fragments/ (ansible-doc and sanity need literal
  YAML there; a unit test fails when a written file is stale).

The runbook roles' shared inputs are in runbook_options.py, in the same shape.
"""
from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.credops.pgauth.plugins.module_utils.credential import DEFAULT_EXCLUDE

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

POSTGRES_OPTIONS = {
    "login_host": {"type": "str", "env": ["PGHOST"], "description": [
        "Host name or IP address of the PostgreSQL server.",
        "Falls back to the E(PGHOST) environment variable."]},
    "login_port": {"type": "int", "default": 5432, "env": ["PGPORT"], "description": [
        "TCP port of the PostgreSQL server. Falls back to E(PGPORT)."]},
    "login_user": {"type": "str", "env": ["PGUSER"], "description": [
        "Role to log in as. Falls back to E(PGUSER)."]},
    "login_password": {"type": "str", "no_log": True, "env": ["PGPASSWORD"], "description": [
        "Password of O(login_user). Falls back to E(PGPASSWORD)."]},
    "login_db": {"type": "str", "env": ["PGDATABASE"], "description": [
        "Database to connect to. Falls back to E(PGDATABASE), then V(postgres)."]},
    "login_unix_socket": {"type": "str", "description": [
        "Directory of the server's Unix socket; used instead of O(login_host) when set."]},
    # no fixed default: verify-full when ssl_rootcert is given, else prefer (effective_sslmode)
    "ssl_mode": {"type": "str", "choices": SSL_MODES, "env": ["PGSSLMODE"], "description": [
        "libpq C(sslmode). Falls back to E(PGSSLMODE).",
        ("Without it, V(verify-full) when O(ssl_rootcert) is given, else V(prefer). "
         "community.postgresql defaults to V(prefer) in every case; this collection does not, "
         "because its logins carry admin passwords, new passwords and IAM tokens, and only "
         "V(verify-full) proves who receives them."),
        ("Over anything weaker than V(verify-full) (and over Unix sockets), a server's request "
         "for the password in cleartext is refused (libpq C(require_auth=!password)), so an "
         "attacker who answers \"no TLS\" learns nothing; SCRAM and md5 logins work as usual."),
        ("Use V(verify-full) with O(ssl_rootcert) against RDS; IAM tokens travel in cleartext "
         "and are only sent over V(verify-full) (see O(iam_allow_unverified_tls)).")]},
    "ssl_rootcert": {"type": "path", "env": ["PGSSLROOTCERT"], "description": [
        "CA bundle that signed the server certificate. Falls back to E(PGSSLROOTCERT)."]},
    "connect_timeout": {"type": "int", "default": 10, "description": [
        "Seconds to wait for the connection before giving up."]},
    "login_iam": {"type": "bool", "default": False, "description": [
        ("Log in with a freshly generated RDS IAM auth token for O(login_user) instead of a "
         "password. The token is made with the AWS options (O(region), O(profile), ...) and "
         "lives 15 minutes; it is used for this one connection only."),
        ("Needs O(ssl_mode=verify-full) (or O(iam_allow_unverified_tls)) and a role that is a "
         "member of C(rds_iam).")]},
    "iam_allow_unverified_tls": {"type": "bool", "default": False, "description": [
        ("Send IAM tokens over a connection that does not verify the server (O(ssl_mode) other "
         "than V(verify-full)). A token is a bearer credential for 15 minutes; whoever can "
         "intercept the connection can replay it. Each login that uses this says so in a "
         "warning.")]},
}

AWS_OPTIONS = {
    "region": {"type": "str", "aliases": ["aws_region"],
               "env": ["AWS_REGION", "AWS_DEFAULT_REGION"],
               "description": [("AWS region. Falls back to E(AWS_REGION), then "
                                "E(AWS_DEFAULT_REGION), then the profile.")]},
    "profile": {"type": "str", "aliases": ["aws_profile"], "env": ["AWS_PROFILE"], "description": [
        "Named profile from the AWS config files. Falls back to E(AWS_PROFILE)."]},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"], "env": ["AWS_ENDPOINT_URL"],
                     "description": [
                         ("Use this endpoint instead of the AWS default (a VPC endpoint, or a test "
                          "server). Falls back to E(AWS_ENDPOINT_URL)."),
                         ("Must be C(https://), or C(http://) to this machine, unless "
                          "O(insecure_endpoint_ok); the same holds for a store's C(endpoint_url), "
                          "which receives these credentials.")]},
    # no_log False: the key id is not secret, and says so to validate-modules' name heuristic
    "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False,
                   "env": ["AWS_ACCESS_KEY_ID"], "description": [
                       ("AWS access key id. Falls back to E(AWS_ACCESS_KEY_ID), then boto3's "
                        "credential chain (profile, instance or task role, web identity).")]},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True,
                   "env": ["AWS_SECRET_ACCESS_KEY"], "description": [
                       "AWS secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY)."]},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True,
                      "env": ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"], "description": [
                          ("AWS session token for temporary credentials. Falls back to "
                           "E(AWS_SESSION_TOKEN), then E(AWS_SECURITY_TOKEN) (the name AWX's "
                           "AWS credential injects).")]},
    "aws_config": {"type": "dict", "description": [
        ("Settings for botocore's C(Config) that override this collection's defaults "
         "(C(connect_timeout=10), C(read_timeout=30), standard retries with 8 attempts)."),
        ("For example a C(read_timeout) of 5 and C(retries) of C(max_attempts=2) give up "
         "quickly on an endpoint that does not answer.")]},
}

# One option for the AWS and the Vault endpoints (a module with stores takes both groups).
# An option of the module or lookup only, never a store key: whoever may point a store
# somewhere else must not also be able to allow cleartext.
ENDPOINT_OPTIONS = {
    "insecure_endpoint_ok": {"type": "bool", "default": False, "description": [
        ("Allow an AWS C(endpoint_url) or Vault C(url) that is neither C(https://) nor plain "
         "C(http://) to this machine (C(127.0.0.0/8), C(::1), C(localhost)). Without it such an "
         "endpoint is refused before anything is sent, naming the endpoint, where it came from "
         "(this option, E(AWS_ENDPOINT_URL), E(VAULT_ADDR), E(BAO_ADDR), a profile, or a "
         "store's own C(endpoint_url) or C(url)) and the store."),
        ("The check applies to the endpoint wherever it came from, because the endpoint receives "
         "the credentials (AWS keys and request signatures, the Vault token or AppRole secret "
         "id) and the secrets read or written. A store's C(endpoint_url) or C(url) override "
         "receives them too, so whoever may edit a store dict may choose where they go; this is "
         "an option of the module (or lookup), not a store key, so that the same person cannot "
         "also allow cleartext."),
        ("Turn it on only for a test server on another host or a network you trust with these "
         "credentials in cleartext. amazon.aws and community.hashi_vault have no such check.")]},
}

VAULT_OPTIONS = {
    "url": {"type": "str", "aliases": ["vault_addr"], "env": ["VAULT_ADDR", "BAO_ADDR"],
            "description": [
                "Vault or OpenBao address. Falls back to E(VAULT_ADDR), then E(BAO_ADDR).",
                ("Must be C(https://), or C(http://) to this machine, unless "
                 "O(insecure_endpoint_ok); the same holds for a store's C(url), which receives "
                 "the token (or AppRole secret id).")]},
    "token": {"type": "str", "no_log": True, "env": ["VAULT_TOKEN", "BAO_TOKEN"], "description": [
        ("Vault token for O(auth_method=token). Falls back to E(VAULT_TOKEN), then "
         "E(BAO_TOKEN).")]},
    "auth_method": {"type": "str", "default": "token", "choices": ["token", "approle"],
                    "description": ["How to authenticate to Vault."]},
    "role_id": {"type": "str", "no_log": False, "description": [
        "AppRole role id for O(auth_method=approle)."]},
    "secret_id": {"type": "str", "no_log": True, "description": [
        "AppRole secret id for O(auth_method=approle)."]},
    "namespace": {"type": "str", "env": ["VAULT_NAMESPACE", "BAO_NAMESPACE"], "description": [
        ("Vault Enterprise / OpenBao namespace. Falls back to E(VAULT_NAMESPACE), then "
         "E(BAO_NAMESPACE).")]},
    "ca_cert": {"type": "path", "aliases": ["cacert"], "env": ["VAULT_CACERT", "BAO_CACERT"],
                "description": [("CA bundle for Vault's TLS certificate. Falls back to "
                                 "E(VAULT_CACERT), then E(BAO_CACERT).")]},
    "validate_certs": {"type": "bool", "default": True, "description": [
        "Verify Vault's TLS certificate."]},
    "vault_timeout": {"type": "int", "default": 10, "description": ["Seconds to wait for Vault."]},
}

STORE_TYPES = ["aws_secretsmanager", "aws_ssm", "aws_ecs_task_definition", "aws_lambda_environment",
               "vault_kv2", "vault_kv1", "file", "command"]
STAGES = ["current", "pending"]

# The store dict's keys, the same for every module option, list item and lookup term.
STORE_KEYS = {
    "name": {"type": "str", "description": ["Label used in reports and error messages."]},
    "type": {"type": "str", "required": True, "choices": STORE_TYPES,
             "description": ["The kind of store."]},
    "secret_id": {"type": "str", "description": ["Secrets Manager secret name or ARN."]},
    "parameter": {"type": "str", "description": [
        ("Parameter Store (V(aws_ssm)), the parameter's name or ARN: a String or SecureString "
         "(a new one is a SecureString). Parameter Store has no stage readers do not see, so "
         "this store has no pending stage; a write labels the version it replaced "
         "V(pgauth-previous).")]},
    "family": {"type": "str", "description": [
        ("V(aws_ecs_task_definition), the task-definition family; its latest ACTIVE revision "
         "is read. A plaintext C(environment) variable is written by registering a new "
         "revision that differs only in that value; a C(secrets) entry is followed to the "
         "Secrets Manager secret or SSM parameter its C(valueFrom) names.")]},
    "container": {"type": "str", "description": [
        "V(aws_ecs_task_definition), the container definition's name."]},
    "function": {"type": "str", "description": [
        "V(aws_lambda_environment), the function's name or ARN."]},
    "variable": {"type": "str", "description": [
        ("V(aws_ecs_task_definition) and V(aws_lambda_environment), the environment variable "
         "that holds the value.")]},
    "alias": {"type": "str", "description": [
        ("V(aws_lambda_environment), an alias of the function: after a write, a new version is "
         "published and the alias moved to it (published versions cannot change). Without it "
         "only C($LATEST) gets the new value.")]},
    "mount_point": {"type": "str", "description": [
        "Vault KV mount (default V(secret) for KV v2, V(kv1) for KV v1)."]},
    "path": {"type": "str", "description": ["Vault secret path, or the file's path."]},
    "format": {"type": "str", "description": [
        ("Secrets Manager, Parameter Store, ECS, Lambda, Vault and command stores, the value's "
         "format. V(json) is the RDS-style object "
         "C({username, password, host, port, dbname, engine}) (unknown keys are kept on write), "
         "V(password) the bare password, V(dsn) a connection string: a C(postgresql://) "
         "URL, a SQLAlchemy C(postgresql+<driver>://) or C(jdbc:postgresql://) URL, or libpq "
         "keyword/value (rewritten in its own dialect, only the changed parts; every other "
         "parameter such as C(sslmode) kept)."),
        ("File stores, the file's syntax: V(yaml), V(json), V(dotenv), V(properties) "
         "(Java/Spring), V(ini) (also C(pg_service.conf)), V(toml), V(pgpass) (libpq's password "
         "file), V(k8s_secret) (a Kubernetes Secret manifest, base64 C(data) or C(stringData), "
         "one or several YAML documents) or V(pgbouncer_userlist) (PgBouncer's auth_file, "
         "C(userlist.txt); it holds the password's SCRAM-SHA-256 verifier, never the password, "
         "so it is compared with the other stores and never logged in with)."),
        ("Defaults to V(json) for Secrets Manager and Vault, V(password) for Parameter Store, "
         "ECS and Lambda variables and command stores, V(dotenv) for files.")]},
    "key": {"type": "str", "no_log": False, "description": [
        "Vault, the field of the secret that holds a V(password) or V(dsn) value.",
        ("File, a dotted path (V(database.password)) for yaml/json/toml, a variable name "
         "(V(DATABASE_URL)) for dotenv, a property name (V(spring.datasource.password)) for "
         "properties, V(section.option) for ini (V(app.password) in a service file), "
         "V(host:port:database:username) for pgpass (the line libpq would use for that "
         "connection), the Secret's data key for k8s_secret, the user name of the line for "
         "pgbouncer_userlist (required there).")]},
    "keys": {"type": "dict", "no_log": False, "description": [
        ("File stores, a credential spread over several keys of the file, instead of C(key): "
         "credential fields (C(password), C(username), C(host), C(port), C(dbname), C(sslmode), "
         "C(dsn)) mapped to keys of the file, e.g. C({password: spring.datasource.password, "
         "username: spring.datasource.username, dsn: spring.datasource.url}). The explicit keys "
         "win over what the DSN holds; a write changes the DSN only where it holds a part that "
         "changed.")]},
    "document": {"type": "str", "description": [
        ("File stores of format V(k8s_secret), the C(metadata.name) of the Secret in a file of "
         "several YAML documents (needed when the file holds more than one Secret).")]},
    "value_format": {"type": "str", "choices": ["password", "dsn", "json"], "description": [
        ("File stores, what the value at C(key) is. Default is guessed from the current value "
         "(a mapping is V(json), a connection string of any DSN dialect V(dsn), else "
         "V(password)).")]},
    "description": {"type": "str", "description": [
        "Secrets Manager, the description of a secret created by this module."]},
    "kms_key_id": {"type": "str", "description": [
        ("Secrets Manager, the KMS key of a secret created by this module; Parameter Store, "
         "the KMS key of a SecureString written.")]},
    "tags": {"type": "dict", "description": [
        "Secrets Manager, tags of a secret created by this module."]},
    "backup": {"type": "bool", "default": False, "description": [
        ("File stores, keep a copy of the file before writing, next to it, named "
         "C(<file>.<timestamp>.<random>~), with the file's owner, group, mode, ACLs and xattrs."),
        ("A backup holds the old secret, which may still log in (a C(alternating_users) "
         "rotation keeps the old password valid for the other user); clean backups up, or set "
         "C(backup_keep).")]},
    "backup_keep": {"type": "int", "description": [
        ("File stores with C(backup=true), how many backups of the file to keep; older ones are "
         "removed after a successful write. Default is to keep every backup.")]},
    # type: command (store_command.py); the value goes on stdin/stdout only
    "read": {"type": "list", "elements": "str", "description": [
        ("Command stores, the command that prints the value on stdout, as an argument list "
         "run without a shell (V([pass, show, app/db])). One trailing newline is dropped."),
        "Required unless C(write_only)."]},
    "write": {"type": "list", "elements": "str", "description": [
        ("Command stores, the command that takes the new value on stdin, as an argument "
         "list run without a shell (V([pass, insert, --multiline, --force, app/db])). The "
         "value is never put in an argument or the environment: a command that holds it "
         "there is refused.")]},
    "value_encoding": {"type": "str", "choices": ["text", "base64"], "description": [
        ("Command stores, how the CLI prints and takes the value: V(text) (UTF-8, the "
         "default), or V(base64) (the value is base64-decoded after read and encoded before "
         "write, as C(kubectl get secret -o jsonpath) prints it).")]},
    "write_only": {"type": "bool", "default": False, "description": [
        ("Command stores that cannot be read back (C(gh secret set)). Never read: diagnose "
         "and verify list it as \"write-only, not checked\" and judge the other stores; a "
         "rotation writes it after the database change, during promote; secret_value writes "
         "it every time it is asked to (changed is always true; nothing can be compared).")]},
    "timeout": {"type": "float", "description": [
        ("Command stores, seconds each command may run (default 30); then its whole process "
         "group is killed and the store fails with an error naming it.")]},
    "env": {"type": "dict", "description": [
        ("Command stores, environment variables set for the commands (C(PASSWORD_STORE_DIR)). "
         "The commands start from a clean environment: C(PATH), C(HOME), the locale, C(TZ), "
         "C(TMPDIR), C(USER) and C(LOGNAME) only, plus these and C(inherit_env)."),
        "Never the value itself: a variable that holds it is refused."]},
    "inherit_env": {"type": "list", "elements": "str", "description": [
        ("Command stores, names of variables passed on from the module's own environment "
         "(C(KUBECONFIG), C(GNUPGHOME), C(OP_SERVICE_ACCOUNT_TOKEN)), so a CLI's own "
         "credential need not be written into the store dict.")]},
    # per-store connection overrides (a fleet mixes regions and Vault namespaces)
    **{name: {"type": "str", "description": [f"Overrides O({name}) for this store."]}
       for name in ("region", "endpoint_url", "profile", "url", "namespace")},
}

# A reference to a store's credential, for modules that read the secret themselves.
STORE_REF_OPTIONS = {
    "store": {"type": "dict", "required": True, "suboptions": STORE_KEYS, "description": [
        "The store dict (the same dict as an item of C(pgauth_stores))."]},
    "stage": {"type": "str", "default": "current", "choices": STAGES, "description": [
        "Which value of the store."]},
}

# How a password is generated inside a module (secret_value's generate, pg_rotate's generate).
GENERATE_OPTIONS = {
    "length": {"type": "int", "default": 32, "description": ["Password length."]},
    "exclude_characters": {"type": "str", "default": DEFAULT_EXCLUDE, "description": [
        "Characters never used (by default those that break URLs, shells and quoting)."]},
    "require_each_type": {"type": "bool", "default": True, "description": [
        "At least one lowercase, uppercase, digit and punctuation character."]},
}

# the keys an argument spec takes as they are (env, description and suboptions are mapped)
_SPEC_KEYS = ("type", "elements", "required", "default", "choices", "aliases", "no_log")
# the order the doc fragments show them in
_DOC_KEYS = ("description", "type", "elements", "required", "default", "choices", "aliases")


def argument_spec(group: dict) -> dict:
    """An AnsibleModule argument spec for a group of options; a new dict each call, so a
    module may change its copy."""
    spec = {}
    for name, option in group.items():
        entry = {key: _copy(option[key]) for key in _SPEC_KEYS if key in option}
        if option.get("env"):
            entry["fallback"] = (env_fallback, list(option["env"]))
        if "suboptions" in option:
            entry["options"] = argument_spec(option["suboptions"])
        spec[name] = entry
    return spec


def module_doc(group: dict) -> dict:
    """The options of a module doc fragment (modules have no env key: the description says
    which variables an option falls back to)."""
    docs = {}
    for name, option in group.items():
        entry = {key: _copy(option[key]) for key in _DOC_KEYS if key in option}
        if "suboptions" in option:
            entry["suboptions"] = module_doc(option["suboptions"])
        docs[name] = entry
    return docs


def plugin_doc(group: dict) -> dict:
    """The options of a plugin doc fragment (a lookup's), with env entries.  Ansible's config
    manager lets the LAST variable that is set win, env_fallback the first: the list is
    reversed so that both pick the same one (VAULT_ADDR over BAO_ADDR)."""
    docs = module_doc(group)
    for name, option in group.items():
        if option.get("env"):
            docs[name]["env"] = [{"name": variable} for variable in reversed(option["env"])]
    return docs


def _copy(value):
    return list(value) if isinstance(value, (list, tuple)) else value


# The module options that take a store dict, and a store reference.
STORE_OPTION = {
    "store": {"type": "dict", "required": True, "suboptions": STORE_KEYS, "description": [
        "The store, as one dict; the same dict as an item of C(pgauth_stores).",
        ("Connection settings in the dict (O(store.region), O(store.url), ...) override the "
         "module-level AWS and Vault options, so one list can mix regions and Vault servers.")]},
}
PASSWORD_FROM_OPTION = {
    "password_from": {"type": "dict", "no_log": False, "suboptions": STORE_REF_OPTIONS,
                      "description": [
                          ("Read the credential from a store, inside the module, instead of "
                           "taking a password from playbook variables; the secret never passes "
                           "through them."),
                          ("The module-level AWS and Vault options are used to reach the store; "
                           "connection settings in the store dict override them.")]},
}
GENERATE_OPTION = {
    "generate": {"type": "dict", "suboptions": GENERATE_OPTIONS, "description": [
        "How new passwords are generated."]},
}
