# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Application config files as a store: one key, or a credential over several (``keys``).

The file's syntax (``format``) is a module of its own behind file_syntax's interface:
yaml, json, dotenv, properties, ini (pg_service.conf), toml, pgpass, k8s_secret,
pgbouncer_userlist (PgBouncer's auth_file: the password's verifier, file_userlist.py).  Each
changes only the values at its keys and leaves comments, order, quoting and the other
keys as they were (a YAML value that no editor can reach falls back to a full re-dump that
loses comments; the module warns when that happens).  Every write is atomic (a temporary
file in the same directory, fsync, rename) and keeps the file's owner, group, mode and
extended attributes (ACLs); ``backup: true`` keeps a copy first, as the original
(``backup_keep`` the newest N).  Files are opened and created as safe_write describes: a
symlink is followed only when root or the running user owns it, so the owner of the
file's directory cannot make root read or write another file.
"""
from __future__ import annotations

import datetime
import os

from ansible_collections.credops.pgauth.plugins.module_utils import safe_write
from ansible_collections.credops.pgauth.plugins.module_utils.credential_keys import check_keys
from ansible_collections.credops.pgauth.plugins.module_utils.file_dotenv import (
    dotenv_get,
    dotenv_lines,
    dotenv_quote,
    dotenv_set,
    dotenv_unquote,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FILE_FORMATS,
    FormatError,
    syntax_for,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_yaml import (
    yaml_set_in_place,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import Backend, StoredValue

# the dotenv and YAML helpers lived here before each syntax got its module: still importable
__all__ = ["FileBackend", "dotenv_get", "dotenv_lines", "dotenv_quote", "dotenv_set",
           "dotenv_unquote", "yaml_set_in_place"]


class FileBackend(Backend):
    supports_pending = False

    def __init__(self, spec: dict, options: dict):
        # describe() needs these, and Backend.__init__ calls it for a store without a name
        self.path = spec.get("path")
        self.file_format = spec.get("format") or "dotenv"
        self.key = spec.get("key")
        self.keys = spec.get("keys")
        super().__init__(spec, options)
        if not self.path:
            raise self.error("path is required")
        if self.file_format not in FILE_FORMATS:
            raise self.error(f"format must be one of {', '.join(FILE_FORMATS)} for a file store")
        if self.file_format == "pgbouncer_userlist":
            self._check_userlist()
        if self.key and self.keys:
            raise self.error("key and keys are mutually exclusive: one key, or a credential "
                             "over several")
        if self.keys is not None:
            problem = check_keys(self.keys)
            if problem:
                raise self.error(problem)
            if self.spec.get("value_format"):
                raise self.error("value_format is for one key; with keys each field is text")
        elif not self.key:
            raise self.error("key is required (a dotted path, or a variable name for dotenv), "
                             "or keys for a credential over several")
        if spec.get("document") and self.file_format != "k8s_secret":
            raise self.error("document is for the k8s_secret format (the Secret's "
                             "metadata.name)")
        keep = self.spec.get("backup_keep")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)
                                 or keep < 1):
            raise self.error("backup_keep must be a whole number of at least 1 (leave it out "
                             "to keep every backup)")
        self.value_is_text = self.keys is None and \
            self.spec.get("value_format") in ("password", "dsn")
        self._syntax = syntax_for(self.file_format, spec)
        self.fixed_value_format = self._syntax.value_format

    def _check_userlist(self) -> None:
        """PgBouncer's auth_file: one user's line, its secret a verifier (no value_format)."""
        from ansible_collections.credops.pgauth.plugins.module_utils.file_userlist import (
            UserlistSyntax,
        )
        if self.keys is not None:
            raise self.error("keys is not for the pgbouncer_userlist format: key is the user "
                             "name of the auth_file line")
        problem = UserlistSyntax.check_key(self.key)
        if problem:
            raise self.error(problem)
        if self.spec.get("value_format"):
            raise self.error("value_format is not for the pgbouncer_userlist format: the line "
                             "holds a verifier (or a plaintext password PgBouncer accepts)")

    def describe(self) -> str:
        if self.keys and isinstance(self.keys, dict):
            return f"file {self.path} [{', '.join(map(str, self.keys.values()))}]"
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

    def _file_keys(self) -> list[str]:
        return list(self.keys.values()) if self.keys else [self.key]

    def _value_in(self, text: str):
        try:
            values = self._syntax.get(text, self._file_keys())
        except FormatError as err:
            raise self.error(str(err)) from None
        if self.keys:
            return {field: values[key] for field, key in self.keys.items()}
        value = values[self.key]
        if self.spec.get("value_format") in ("password", "dsn") and not isinstance(value, str):
            raise self.error(f"{self.key} holds a {type(value).__name__}, not a string")
        return value

    def read(self, stage: str) -> StoredValue | None:
        if stage != "current":
            return None
        with self._open() as opened:
            text = self._decode(self._read(opened))
            stat = opened.stat
        problem = self._syntax.file_problem(stat.st_mode)
        if problem:
            raise self.error(problem)
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
        if self.keys:
            if not isinstance(value, dict):
                raise self.error("a store over several keys is written field by field")
            values = {self.keys[field]: part for field, part in value.items()
                      if field in self.keys}
        else:
            values = {self.key: value}
        self._syntax.warnings.clear()
        try:
            new_text = self._syntax.set(text, values)
        except FormatError as err:
            raise self.error(str(err)) from None
        self.warnings.extend(f"store {self.label!r}: {warning}"
                             for warning in self._syntax.warnings)
        return new_text

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
