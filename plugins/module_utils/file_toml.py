# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOML files through tomlkit's style-preserving document model (comments, order,
whitespace and the other keys are kept).  A literal string stays literal when the new
value can be one; otherwise it becomes a basic string with escapes."""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    Syntax,
    missing_library,
    path_get,
    path_set,
)

try:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError as TomlParseError
    from tomlkit.items import String, StringType
except ImportError:
    tomlkit = None

    class TomlParseError(Exception):
        """Stands in for tomlkit's error class, never raised."""


def _literal_ok(value: str) -> bool:
    return "'" not in value and all(char == "\t" or (ord(char) >= 0x20 and char != "\x7f")
                                    for char in value)


class TomlSyntax(Syntax):
    name = "toml"

    def _parse(self, text: str):
        if tomlkit is None:
            raise missing_library(self.name, "tomlkit")
        try:
            return tomlkit.parse(text)
        except TomlParseError as err:
            # tomlkit's message may quote the file's text: only the kind and the line go out
            what = "a key is defined twice" if "already exists" in str(err) else \
                "the file is not valid toml"
            raise FormatError(what, getattr(err, "line", None)) from None
        except (ValueError, RecursionError):
            raise FormatError("the file is not valid toml") from None

    def get(self, text: str, keys: list[str]) -> dict:
        document = self._parse(text)
        values = {}
        for key in keys:
            value = path_get(document, key.split("."))
            values[key] = value.unwrap() if hasattr(value, "unwrap") else value
        return values

    def set(self, text: str, values: dict) -> str:
        document = self._parse(text)
        for key, value in values.items():
            path = key.split(".")
            current = path_get(document, path)
            path_set(document, path, self._item(current, value))
        return tomlkit.dumps(document)

    @staticmethod
    def _item(current, value):
        """The new value, in the old one's type and string style where it fits."""
        if isinstance(current, bool) or not isinstance(value, str):
            return value
        if isinstance(current, int) and value.isdigit():
            return int(value)  # a port stays a number
        literal = isinstance(current, String) and current.type in (
            StringType.SLL, StringType.MLL) and _literal_ok(value)
        try:
            return tomlkit.string(value, literal=literal)
        except ValueError:
            return tomlkit.string(value)
