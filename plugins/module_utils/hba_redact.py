# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets out of pg_hba.conf rules: the option lists of pg_hba_file_rules (pg_role_info,
pg_auth_facts) and the raw lines the server logs in 'Connection matched' DETAILs (the log
scan).  Imported through pg_info; no dependencies, so the log scan stays light."""
from __future__ import annotations

import re

# pg_hba.conf options that carry secrets: the LDAP bind password and the RADIUS shared
# secrets (radiussecret before PostgreSQL 10).  No other option of hba.c's
# parse_hba_auth_opt holds one (ldapbinddn, ldapurl, map, clientcert, pamservice... do not).
SECRET_HBA_OPTIONS = ("ldapbindpasswd=", "radiussecrets=", "radiussecret=")


def redact_hba_options(options: list[str] | None) -> list[str] | None:
    if options is None:
        return None
    return [option.split("=", 1)[0] + "=********" if option.lower().startswith(SECRET_HBA_OPTIONS)
            else option for option in options]


# hba.c's tokenizer: words end at a blank outside double quotes, options within a word at a
# comma outside them; '#' starts a comment, whose words are checked too (a commented-out
# old password is still a password).  One character or one quoted run per repetition, so the
# match never backtracks.
_HBA_WORD = re.compile(r'(?:[^ \t\r#"]|"[^"]*(?:"|\Z))+')
_HBA_PART = re.compile(r'(?:[^,"]|"[^"]*(?:"|\Z))+')


def _secret_word(word: str) -> tuple[str, bool] | None:
    """The word with the value of its first secret option (and all after it in the word)
    masked, and whether that value was empty; None when the word holds no secret."""
    for part in _HBA_PART.finditer(word):
        # the server reads the option without its quotes: "ldapbindpasswd=x" is one too
        option = part.group(0).replace('"', "")
        masked = redact_hba_options([option])[0]
        if masked != option:
            empty = option.partition("=")[2] == "" and part.end() == len(word)
            return word[:part.start()] + masked, empty
    return None


def redact_hba_rule(rule: str) -> str:
    """A pg_hba.conf line as the server logs it ('Connection matched pg_hba.conf line 6:
    "host ... ldap ldapbindpasswd=..."'), with redact_hba_options applied to each option."""
    parts, done, mask_next = [], 0, False
    for word in _HBA_WORD.finditer(rule):
        masked = None
        if mask_next:
            masked, mask_next = "********", False
        else:
            secret = _secret_word(word.group(0))
            if secret is not None and secret[1]:
                # 'ldapbindpasswd= secret' does not load, but the next word is the secret
                mask_next = True
            elif secret is not None:
                masked = secret[0]
        if masked is not None:
            parts += [rule[done:word.start()], masked]
            done = word.end()
    parts.append(rule[done:])
    return "".join(parts)
