# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's file scope: glob -> file stores, one per key (or group of keys) that holds a
password or a connection string.

The file's syntax is chosen by its name (then, for YAML, by whether it is a Kubernetes
Secret); the document is parsed into flat keys in the syntax's own key notation (the
dotted paths, VAR names, section.option names and host:port:db:user lines that file stores
take), and a key whose name says password, or whose value is a DSN, becomes a candidate.
Sibling keys of the same prefix (DB_USER next to DB_PASSWORD, spring.datasource.url next to
spring.datasource.password) make it a ``keys`` store, so the username and host are read too.
Values are only looked at to choose the key: the candidate is read again through Store.
"""
from __future__ import annotations

import configparser
import errno
import json
import os
import re
import stat

try:
    import yaml
    _SafeLoader = yaml.SafeLoader
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None
    _SafeLoader = object

from ansible_collections.credops.pgauth.plugins.module_utils.credential import looks_like_dsn
from ansible_collections.credops.pgauth.plugins.module_utils.discover_walk import (
    MAX_WALK_DEPTH,
    WalkBudget,
    Walker,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_k8s_secret import (
    decode_data,
    split_documents,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_pgpass import split_fields
from ansible_collections.credops.pgauth.plugins.module_utils.file_properties import entries
from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import FormatError

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

PASSWORD_NAMES = ("password", "passwd", "pwd", "pass", "secret_password")
# sibling key names (last segment, lower case) of each credential field
SIBLINGS = {
    "username": ("username", "user", "login", "usr"),
    "host": ("host", "hostname", "server"),
    "port": ("port",),
    "dbname": ("dbname", "database", "db", "name"),
    "dsn": ("url", "dsn", "uri", "jdbc_url", "jdbcurl", "database_url", "connection_string"),
}
MAX_FILE_BYTES = 1 << 20  # a config file; anything larger is not read
MAX_DEPTH = 32  # mapping levels walked in a yaml, json or toml document
MAX_NODES = 100_000  # values visited in one document; past that the file is skipped
_DOTENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
_K8S_SECRET = re.compile(r"^kind:\s*['\"]?Secret['\"]?\s*$", re.MULTILINE)


class SkipFile(Exception):
    """This file is not read (unknown syntax, too large, not parseable): counted, never
    fatal, and the message never holds a value of the file."""


def name_format(path: str) -> str | None:
    """The format path's name says, before the file is opened: None (never opened), a
    format, or ``conf``/``yaml`` whose final choice needs the text (file_format)."""
    name = os.path.basename(path).lower()
    ext = os.path.splitext(name)[1]
    if name in (".pgpass", "pgpass", "pgpass.conf") or ext == ".pgpass":
        return "pgpass"
    if name == ".env" or name.startswith(".env.") or ext == ".env":
        return "dotenv"
    if name == "pg_service.conf" or ext in (".ini", ".cfg"):
        return "ini"
    if ext in (".conf", ".yaml", ".yml"):
        return ext[1:].replace("yml", "yaml")
    return {".properties": "properties", ".json": "json", ".toml": "toml"}.get(ext)


def file_format(path: str, text: str) -> str | None:
    """The file store format of path, by its name (and a YAML or .conf file's content)."""
    fmt = name_format(path)
    if fmt == "conf":
        return "ini" if re.search(r"^\s*\[[^\]]+\]\s*$", text, re.MULTILINE) else None
    if fmt == "yaml":
        return "k8s_secret" if _K8S_SECRET.search(text) else "yaml"
    return fmt


class _NoAliasLoader(_SafeLoader):
    """A YAML loader that refuses aliases: a few hundred bytes of nested ``*anchors`` are a
    billion leaves to walk (the alias bomb).  Config files holding a credential do not need
    them; a document with one is skipped."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise SkipFile("uses YAML aliases (not read)")
        return super().compose_node(parent, index)


def _parse_yaml(text: str, fmt: str):
    if yaml is None:
        raise SkipFile(f"not read: {fmt} needs PyYAML")
    try:
        return yaml.load(text, Loader=_NoAliasLoader) or {}
    except RecursionError:
        raise SkipFile(f"not valid {fmt} (nested too deeply)") from None
    except yaml.YAMLError:
        raise SkipFile(f"not valid {fmt}") from None


def _flatten(node, out: dict, check_time=None) -> None:
    """Scalar leaves of a mapping as dotted paths (keys with a dot in them cannot be
    addressed by a dotted path and are left out; so are lists).  Iterative, at most
    MAX_DEPTH levels deep (deeper mappings are not walked) and MAX_NODES values visited
    (past that the file is skipped), the scope's deadline checked as it goes."""
    stack, visited = [(node, "", 0)], 0
    while stack:
        mapping, prefix, depth = stack.pop()
        if not isinstance(mapping, dict) or depth >= MAX_DEPTH:
            continue
        for key, value in mapping.items():
            visited += 1
            if visited > MAX_NODES:
                raise SkipFile(f"more than {MAX_NODES} values")
            if check_time is not None and visited % 1024 == 0:
                check_time()
            if not isinstance(key, str) or "." in key or not key:
                continue
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((value, path + ".", depth + 1))
            elif isinstance(value, (str, int)) and not isinstance(value, bool):
                out[path] = value


def _parse_mapping(fmt: str, text: str):
    try:
        if fmt == "json":
            return json.loads(text)
        if fmt == "toml":
            if tomllib is None:
                raise SkipFile("toml needs Python 3.11")
            return tomllib.loads(text)
        return _parse_yaml(text, fmt)
    except FormatError as err:
        raise SkipFile(str(err)) from None
    except (ValueError, RecursionError) as err:  # tomllib's error is a ValueError too
        raise SkipFile(f"not valid {fmt} ({type(err).__name__})") from None


def _flat_ini(text: str) -> dict:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # option names as written: file stores address them so
    try:
        parser.read_string(text)
    except configparser.Error as err:
        raise SkipFile(f"not valid ini ({type(err).__name__})") from None
    return {f"{section}.{option}": value for section in parser.sections()
            for option, value in parser.items(section, raw=True)}


def _flat_dotenv(text: str) -> dict:
    found = {}
    for line in text.splitlines():
        match = _DOTENV_KEY.match(line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[match.group(1)] = value
    return found


def _secret_documents(text: str) -> list[tuple[str | None, dict]]:
    """(metadata.name, flat data) of each Secret document; data values decoded."""
    docs = []
    for start, end in split_documents(text):
        doc = _parse_yaml(text[start:end], "k8s_secret") if text[start:end].strip() else None
        if isinstance(doc, dict) and doc.get("kind") == "Secret":
            docs.append(doc)
    out = []
    for doc in docs:
        flat = {}
        for section in ("data", "stringData"):
            entries = doc.get(section)
            # a hand-edited manifest may hold anything here: only string keys are data keys
            for key, value in (entries.items() if isinstance(entries, dict) else ()):
                if not isinstance(key, str):
                    continue
                if section == "data":
                    try:
                        value = decode_data(value, key)
                    except FormatError:
                        continue  # broken base64: not a candidate, and never shown
                if isinstance(value, str):
                    flat[key] = value
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        out.append((meta.get("name"), flat))
    return out


def _split_last(key: str) -> tuple[str, str]:
    """(prefix, last segment): DB_PASSWORD -> (DB_, PASSWORD); PGPASSWORD -> (PG, PASSWORD)."""
    cut = max(key.rfind(char) for char in "._-") + 1
    prefix, last = key[:cut], key[cut:]
    pg_names = (*PASSWORD_NAMES, "user", "host", "port", "database")
    if last[:2].upper() == "PG" and last[2:].lower() in pg_names:
        prefix, last = prefix + last[:2], last[2:]
    return prefix, last


def _sibling(flat_lower: dict, prefix: str, field: str) -> str | None:
    if field == "dbname" and not prefix:
        return None  # a bare 'name' key is anything's name
    for name in SIBLINGS[field]:
        found = flat_lower.get((prefix + name).lower())
        if found:
            return found
    return None


def key_candidates(flat: dict) -> list[dict]:
    """The keys of one document that hold a credential: {key: K, value_format} for a lone
    password or DSN, {keys: {...}} for a password with siblings."""
    lower = {key.lower(): key for key in flat}
    out, used_dsn = [], set()
    for key, value in flat.items():
        prefix, last = _split_last(key)
        if last.lower() not in PASSWORD_NAMES or not isinstance(value, str) or not value:
            continue
        keys = {"password": key}
        for field in ("username", "host", "port", "dbname", "dsn"):
            sibling = _sibling(lower, prefix, field)
            if sibling and (field != "dsn" or looks_like_dsn(flat[sibling])):
                keys[field] = sibling
        if "dsn" in keys:
            used_dsn.add(keys["dsn"])
        lone = {"key": key, "value_format": "password"}
        out.append({"keys": keys} if len(keys) > 1 else lone)
    for key, value in flat.items():
        if key not in used_dsn and isinstance(value, str) and looks_like_dsn(value):
            out.append({"key": key, "value_format": "dsn"})
    return out


def _pgpass_keys(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = split_fields(line, 4)
        if parts is not None:
            out.append({"key": ":".join(parts[0])})
    return out


def file_candidates(path: str, text: str, check_time=None) -> list[dict]:
    """The file stores (without name) that path's text holds; SkipFile when unreadable.
    check_time (the scope's deadline) is called while a large document is walked."""
    fmt = file_format(path, text)
    if fmt is None:
        raise SkipFile("not a config file syntax discover reads (by its name)")
    base = {"type": "file", "path": path, "format": fmt}
    if fmt == "pgpass":
        return [{**base, **found} for found in _pgpass_keys(text)]
    if fmt == "k8s_secret":
        docs = _secret_documents(text)
        return [{**base, **found, **({"document": name} if len(docs) > 1 and name else {})}
                for name, flat in docs for found in key_candidates(flat)]
    if fmt == "dotenv":
        flat = _flat_dotenv(text)
    elif fmt == "properties":
        try:
            flat = {entry.key: entry.value for entry in entries(text)}
        except FormatError as err:
            raise SkipFile(str(err)) from None
    elif fmt == "ini":
        flat = _flat_ini(text)
    else:
        flat = {}
        _flatten(_parse_mapping(fmt, text), flat, check_time)
    return [{**base, **found} for found in key_candidates(flat)]


def iter_paths(globs: list[str], run=None):
    """Every regular file the globs match, once, in a stable order (discover_walk: no
    symlinked directory entered, /proc, /sys and /dev skipped, the scope's deadline and an
    entry bound checked inside the walk)."""
    walker = Walker(run.check_time if run is not None else (lambda: None))
    seen = set()
    for pattern in globs:
        try:
            for path in walker.paths(os.path.expanduser(pattern)):
                real = os.path.realpath(path)
                if real not in seen and os.path.isfile(path) and not os.path.islink(path):
                    seen.add(real)
                    yield path
        except WalkBudget as stop:
            if run is None:
                raise
            run.stop(f"the file walk stopped: {stop}")
    if walker.too_deep and run is not None:
        run.skip(f"{walker.too_deep} directories more than {MAX_WALK_DEPTH} levels below a "
                 "glob's root (not entered)")


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_text(path: str) -> str:
    """path's text, read from one descriptor: no symlink followed (one swapped in after the
    listing included), a FIFO or device never opened for blocking reads, at most
    MAX_FILE_BYTES read whatever the file grows to."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SkipFile("a symlink (not followed)") from None
        raise SkipFile(f"cannot read: {err.strerror}") from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise SkipFile("not a regular file")
        if found.st_size > MAX_FILE_BYTES:
            raise SkipFile("larger than a config file")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise SkipFile("larger than a config file")
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise SkipFile("not UTF-8 text") from None
    except OSError as err:
        raise SkipFile(f"cannot read: {err.strerror}") from None
    finally:
        os.close(fd)


def enumerate_files(scope: dict, options: dict, run) -> object:
    """The file scope's candidates (run.skip counts the files that are not read)."""
    for path in iter_paths(scope.get("globs") or [], run):
        run.check_time()
        if name_format(path) is None:  # never opened
            run.skip(f"{path}: not a config file syntax discover reads (by its name)")
            continue
        try:
            found = file_candidates(path, read_text(path), run.check_time)
        except SkipFile as err:
            run.skip(f"{path}: {err}")
            continue
        except (RecursionError, TypeError, ValueError, AttributeError) as err:
            # one file anyone may write must not end the scan of every scope: its content
            # is never shown, only that it could not be read as its syntax
            run.skip(f"{path}: cannot be read as its syntax ({type(err).__name__})")
            continue
        for spec in found:
            run.tick()
            yield spec
