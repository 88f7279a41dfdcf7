# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""INI files, ``pg_service.conf`` among them, through configupdater's round trip.

``key`` is ``section.option`` (split at the last dot: a libpq service may be named
``prod.app``).  Values are raw, as libpq reads a service file (no interpolation, no inline
comments).  libpq reads ``option=value`` with no blank around the ``=`` (``password = x``
is a syntax error to it), so a changed line keeps the spacing its old line had.
"""
from __future__ import annotations

import re

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
    missing_library,
    refuse_line_breaks,
)

try:
    import configparser

    from configupdater import ConfigUpdater
except ImportError:
    ConfigUpdater = None

_SPACED = re.compile(r"^[^=:]*?\s[=:]")


def _split(key: str) -> tuple[str, str]:
    section, dot, option = key.rpartition(".")
    if not dot or not section or not option:
        raise MissingKey(f"an ini key is section.option, not {key!r}")
    return section, option


class IniSyntax(Syntax):
    name = "ini"

    def _parse(self, text: str, spaced: bool = True):
        if ConfigUpdater is None:
            raise missing_library(self.name, "configupdater")
        updater = ConfigUpdater(space_around_delimiters=spaced)
        try:
            updater.read_string(text)
        except configparser.DuplicateOptionError as err:
            raise FormatError(f"option {err.option} of [{err.section}] is defined twice",
                              err.lineno) from None
        except configparser.DuplicateSectionError as err:
            raise FormatError(f"section [{err.section}] is defined twice", err.lineno) from None
        except (configparser.Error, ValueError) as err:
            raise FormatError("the file is not valid ini", getattr(err, "lineno", None)) \
                from None
        return updater

    @staticmethod
    def _option(updater, key: str):
        section, option = _split(key)
        if not updater.has_section(section):
            raise MissingKey(f"no section [{section}] in the file")
        if not updater.has_option(section, option):
            raise MissingKey(f"no option {option} in section [{section}]")
        return updater[section][option]

    def get(self, text: str, keys: list[str]) -> dict:
        updater = self._parse(text)
        values = {}
        for key in keys:
            value = self._option(updater, key).value
            values[key] = "" if value is None else value
        return values

    def set(self, text: str, values: dict) -> str:
        for key, value in values.items():
            if not isinstance(value, str):
                value = str(value)
            refuse_line_breaks(value, self.name)
            if value != value.strip():
                raise FormatError("an ini value cannot start or end with a blank (the "
                                  "parser strips it)")
            old_line = "".join(self._option(self._parse(text), key).lines)
            updater = self._parse(text, spaced=bool(_SPACED.match(old_line)))
            self._option(updater, key).value = value
            text = str(updater)
        return text
