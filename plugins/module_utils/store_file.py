# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Application config files as a store: YAML, JSON and dotenv, one key at a time.

Writes change only the value at ``key`` and leave the rest of the file as it was:
dotenv and YAML are edited line by line, so comments, order and quoting elsewhere
survive (a YAML value that is not a plain block-style scalar falls back to a full
re-dump, which loses comments; the module warns when that happens).  JSON files are
re-serialized with the indentation found in the file.  Every write is atomic (a
temporary file in the same directory, fsync, rename) and keeps the file's owner, group,
mode and extended attributes (ACLs); ``backup: true`` keeps a copy first, as the original
(``backup_keep`` the newest N).  Files are opened and created as safe_write describes: a
symlink is followed only when root or the running user owns it, so the owner of the
file's directory cannot make root read or write another file.
"""
from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.credops.pgauth.plugins.module_utils import safe_write
from ansible_collections.credops.pgauth.plugins.module_utils.store import Backend, StoredValue

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

FILE_FORMATS = ("yaml", "json", "dotenv")
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


def _and_list(items: list) -> str:
    return ", ".join(map(str, items[:-1])) + f" and {items[-1]}" if len(items) > 1 \
        else str(items[0])


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


# -- YAML and JSON documents -----------------------------------------------------------------

def path_get(data, path: list[str]):
    node = data
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            where = ".".join(path[:depth]) or "the document root"
            raise KeyError(f"{where} is a {type(node).__name__}, not a mapping")
        if part not in node:
            raise KeyError(f"no key {'.'.join(path[:depth + 1])!r}")
        node = node[part]
    return node


def path_set(data, path: list[str], value) -> None:
    parent = path_get(data, path[:-1]) if len(path) > 1 else data
    if not isinstance(parent, dict):
        raise KeyError(f"{'.'.join(path[:-1])} is not a mapping")
    parent[path[-1]] = value


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
    comment = re.search(r"\s+#.*$", rest)
    return (rest[:comment.start()], comment.group(0)) if comment else (rest, "")


_YAML_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#:'\"][^:#]*?|'[^']*'|\"[^\"]*\")"
                            r"(?P<colon>\s*:)(?P<rest>.*?)(?P<nl>\r?\n?)$")


def yaml_set_in_place(text: str, path: list[str], value) -> str | None:
    """Replace one block-style scalar in place; None when the line cannot be found safely."""
    lines = text.splitlines(keepends=True)
    depth, parent_indent, start = 0, -1, 0
    level_indent = None  # the indent of the keys at this depth, set by the first one
    for index in range(start, len(lines)):
        match = _YAML_KEY_LINE.match(lines[index])
        if not match or lines[index].lstrip().startswith(("#", "-")):
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


class FileBackend(Backend):
    supports_pending = False

    def __init__(self, spec: dict, options: dict):
        # describe() needs these, and Backend.__init__ calls it for a store without a name
        self.path = spec.get("path")
        self.file_format = spec.get("format") or "dotenv"
        self.key = spec.get("key")
        super().__init__(spec, options)
        if not self.path:
            raise self.error("path is required")
        if self.file_format not in FILE_FORMATS:
            raise self.error(f"format must be one of {', '.join(FILE_FORMATS)} for a file store")
        if not self.key:
            raise self.error("key is required (a dotted path, or a variable name for dotenv)")
        keep = self.spec.get("backup_keep")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)
                                 or keep < 1):
            raise self.error("backup_keep must be a whole number of at least 1 (leave it out "
                             "to keep every backup)")
        self.value_is_text = self.spec.get("value_format") in ("password", "dsn")

    def describe(self) -> str:
        return f"file {self.path} [{self.key}]"

    def shared_resource(self) -> str | None:
        # two keys of one file (DATABASE_URL and PGPASSWORD in one .env) are two stores:
        # written at once, each would replace the file with its own copy
        return os.path.realpath(self.path)

    def _open(self) -> safe_write.OpenedFile:
        try:
            return safe_write.open_regular(self.path)
        except safe_write.UnsafeFileError as err:
            raise self.error(str(err)) from None
        except FileNotFoundError:
            raise self.error("the file does not exist") from None
        except PermissionError:
            raise self.error("permission denied reading the file") from None
        except OSError as err:
            raise self.error(f"cannot open the file: {err.strerror}") from None

    def _decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("the file is not UTF-8 text") from None

    def _check_dotenv(self, text: str) -> None:
        """A key defined twice is a broken file, not a value to replace: this would read and
        write the first, while bash and python-dotenv use the last."""
        lines = dotenv_lines(text, self.key)
        if len(lines) > 1:
            raise self.error(f"{self.key} is defined {len(lines)} times (lines "
                             f"{_and_list(lines)}); bash and python-dotenv use the last one: "
                             "remove the duplicates")

    def _parse(self, text: str):
        try:
            if self.file_format == "json":
                return json.loads(text) if text.strip() else {}
            return yaml.safe_load(text) or {}
        except RecursionError:
            raise self.error(f"the file is not valid {self.file_format} (nested too "
                             "deeply)") from None
        except (ValueError, yaml.YAMLError) as err:
            mark = getattr(err, "problem_mark", None) or getattr(err, "lineno", None)
            line = mark.line + 1 if hasattr(mark, "line") else mark
            raise self.error(f"the file is not valid {self.file_format}"
                             + (f" (line {line})" if line else "")) from None

    def _value_in(self, text: str):
        if self.file_format == "dotenv":
            self._check_dotenv(text)
            try:
                return dotenv_get(text, self.key)
            except KeyError:
                raise self.error(f"no variable {self.key} in the file") from None
        try:
            value = path_get(self._parse(text), self.key.split("."))
        except KeyError as err:
            raise self.error(str(err.args[0])) from None
        if self.spec.get("value_format") in ("password", "dsn") and not isinstance(value, str):
            raise self.error(f"{self.key} holds a {type(value).__name__}, not a string")
        return value

    def read(self, stage: str) -> StoredValue | None:
        if stage != "current":
            return None
        with self._open() as opened:
            text = self._decode(self._read(opened))
            stat = opened.stat
        value = self._value_in(text)
        self.value_is_text = isinstance(value, str)
        changed = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc)
        return StoredValue(value, str(stat.st_mtime_ns), ["current"], changed.isoformat())

    def _read(self, opened: safe_write.OpenedFile) -> bytes:
        try:
            return opened.read()
        except OSError as err:
            raise self.error(f"cannot read the file: {err.strerror}") from None

    def _render(self, text: str, value) -> str:
        if self.file_format == "dotenv":
            self._check_dotenv(text)
            try:
                return dotenv_set(text, self.key, value)
            except ValueError as err:
                raise self.error(str(err)) from None
        path = self.key.split(".")
        data = self._parse(text)
        if self.file_format == "json":
            path_set(data, path, value)
            indent = re.search(r"\n( +|\t)\S", text)
            return json.dumps(data, indent=indent.group(1) if indent else None,
                              ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
        leaves = value.items() if isinstance(value, dict) else [(None, value)]
        new_text = text
        for leaf_key, leaf_value in leaves:
            leaf_path = [*path, leaf_key] if leaf_key is not None else path
            try:
                current = path_get(data, leaf_path)
            except KeyError:
                current = object()
            if current == leaf_value:
                continue
            edited = yaml_set_in_place(new_text, leaf_path, leaf_value) if \
                not isinstance(leaf_value, (dict, list)) else None
            if edited is None:
                break
            new_text = edited
        else:
            expected = self._parse(text)
            path_set(expected, path, value)
            if self._parse(new_text) == expected:
                return new_text
        self.warnings.append(f"store {self.label!r}: {self.key} could not be edited in place; "
                             "the YAML file was re-written and its comments were lost")
        path_set(data, path, value)
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=False,
                              allow_unicode=True)

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        if stage != "current":
            raise self.error("file stores have no pending stage")
        with self._open() as opened:
            # the content, the backup and the rewrite all come from this one open file
            data = self._read(opened)
            new_text = self._render(self._decode(data), value)
            try:
                safe_write.check_owner_kept(opened.stat, opened.path)
            except safe_write.UnsafeFileError as err:
                raise self.error(str(err)) from None
            backup = self._backup(opened, data) if self.spec.get("backup") else None
            try:
                written = safe_write.replace(opened, new_text.encode("utf-8"))
            except (OSError, safe_write.UnsafeFileError) as err:
                if backup:
                    # the file did not change: a copy of it would only be one more copy of
                    # the secret to clean up
                    safe_write.remove_backup(opened, backup)
                raise self.error(f"cannot write the file: {self._reason(err)}") from None
            if backup and self.spec.get("backup_keep"):
                try:
                    safe_write.prune_backups(opened, self.spec["backup_keep"])
                except OSError as err:
                    self.warnings.append(f"store {self.label!r}: old backups were not "
                                         f"removed: {err.strerror}")
        return str(written.st_mtime_ns)

    @staticmethod
    def _reason(err: Exception) -> str:
        if isinstance(err, OSError):
            return (err.strerror or str(err)) + (f" ({err.filename})" if err.filename else "")
        return str(err)

    def _backup(self, opened: safe_write.OpenedFile, data: bytes) -> str:
        try:
            return safe_write.write_backup(opened, data)
        except (OSError, safe_write.UnsafeFileError) as err:
            raise self.error(f"cannot write the backup copy: {self._reason(err)}") from None
