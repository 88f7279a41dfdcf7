#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pg_auth_log_scan
short_description: Count PostgreSQL login failures per role, with the reason the client never sees
version_added: 0.1.0
description:
  - Reads PostgreSQL logs (files, rotated and gzipped ones too, or CloudWatch Logs groups of RDS
    and Aurora) and returns, per role, failed logins by category and by reason, first and last
    seen, failures per minute, the C(pg_hba.conf) lines that matched, successful logins, and a
    few sample lines with anything password- or token-like redacted.
  - The reason comes from the server's DETAIL line of the same process, such as
    C(Role "x" does not exist.) or C(User "x" has an expired password.).
  - Streams the logs line by line, so a log of any size is scanned in bounded memory. The log
    is untrusted input (clients that never authenticate choose the user and database names
    and the C(replication) value the server logs at FATAL), so matching is linear in the
    line, and lines (16 KiB), roles (1000), processes waiting for a DETAIL (10000) and reasons
    per role (16) are bounded; what is dropped is counted in RV(dropped) and sets
    RV(truncated). With O(role), only that role is tracked.
  - A DETAIL counts only for the FATAL of the same process with the same timestamp, right
    before it in that process, and only after a failure PostgreSQL explains with one
    (password, PAM, LDAP, RADIUS), so a logged line cannot pose as another login's reason.
  - C(pg_hba.conf) lines are returned with C(ldapbindpasswd), C(radiussecrets) and
    C(radiussecret) values masked; samples have SQL C(PASSWORD) literals (in every form,
    C(E''), C(U&''), C(N''), dollar quotes, after a comment), C(password=) values, URL
    passwords and AWS signatures masked.
  - Understands the default C(log_line_prefix) C('%m [%p] %q%u@%d ') and RDS's fixed
    C('%t:%r:%u@%d:[%p]:'), and the IAM decision log of the credops.pgauth lab.
options:
  files:
    description:
      - Log files or globs (V(/var/log/postgresql/postgresql-*.log*)). Files last written before
        O(since) are skipped.
    type: list
    elements: str
    default: []
  cloudwatch_log_groups:
    description:
      - CloudWatch Logs groups, for example V(/aws/rds/instance/mydb/postgresql) and, when
        exported, V(/aws/rds/instance/mydb/iam-db-auth-error).
    type: list
    elements: str
    default: []
    aliases: [cloudwatch_log_group]
  since:
    description:
      - Start of the window, a duration back from now (V(15m), V(1h), V(2d)) or an ISO 8601
        timestamp. Empty for the whole log.
    type: str
    default: 1h
  role:
    description:
      - Only this role (case-sensitive).
    type: str
  max_samples:
    description:
      - Sample lines kept per role (redacted).
    type: int
    default: 5
extends_documentation_fragment:
  - credops.pgauth.aws
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
notes:
  - Server messages are matched in English (C(lc_messages) C or en_US), as on RDS.
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Why has app_user been failing in the last hour?
  credops.pgauth.pg_auth_log_scan:
    files: [/var/log/postgresql/postgresql-15-main.log*]
    since: 1h
    role: app_user
  register: pgauth_logs

- name: The same from RDS
  credops.pgauth.pg_auth_log_scan:
    cloudwatch_log_groups:
      - /aws/rds/instance/mydb/postgresql
    region: eu-west-1
    since: 30m
"""

RETURN = r"""
roles:
  description:
    - Per role, what the logs say. Categories are C(password_failed), C(pam_failed),
      C(ldap_failed), C(radius_failed), C(hba_reject), C(tls_required), C(no_hba_entry),
      C(connection_limit_reached) and C(role_cannot_login).
  returned: always
  type: dict
  sample:
    app_user:
      failures: 42
      by_category: {password_failed: 42}
      by_reason: {role_password_expired: 42}
      hba_lines: {'line 6: hostssl all all 0.0.0.0/0 scram-sha-256': 42}
      first_failure: "2026-11-22T06:50:29.084000+00:00"
      last_failure: "2026-11-22T07:31:02.001000+00:00"
      failures_per_minute: 0.7
      successes: 0
      first_success: null
      last_success: null
      samples: ['2026-11-22 06:50:29.084 UTC [3148] app_user@appdb FATAL:  password ...']
failures:
  description:
    - Failed logins in the window, all roles, including those of roles beyond the first
      1000 (counted in RV(dropped.role_events)).
  returned: always
  type: int
truncated:
  description:
    - Whether anything was left out because of a bound (any count in RV(dropped) above zero);
      RV(roles) is then incomplete.
  returned: always
  type: bool
dropped:
  description: What the bounds left out, by kind.
  returned: always
  type: dict
  contains:
    long_lines:
      description: Lines over 16 KiB, counted in RV(lines_scanned) but not read (no line a
        client can cause before authenticating is that long).
      type: int
    role_events:
      description: Failures and successes of roles beyond the first 1000, or with a name
        longer than any PostgreSQL role's.
      type: int
    pending_events:
      description: Failed logins dropped from the memory of 10000 processes still waiting for
        their DETAIL, so their reason, if one came, was not read.
      type: int
    reason_keys:
      description: Reasons and C(pg_hba.conf) lines beyond 16 distinct ones per role.
      type: int
    unreadable_events:
      description: Failed-login messages whose role could not be read (a role name with a
        line break in it, or a forged line).
      type: int
lines_scanned:
  description: Lines read.
  returned: always
  type: int
sources:
  description: The files and log groups read.
  returned: always
  type: list
  elements: str
since:
  description: Start of the window (ISO 8601), or null.
  returned: always
  type: str
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.aws import AWS_ARGSPEC
from ansible_collections.credops.pgauth.plugins.module_utils.logsources import scan_logs
from ansible_collections.credops.pgauth.plugins.module_utils.runner import run_module


def run(module: AnsibleModule) -> dict:
    params = module.params
    return {"changed": False,
            **scan_logs(params, params["files"], params["cloudwatch_log_groups"],
                        params["since"], params["role"], params["max_samples"], module.warn)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "str", "default": []},
            "cloudwatch_log_groups": {"type": "list", "elements": "str", "default": [],
                                      "aliases": ["cloudwatch_log_group"]},
            "since": {"type": "str", "default": "1h"},
            "role": {"type": "str"},
            "max_samples": {"type": "int", "default": 5},
            **{name: dict(option) for name, option in AWS_ARGSPEC.items()},
        },
        required_one_of=[("files", "cloudwatch_log_groups")],
        supports_check_mode=True,
    )
    run_module(module, run, "pg_auth_log_scan")


if __name__ == "__main__":
    main()
