# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every config-file syntax of a file store implements.

A syntax reads the values at some keys of a file's text and renders the text with new
values at those keys, changing nothing else it can avoid changing (comments, order,
quoting, the other keys).  It never opens a file: FileBackend does the I/O, safe_write the
writing.  Errors are FormatError (with the line, never a value of the file) or MissingKey;
FileBackend turns both into StoreErrors that name the store.
"""
from __future__ import annotations

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# each syntax lives in its own module, file_<format>.py (syntax_for imports it)
FILE_FORMATS = ("yaml", "json", "dotenv", "properties", "ini", "toml", "pgpass", "k8s_secret",
                "pgbouncer_userlist")


class FormatError(PgauthError):
    """The file's text cannot be read (or written) in its syntax.  The message says what
    and where, never a value from the file."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message + (f" (line {line})" if line else ""))
        self.line = line


class MissingKey(FormatError):
    """The file is well-formed and has no such key."""


def missing_library(fmt: str, package: str) -> FormatError:
    return FormatError(f"the {fmt} format needs the Python library {package} on the host "
                       f"that runs the module: pip install {package}")


class Syntax:
    """One file syntax.  spec is the store dict (a syntax may read its own keys from it,
    such as k8s_secret's document)."""

    name = ""
    # the value format the syntax's values always have (a verifier entry), or None: the
    # store's value_format option (or a guess) decides
    value_format: str | None = None

    def __init__(self, spec: dict):
        self.spec = spec
        # what a write did that the user should know (comments lost), one sentence each
        self.warnings: list[str] = []

    def get(self, text: str, keys: list[str]) -> dict:
        """{key: value} for each key; MissingKey when one is absent."""
        raise NotImplementedError

    def set(self, text: str, values: dict) -> str:
        """text with each key's value replaced by values[key]."""
        raise NotImplementedError

    def file_problem(self, mode: int) -> str | None:
        """Why the file's consumer would not use a file with this mode, or None."""
        return None


def syntax_for(fmt: str, spec: dict) -> Syntax:
    # each import is written out: Ansible ships a module only the module_utils its code
    # names in import statements (a computed importlib name would be missing on the node)
    # pylint: disable=import-outside-toplevel
    if fmt == "yaml":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_yaml import (
            YamlSyntax as Chosen,
        )
    elif fmt == "json":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_json import (
            JsonSyntax as Chosen,
        )
    elif fmt == "dotenv":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_dotenv import (
            DotenvSyntax as Chosen,
        )
    elif fmt == "properties":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_properties import (
            PropertiesSyntax as Chosen,
        )
    elif fmt == "ini":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_ini import (
            IniSyntax as Chosen,
        )
    elif fmt == "toml":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_toml import (
            TomlSyntax as Chosen,
        )
    elif fmt == "pgpass":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_pgpass import (
            PgpassSyntax as Chosen,
        )
    elif fmt == "k8s_secret":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_k8s_secret import (
            K8sSecretSyntax as Chosen,
        )
    elif fmt == "pgbouncer_userlist":
        from ansible_collections.credops.pgauth.plugins.module_utils.file_userlist import (
            UserlistSyntax as Chosen,
        )
    else:
        raise KeyError(fmt)
    return Chosen(spec)


def and_list(items: list) -> str:
    return ", ".join(map(str, items[:-1])) + f" and {items[-1]}" if len(items) > 1 \
        else str(items[0])


def refuse_line_breaks(value: str, fmt: str, also: str = "") -> None:
    """A value that would end its line early cannot be written in a line-based syntax."""
    if any(char in value for char in "\n\r\x00" + also):
        raise FormatError(f"a {fmt} value cannot hold a line break or NUL")


# -- dotted paths in nested mappings (YAML, JSON, TOML) -----------------------------------

def path_get(data, path: list[str]):
    node = data
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            where = ".".join(path[:depth]) or "the document root"
            raise MissingKey(f"{where} is a {type(node).__name__}, not a mapping")
        if part not in node:
            raise MissingKey(f"no key {'.'.join(path[:depth + 1])!r}")
        node = node[part]
    return node


def path_set(data, path: list[str], value) -> None:
    parent = path_get(data, path[:-1]) if len(path) > 1 else data
    if not isinstance(parent, dict):
        raise MissingKey(f"{'.'.join(path[:-1])} is not a mapping")
    parent[path[-1]] = value
