# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Java ``.properties`` files (Spring's application.properties), edited line by line.

Read as java.util.Properties.load reads them: logical lines joined at an odd number of
trailing backslashes, ``#``/``!`` comments, the key ending at the first unescaped ``=``,
``:`` or blank, the ``\\t \\n \\r \\f \\uXXXX`` escapes.  jproperties reads the same way (the
unit tests check both agree), but writes the whole file anew, without its comments and
with every separator and escape changed; so the logical line of the key is replaced here
and nothing else is touched.  Values are written the way Properties.store writes them,
with non-ASCII as ``\\uXXXX``: Spring Boot reads .properties as ISO-8859-1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
    and_list,
)

_BLANK = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_PHYSICAL = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


@dataclass
class Entry:
    key: str
    value: str
    first: int          # index of the first physical line
    last: int           # index of the last physical line (continuations)
    line: int           # 1-based line number, for errors
    head: str           # the indentation, key and separator as written
    separated: bool     # a separator (=, : or a blank) follows the key


def _physical_lines(text: str) -> list[str]:
    lines = _PHYSICAL.findall(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _body(line: str) -> str:
    return line.rstrip("\r\n")


def _continues(body: str) -> bool:
    return (len(body) - len(body.rstrip("\\"))) % 2 == 1


def unescape(raw: str, line: int) -> str:
    out, index = [], 0
    while index < len(raw):
        char = raw[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        nxt = raw[index + 1:index + 2]
        if nxt == "u":
            digits = raw[index + 2:index + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise FormatError("the file is not valid properties: a malformed \\uXXXX "
                                  "escape", line)
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        index += 2
    # \uD83D\uDE00 is one character to Java: join the UTF-16 halves
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _split_key(logical: str) -> tuple[int, int]:
    """(end of the key, start of the value) in a logical line that starts at its key."""
    index = 0
    while index < len(logical):
        char = logical[index]
        if char == "\\":
            index += 2
            continue
        if char in "=:" + _BLANK:
            break
        index += 1
    key_end = min(index, len(logical))
    index = key_end
    while index < len(logical) and logical[index] in _BLANK:
        index += 1
    if index < len(logical) and logical[index] in "=:":
        index += 1
        while index < len(logical) and logical[index] in _BLANK:
            index += 1
    return key_end, index


def entries(text: str) -> list[Entry]:
    lines = _physical_lines(text)
    found, index = [], 0
    while index < len(lines):
        body = _body(lines[index]).lstrip(_BLANK)
        # a lone backslash continues an empty line: Java starts the next one afresh (at
        # the end of the file it is an entry with an empty key, as Java reads it)
        if not body or body[0] in "#!" or (body == "\\" and index + 1 < len(lines)):
            index += 1
            continue
        first, logical = index, body
        while _continues(logical) and index + 1 < len(lines):
            index += 1
            logical = logical[:-1] + _body(lines[index]).lstrip(_BLANK)
        if _continues(logical):
            logical = logical[:-1]  # a backslash at the end of the file continues to nothing
        key_end, value_start = _split_key(logical)
        indent = _body(lines[first])[:len(_body(lines[first])) - len(body)]
        key = unescape(logical[:key_end], first + 1)
        found.append(Entry(key, unescape(logical[value_start:], first + 1), first, index,
                           first + 1, indent + logical[:value_start], value_start > key_end))
        index += 1
    return found


def escape(value: str) -> str:
    """The value as Properties.store writes it (ASCII only)."""
    out = []
    for position, char in enumerate(value):
        if char == "\\":
            out.append("\\\\")
        elif char in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[char])
        elif char == " " and position == 0:
            out.append("\\ ")  # a leading blank would be skipped as the separator's
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend(_utf16_escapes(char))
    return "".join(out)


def _utf16_escapes(char: str) -> list[str]:
    data = char.encode("utf-16-be", "surrogatepass")
    return [f"\\u{int.from_bytes(data[i:i + 2], 'big'):04X}" for i in range(0, len(data), 2)]


class PropertiesSyntax(Syntax):
    name = "properties"

    @staticmethod
    def _entry(found: list[Entry], key: str) -> Entry:
        defining = [entry for entry in found if entry.key == key]
        if not defining:
            raise MissingKey(f"no key {key} in the file")
        if len(defining) > 1:
            raise FormatError(f"{key} is defined {len(defining)} times (lines "
                              f"{and_list([entry.line for entry in defining])}); Java uses the "
                              "last one: remove the duplicates")
        return defining[0]

    def get(self, text: str, keys: list[str]) -> dict:
        found = entries(text)
        return {key: self._entry(found, key).value for key in keys}

    def set(self, text: str, values: dict) -> str:
        for key, value in values.items():
            if not isinstance(value, str):
                raise FormatError(f"a properties value is text, not a {type(value).__name__}")
            lines = _physical_lines(text)
            entry = self._entry(entries(text), key)
            ending = lines[entry.last][len(_body(lines[entry.last])):] or ""
            if not ending and entry.last + 1 < len(lines):
                ending = "\n"
            # "key" alone has no separator: the new value needs one
            head = entry.head if entry.separated else entry.head + "="
            lines[entry.first:entry.last + 1] = [head + escape(value) + ending]
            text = "".join(lines)
        return text
