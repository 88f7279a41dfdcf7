"""Secrets that pg_hba.conf options may carry never leave pg_role_info."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.pg_info import redact_hba_options


def test_redacts_ldap_and_radius_secrets():
    options = ["ldapserver=ldap.example", "ldapbinddn=cn=pg", "ldapbindpasswd=s3cr3t",
               "radiusservers=r1", "radiussecrets=shared1,shared2", "pamservice=lab"]
    assert redact_hba_options(options) == [
        "ldapserver=ldap.example", "ldapbinddn=cn=pg", "ldapbindpasswd=********",
        "radiusservers=r1", "radiussecrets=********", "pamservice=lab"]


def test_no_options():
    assert redact_hba_options(None) is None
    assert redact_hba_options([]) == []
