# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""dotenv files (``KEY=value``, ``export KEY='value'``), edited line by line.

No library parses dotenv the way both bash and python-dotenv do, so this one is small and
strict: a key defined twice is an error (bash and python-dotenv use the last definition,
an editor of the first would change nothing that is read), a value that would end its
line early is refused, and the quoting of the line written keeps its old style.
"""
from __future__ import annotations

import re

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
    and_list,
)

# blanks only: \s would take the line end of an empty "KEY=" line into lead or eq, and the
# value written there would land at the start of the next line
_DOTENV_LINE = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)"
                          r"(?P<eq>[ \t]*=[ \t]*)(?P<value>.*?)"
                          r"(?P<trail>\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]?)$")
_DOTENV_SAFE = re.compile(r"^[A-Za-z0-9_\-.:/@%+=,~?&]*$")
# a quoted value, when only blanks or a comment follow it
_DOTENV_QUOTED = re.compile(r"""(?:'[^']*'|"(?:[^"\\]|\\.)*")(?=\s*(?:#|$))""")
# what str.splitlines() ends a line at, and NUL: a value holding one cannot be read back
_DOTENV_FORBIDDEN = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029\x00]")


# -- dotenv --------------------------------------------------------------------------------

def _dotenv_split(raw: str) -> tuple[str, str]:
    """(the value as written, the blanks and comment after it) of what follows 'KEY='."""
    quoted = _DOTENV_QUOTED.match(raw)
    if quoted:
        return raw[:quoted.end()], raw[quoted.end():]
    stripped = raw.strip()
    if len(stripped) >= 2 and stripped[0] in ("'", '"') and stripped[-1] == stripped[0]:
        return raw, ""  # quoted as a whole, however odd the inside
    comment = re.search(r"\s+#", raw)
    return (raw[:comment.start()], raw[comment.start():]) if comment else (raw, "")


def dotenv_unquote(raw: str) -> str:
    raw = _dotenv_split(raw.strip())[0]
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r'\\(["\\$`n])', lambda m: "\n" if m.group(1) == "n" else m.group(1),
                      raw[1:-1])
    return raw.strip()


def dotenv_quote(value: str, original_raw: str = "") -> str:
    if _DOTENV_FORBIDDEN.search(value):
        raise ValueError("a dotenv value cannot hold a line break or NUL")
    if _DOTENV_SAFE.match(value) and not original_raw.strip().startswith(("'", '"')):
        return value
    if "'" not in value:
        return f"'{value}'"
    return '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'


def dotenv_get(text: str, key: str):
    for line in text.splitlines():
        match = _DOTENV_LINE.match(line)
        if match and match.group("key") == key:
            return dotenv_unquote(match.group("value"))
    raise KeyError(key)


def dotenv_lines(text: str, key: str) -> list[int]:
    """The line numbers (1-based) that define key."""
    return [number for number, line in enumerate(text.splitlines(), 1)
            if (match := _DOTENV_LINE.match(line)) and match.group("key") == key]


def dotenv_set(text: str, key: str, value: str) -> str:
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = _DOTENV_LINE.match(line)
        if match and match.group("key") == key:
            raw, comment = _dotenv_split(match.group("value"))
            quoted = dotenv_quote(value, raw)
            if comment and not comment[0].isspace():
                comment = " " + comment  # 'old'# note: an unquoted new value would take it in
            lines[index] = (match.group("lead") + key + match.group("eq") + quoted + comment
                            + match.group("trail"))
            return "".join(lines)
    raise KeyError(key)


class DotenvSyntax(Syntax):
    name = "dotenv"

    @staticmethod
    def _check(text: str, key: str) -> None:
        lines = dotenv_lines(text, key)
        if len(lines) > 1:
            raise FormatError(f"{key} is defined {len(lines)} times (lines {and_list(lines)}); "
                              "bash and python-dotenv use the last one: remove the duplicates")

    def get(self, text: str, keys: list[str]) -> dict:
        values = {}
        for key in keys:
            self._check(text, key)
            try:
                values[key] = dotenv_get(text, key)
            except KeyError:
                raise MissingKey(f"no variable {key} in the file") from None
        return values

    def set(self, text: str, values: dict) -> str:
        for key, value in values.items():
            self._check(text, key)
            try:
                text = dotenv_set(text, key, value)
            except KeyError:
                raise MissingKey(f"no variable {key} in the file") from None
            except ValueError as err:
                raise FormatError(str(err)) from None
        return text
