# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: findings
short_description: Turn gathered facts into ordered findings, root cause first
version_added: 0.1.0
description:
  - The findings engine of the diagnose runbook, as a filter. Takes the facts gathered with the
    credops.pgauth modules (C(target), C(admin_error), C(server), C(role), C(stores), C(probes),
    C(iam), C(logs)) and returns findings C({id, severity, title, evidence, fix, folded}),
    most specific cause first, with the symptoms it explains folded under it.
  - Pure, no I/O. Findings never contain a secret.
  - P(credops.pgauth.verdict#filter) turns the findings into V(healthy), V(degraded) or
    V(broken).
options:
  _input:
    description: The facts.
    type: dict
    required: true
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Findings and verdict
  ansible.builtin.set_fact:
    pgauth_findings: "{{ pgauth_facts | credops.pgauth.findings }}"
    pgauth_verdict: "{{ pgauth_facts | credops.pgauth.findings | credops.pgauth.verdict }}"
"""

RETURN = r"""
_value:
  description: The findings.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils import diagnosis


# each filter's function has the filter's name (verdict.yml documents the verdict filter)
def findings(facts: dict) -> list:
    if not isinstance(facts, dict):
        raise AnsibleFilterError("findings expects the diagnose facts as a dict")
    return diagnosis.diagnose(facts)


def verdict(found: list) -> str:
    if not isinstance(found, list):
        raise AnsibleFilterError("verdict expects a list of findings")
    return diagnosis.verdict(found)


class FilterModule:
    def filters(self):
        return {"findings": findings, "verdict": verdict}
