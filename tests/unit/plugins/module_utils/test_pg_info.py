"""Secrets that pg_hba.conf options may carry never leave pg_role_info."""
from __future__ import annotations

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils.hba_redact import redact_hba_rule
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


@pytest.mark.parametrize(("rule", "redacted"), [
    ("host all all 0.0.0.0/0 ldap ldapserver=h ldapbindpasswd=s3cr3t",
     "host all all 0.0.0.0/0 ldap ldapserver=h ldapbindpasswd=********"),
    # quoted, with blanks and commas inside the quotes
    ('host all all 0/0 ldap ldapbinddn="cn=a, dc=b" ldapbindpasswd="s3 cr,3t" ldaptls=1',
     'host all all 0/0 ldap ldapbinddn="cn=a, dc=b" ldapbindpasswd=******** ldaptls=1'),
    # the server reads a quoted option the same
    ('host all all 0/0 ldap "ldapbindpasswd=s3cr3t"',
     "host all all 0/0 ldap ldapbindpasswd=********"),
    # options joined by a comma are options each; the rest of the word goes with the secret
    ("host all all 0/0 ldap ldapserver=h,ldapbindpasswd=s3cr3t,ldaptls=1",
     "host all all 0/0 ldap ldapserver=h,ldapbindpasswd=********"),
    # RADIUS, in the docs' doubled-quote form
    ('host all all 0/0 radius radiusservers="a,b" radiussecrets="""s 1"",""s 2"""',
     'host all all 0/0 radius radiusservers="a,b" radiussecrets=********'),
    ("host all all 0/0 radius radiusserver=a radiussecret=s3cr3t",
     "host all all 0/0 radius radiusserver=a radiussecret=********"),
    # a commented-out old password; a value after a blank
    ("host all all 0/0 ldap ldapbindpasswd=new # old: ldapbindpasswd=s3cr3t",
     "host all all 0/0 ldap ldapbindpasswd=******** # old: ldapbindpasswd=********"),
    ("host all all 0/0 ldap ldapbindpasswd= s3cr3t",
     "host all all 0/0 ldap ldapbindpasswd= ********"),
    # an unterminated quote runs to the end
    ('host all all 0/0 ldap ldapbindpasswd="s3cr3t and more',
     "host all all 0/0 ldap ldapbindpasswd=********"),
    # nothing secret: as it was
    ("hostssl all +rds_iam 127.0.0.1/32 pam pamservice=pgauth-lab",
     "hostssl all +rds_iam 127.0.0.1/32 pam pamservice=pgauth-lab"),
])
def test_redact_hba_rule(rule, redacted):
    assert redact_hba_rule(rule) == redacted
    assert redact_hba_rule(redacted) == redacted
