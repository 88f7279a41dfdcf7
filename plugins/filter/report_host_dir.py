# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: report_host_dir
short_description: The directory name of an inventory host's reports
version_added: 0.1.0
description:
  - The name of the subdirectory of C(pgauth_report_dir) that M(credops.pgauth.report) writes
    a host's reports to, by the same rule, so a playbook can find them (the verify role reads
    the last rotation's C(rotate.json) this way).
  - A host name made only of lower-case letters, digits and C(_), C(.), C(@), C(:) and
    C(-), not starting with C(.) or C(-), without C(..), at most 128 characters long and not
    ending in C(-) and 8 hexadecimal digits is used as it is. Any other name becomes a
    readable form (every other character, and a leading C(.) or C(-), replaced by C(_), cut
    to 128 characters) followed by C(-) and the first 8 hexadecimal digits of the SHA-256 of
    the exact host name, so C(db 1), C(db/1) and C(db_1) get three directories. Upper-case
    letters are kept but get the hash too, so that a case-insensitive file system does not
    fold C(DB1) into C(db1).
options:
  _input:
    description: The inventory host name (C(inventory_hostname)).
    type: str
    required: true
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Read the last rotation's report of this host
  ansible.builtin.set_fact:
    last_rotation: >-
      {{ lookup('ansible.builtin.file', pgauth_report_dir ~ '/'
         ~ (inventory_hostname | credops.pgauth.report_host_dir) ~ '/rotate.json') | from_json }}
"""

RETURN = r"""
_value:
  description:
    - A single directory name (never a path), such as C(db1), or C(db_1-4e0107b2) for C(db 1).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils import report


def report_host_dir(host) -> str:
    if not isinstance(host, str):
        raise AnsibleFilterError("report_host_dir expects an inventory host name (a string)")
    return report.report_host_dir(host)


class FilterModule:
    def filters(self):
        return {"report_host_dir": report_host_dir}
