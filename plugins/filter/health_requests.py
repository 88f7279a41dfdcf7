# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: health_requests
short_description: Health URLs as requests whose credentials stay out of the output
version_added: 0.1.0
description:
  - For each URL of the verify runbook, a dict for M(ansible.builtin.uri). C(url) is the URL
    without its user name and password; C(username), C(password) and C(basic_auth) carry them
    to the module's C(url_username), C(url_password) (hidden by the module) and
    C(force_basic_auth), so a URL's C(user:password) is sent with the first request, as curl
    sends it. C(label) is the URL to show, with C(***) for the user name and password and for
    the values of secret-looking query parameters (C(token), C(password), C(key),
    C(signature), ...).
  - A URL whose user name or password holds an unencoded C(/), C(?), C(#) or C(@), or with an
    C(@) in its path after a port, cannot be read safely (it would go to another host than
    meant); it gets an C(error) and must not be requested (the verify role skips it and its
    check fails with that error).
  - The task asking the URLs should be C(no_log), since a query parameter may be a
    credential; P(credops.pgauth.verify_checks#filter) shows each result by its C(label).
options:
  _input:
    description: The URLs (C(pgauth_health_urls)).
    type: list
    elements: str
    required: true
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: Ask the health URLs
  ansible.builtin.uri:
    url: "{{ item.url }}"
    url_username: "{{ item.username or omit }}"
    url_password: "{{ item.password or omit }}"
    force_basic_auth: "{{ item.basic_auth }}"
  loop: "{{ pgauth_health_urls | credops.pgauth.health_requests }}"
  when: not item.error
  no_log: true
  register: health
"""

RETURN = r"""
_value:
  description: One request per URL, C({url, username, password, basic_auth, label, error}).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.pgauth.plugins.module_utils import verification


def health_requests(urls) -> list:
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise AnsibleFilterError("health_requests expects a list of URLs")
    return verification.health_requests(urls)


class FilterModule:
    def filters(self):
        return {"health_requests": health_requests}
