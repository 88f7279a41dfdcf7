# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base of every error this collection raises on purpose.

A module or plugin catches PgauthError once and reports str(err): by rule the message names
what failed (store, server, file) and never holds a secret.  ``code`` is set where code
elsewhere decides on the kind of failure, so nothing ever matches the message text.
"""
from __future__ import annotations


class PgauthError(Exception):
    def __init__(self, message: str = "", code: str | None = None):
        super().__init__(message)
        self.code = code
