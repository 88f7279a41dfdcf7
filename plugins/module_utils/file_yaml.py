# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML files, edited so that what is not the value stays as it was.

Three tiers, best first (measured on the unit corpus, see docs/stores.md):

1. a block-style plain or quoted scalar is replaced on its own line: byte-exact elsewhere;
2. anything else (an anchor, a flow mapping, a block scalar) goes through ruamel.yaml's
   round-trip loader and dumper: comments, anchors, quoting and flow style survive, but
   ruamel re-indents sequences and normalizes spacing, which is why it is not tier 1;
3. without ruamel.yaml, a full re-dump with PyYAML, which loses comments (a warning says so).

Reading is PyYAML's safe loader (what the application most likely uses too).
"""
from __future__ import annotations

import io
import re

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
    path_get,
    path_set,
)

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

try:
    from ruamel.yaml import YAML as RuamelYAML
    from ruamel.yaml.error import YAMLError as RuamelError
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString
    from ruamel.yaml.util import load_yaml_guess_indent
except ImportError:  # the re-dump of tier 3 is used instead
    RuamelYAML = None
    RuamelError = Exception
    ScalarString = DoubleQuotedScalarString = str


def parse_yaml(text: str, fmt: str = "yaml"):
    try:
        return yaml.safe_load(text) or {}
    except RecursionError:
        raise FormatError(f"the file is not valid {fmt} (nested too deeply)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise FormatError(f"the file is not valid {fmt}",
                          mark.line + 1 if mark is not None else None) from None


def _yaml_scalar(value) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def _split_comment(rest: str) -> tuple[str, str]:
    """(scalar, trailing spaces and comment) of what follows 'key:' on a line."""
    stripped = rest.lstrip()
    if stripped[:1] in ("'", '"'):
        quote_char, i = stripped[0], 1
        while i < len(stripped):
            if quote_char == '"' and stripped[i] == "\\":
                i += 2
                continue
            if stripped[i] == quote_char:
                if quote_char == "'" and stripped[i + 1:i + 2] == "'":
                    i += 2
                    continue
                break
            i += 1
        end = len(rest) - len(stripped) + i + 1
        return rest[:end], rest[end:]
    # the first '#' after whitespace starts the comment (a scan, not a regex: the file's owner
    # writes these lines, and `\s+#` searched over a long run of spaces is quadratic)
    hash_at = rest.find("#")
    while hash_at != -1 and (hash_at == 0 or not rest[hash_at - 1].isspace()):
        hash_at = rest.find("#", hash_at + 1)
    if hash_at == -1:
        return rest, ""
    start = len(rest[:hash_at].rstrip())
    return rest[:start], rest[start:]


# The key is words separated by whitespace, so that the text before the colon is matched
# in linear time: a lazy `[^:#]*?` before `\s*:` backtracks quadratically on a long line
# without a colon.
_YAML_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#:'\"](?:\s*[^\s:#])*|'[^']*'|"
                            r"\"[^\"]*\")(?P<colon>\s*:)(?P<rest>.*?)(?P<nl>\r?\n?)$")


def yaml_set_in_place(text: str, path: list[str], value) -> str | None:
    """Replace one block-style scalar in place; None when the line cannot be found safely."""
    lines = text.splitlines(keepends=True)
    depth, parent_indent = 0, -1
    level_indent = None  # the indent of the keys at this depth, set by the first one
    for index, line in enumerate(lines):
        match = _YAML_KEY_LINE.match(line)
        if not match or line.lstrip().startswith(("#", "-")):
            continue
        indent = len(match.group("indent"))
        if indent <= parent_indent:
            return None  # left the parent mapping without finding the key
        if level_indent is None:
            level_indent = indent
        if indent != level_indent:
            continue  # a key of a mapping nested in a sibling: b.a is not the a looked for
        key = match.group("key").strip().strip("'\"")
        if key != path[depth]:
            continue
        if depth == len(path) - 1:
            scalar_text, trailing = _split_comment(match.group("rest"))
            if scalar_text.strip().startswith(("|", ">", "&", "*", "!", "{", "[")):
                return None
            lines[index] = (match.group("indent") + match.group("key") + match.group("colon")
                            + " " + _yaml_scalar(value) + trailing + match.group("nl"))
            return "".join(lines)
        depth += 1
        parent_indent, level_indent = indent, None
    return None


def ruamel_set(text: str, values: dict[tuple, object], quote: bool = False) -> str | None:
    """Tier 2: ruamel.yaml's round trip; None without ruamel or when it cannot.  quote:
    every new string double-quoted (ruamel writes '?0' plain in a flow mapping, which
    PyYAML, like other YAML 1.1 readers, cannot read)."""
    if RuamelYAML is None:
        return None
    try:
        _data, indent, block_seq_indent = load_yaml_guess_indent(text)
        editor = RuamelYAML(typ="rt")
        editor.preserve_quotes = True
        editor.width = 1 << 30
        editor.indent(mapping=indent or 2, sequence=(indent or 2) + (block_seq_indent or 0),
                      offset=block_seq_indent or 0)
        data = editor.load(text)
        for path, value in values.items():
            for leaf_path, leaf_value in _leaves(list(path), value):
                if quote and isinstance(leaf_value, str):
                    leaf_value = DoubleQuotedScalarString(leaf_value)
                _ruamel_leaf(data, leaf_path, leaf_value)
        out = io.StringIO()
        editor.dump(data, out)
    except (RuamelError, MissingKey, ValueError, TypeError, RecursionError):
        return None
    new_text = out.getvalue()
    return new_text if new_text.startswith("---") or not text.startswith("---") \
        else "---\n" + new_text


def _ruamel_leaf(data, path: list[str], value) -> None:
    """Set one leaf in ruamel's tree, in the quoting style of the old scalar: a flow
    mapping edited leaf by leaf stays a flow mapping."""
    try:
        old = path_get(data, path)
    except MissingKey:
        old = None
    style = type(old)
    if isinstance(old, ScalarString) and isinstance(value, str) and style is not ScalarString \
            and not isinstance(value, DoubleQuotedScalarString):
        value = style(value)
    path_set(data, path, value)


def _leaves(path: list[str], value) -> list[tuple[list[str], object]]:
    """A mapping value is written leaf by leaf, so each leaf can be edited on its line."""
    if isinstance(value, dict):
        return [([*path, key], leaf) for key, leaf in value.items()]
    return [(path, value)]


class YamlSyntax(Syntax):
    name = "yaml"

    def get(self, text: str, keys: list[str]) -> dict:
        data = parse_yaml(text, self.name)
        return {key: path_get(data, key.split(".")) for key in keys}

    def set(self, text: str, values: dict) -> str:
        return self.set_paths(text, {tuple(key.split(".")): value
                                     for key, value in values.items()})

    def set_paths(self, text: str, values: dict[tuple, object]) -> str:
        """set(), with each key already split into its path (a key may hold a dot)."""
        data = parse_yaml(text, self.name)
        expected = parse_yaml(text, self.name)
        for path, value in values.items():
            path_set(expected, list(path), value)
        new_text = self._in_place(text, data, values)
        if new_text is not None and self._reads_as(new_text, expected):
            return new_text
        for quote in (False, True):
            tier2 = ruamel_set(text, values, quote)
            if tier2 is not None and self._reads_as(tier2, expected):
                return tier2
        self.warnings.append(f"{', '.join('.'.join(path) for path in values)} could not be "
                             "edited in place; the YAML file was re-written and its comments "
                             "were lost (install ruamel.yaml to keep them)")
        return yaml.safe_dump(expected, default_flow_style=False, sort_keys=False,
                              allow_unicode=True)

    def _reads_as(self, text: str, expected) -> bool:
        try:
            return parse_yaml(text, self.name) == expected
        except FormatError:
            return False

    @staticmethod
    def _in_place(text: str, data, values: dict) -> str | None:
        for path, value in values.items():
            for leaf_path, leaf_value in _leaves(list(path), value):
                try:
                    current = path_get(data, leaf_path)
                except MissingKey:
                    current = object()
                if current == leaf_value:
                    continue
                edited = None if isinstance(leaf_value, (dict, list)) else \
                    yaml_set_in_place(text, leaf_path, leaf_value)
                if edited is None:
                    return None
                text = edited
        return text
