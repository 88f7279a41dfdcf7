# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A store that a CLI reaches (pass, kubectl, az, gh, op): ``read`` prints the value on
stdout, ``write`` takes it on stdin.

    - name: pass-app
      type: command
      read: [pass, show, app/db]
      write: [pass, insert, --multiline, --force, app/db]
      format: password                # password (default) | json | dsn
      value_encoding: text            # text | base64 (the CLI prints and takes base64)
      timeout: 30
      env: {PASSWORD_STORE_DIR: /srv/pass}
      inherit_env: [GNUPGHOME]
      write_only: false               # true: no read command, never read back

Every call goes through cmd_runner: argv lists without a shell, the value on stdin and
stdout only, a clean environment, a timeout that kills the command's process group, and
errors that quote stderr redacted.  A CLI has no versions and no pending stage: a rotation
writes the store after the database changed, during promote (like a file).  One trailing
newline of what ``read`` prints is dropped (CLIs end their output with one); nothing else is
stripped, so a password padded with whitespace is still found by diagnose.
"""
from __future__ import annotations

import base64
import binascii

from ansible_collections.credops.pgauth.plugins.module_utils.cmd_runner import (
    DEFAULT_TIMEOUT,
    CommandError,
    run_command,
)
from ansible_collections.credops.pgauth.plugins.module_utils.credential import (
    CredentialError,
    decode,
)
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    WRITE_ONLY,
    Backend,
    StoredValue,
    StoreError,
    StoreValueError,
)

ENCODINGS = ("text", "base64")


class CommandBackend(Backend):
    supports_pending = False
    value_is_text = True
    default_format = "password"

    def __init__(self, spec: dict, options: dict):
        super().__init__(spec, options)
        self.write_only = bool(spec.get("write_only"))
        self.read_argv, self.write_argv = spec.get("read"), spec.get("write")
        self.writable = bool(self.write_argv)
        if self.write_only and self.read_argv:
            raise self.error("a write_only store takes no read command (it is never read "
                             "back): drop read, or write_only")
        if not self.write_only and not self.read_argv:
            raise self.error("read is required (the command that prints the value), unless "
                             "write_only: true")
        if self.write_only and not self.write_argv:
            raise self.error("a write_only store needs a write command")
        self.encoding = spec.get("value_encoding") or "text"
        if self.encoding not in ENCODINGS:
            raise self.error(f"value_encoding must be one of {', '.join(ENCODINGS)}")
        timeout = spec.get("timeout")
        self.timeout = float(timeout) if timeout is not None else DEFAULT_TIMEOUT
        if self.timeout <= 0:
            raise self.error("timeout must be a positive number of seconds")
        self.env = {str(key): str(value) for key, value in (spec.get("env") or {}).items()}
        self.inherit_env = list(spec.get("inherit_env") or [])

    def describe(self) -> str:
        argv = self.spec.get("read") or self.spec.get("write") or ["?"]
        return f"command {argv[0]}"

    def _run(self, argv, stdin: bytes, secrets: list[str], what: str):
        try:
            return run_command(argv, stdin=stdin, secrets=secrets, timeout=self.timeout,
                               env=self.env, inherit_env=self.inherit_env)
        except CommandError as err:
            failed = self.error(f"{what}: {err}")
            failed.code = err.code
            raise failed from None

    def read(self, stage: str) -> StoredValue | None:
        if self.write_only:
            error = self.error("write-only, not checked: the store cannot be read back "
                               "(write_only: true)")
            error.code = WRITE_ONLY
            raise error
        if stage != "current":
            return None
        result = self._run(self.read_argv, b"", [], "read")
        raw = result.stdout
        if self.encoding == "base64":
            try:
                raw = base64.b64decode(b"".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                raise self.error("read: the command did not print base64 (value_encoding: "
                                 "base64)", StoreValueError) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("read: the value is not UTF-8 text", StoreValueError) from None
        for ending in ("\r\n", "\n"):
            if text.endswith(ending):
                text = text[:-len(ending)]
                break
        return StoredValue(text, None, ["current"])

    def _secrets_of(self, value: str) -> list[str]:
        """The value, and the password inside it (a CLI that echoes the password alone must
        not show it either)."""
        found = [value]
        try:
            cred = decode(value, self.spec.get("format") or self.default_format)
        except CredentialError:
            return found
        if cred.password:
            found.append(cred.password)
        return found

    def write(self, value, stage: str, previous: StoredValue | None) -> str | None:
        if stage != "current":
            raise self.error("this store type has no pending stage")
        if not self.write_argv:
            raise self.error("this store has no write command (write)")
        if not isinstance(value, str):
            raise StoreError(str(self.error("the value to write is not text")))
        raw = value.encode("utf-8")
        if self.encoding == "base64":
            raw = base64.b64encode(raw)
        self._run(self.write_argv, raw, self._secrets_of(value), "write")
        return None
