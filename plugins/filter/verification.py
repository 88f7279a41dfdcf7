# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: verify_checks
short_description: The verify runbook's checks, from gathered facts
version_added: 0.1.0
description:
  - Takes what M(credops.pgauth.pg_auth_facts) returns (with C(target)) and returns named
    checks C({check, ok, severity, detail}). Every store readable (C(store_readable:NAME)),
    each store's credential logs in (C(login:NAME)), the stores agree (C(stores_agree), by
    keyed fingerprints, or the same user for IAM), the role is healthy (C(role_healthy),
    C(connection_headroom)), no failed logins in the logs (C(logs_quiet)), each health URL
    answers 2xx (C(health:URL)). A URL is shown with its user name and password replaced by
    C(***) and the values of secret-looking query parameters (C(token), C(password), C(key),
    ...) replaced by C(***), in the check's name and detail.
  - For IAM roles, sessions older than the 15-minute token lifetime are reported as
    information; PostgreSQL checks a token only when a connection opens.
  - P(credops.pgauth.checks_verdict#filter) turns the checks into a verdict.
options:
  _input:
    description: The facts, with C(target).
    type: dict
    required: true
  health:
    description:
      - Results of M(ansible.builtin.uri) for the health URLs (C(status), C(msg)), with the
        loop's C(item), either a request from P(credops.pgauth.health_requests#filter) or
        the URL as given (else the result's C(url) is used).
    type: list
    elements: dict
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Checks and verdict
  ansible.builtin.set_fact:
    checks: "{{ facts | combine({'target': pgauth_target}) | credops.pgauth.verify_checks }}"
"""

RETURN = r"""
_value:
  description: The checks.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils import verification


# each filter's function has the filter's name (checks_verdict.yml documents checks_verdict)
def verify_checks(facts: dict, health: list | None = None) -> list:
    if not isinstance(facts, dict):
        raise AnsibleFilterError("verify_checks expects the gathered facts as a dict")
    return verification.verify_checks(facts, health or [])


def checks_verdict(found: list) -> str:
    if not isinstance(found, list):
        raise AnsibleFilterError("checks_verdict expects a list of checks")
    return verification.checks_verdict(found)


class FilterModule:
    def filters(self):
        return {"verify_checks": verify_checks, "checks_verdict": checks_verdict}
