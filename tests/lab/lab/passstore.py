"""pass (password-store) for the `command` store: a throwaway GPG key without a passphrase
in a private GNUPGHOME, and a password store initialised for it, both under the lab dir.
Nothing here is a real secret: the key exists only so that pass can encrypt."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .settings import Lab

KEY_UID = "credops pgauth lab <lab@pgauth.invalid>"


class PassStore:
    def __init__(self, lab: Lab):
        self.gnupghome = lab.dir / "gnupg"
        self.store_dir = lab.dir / "password-store"

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.gnupghome), "PASSWORD_STORE_DIR": str(self.store_dir)}

    def _run(self, argv: list[str]) -> str:
        env = {**os.environ, **self.env()}
        return subprocess.run(argv, check=True, env=env, capture_output=True, text=True,
                              timeout=120).stdout

    def available(self) -> bool:
        return bool(shutil.which("pass") and shutil.which("gpg"))

    def up(self) -> None:
        """Idempotent: the key and the store are made once."""
        if not self.available():
            return
        self.gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.gnupghome, 0o700)
        if KEY_UID not in self._run(["gpg", "--batch", "--list-keys", "--with-colons"]):
            self._run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                       "--quick-gen-key", KEY_UID, "default", "default", "never"])
        if not (self.store_dir / ".gpg-id").exists():
            self._run(["pass", "init", KEY_UID])

    def down(self) -> None:
        """The gpg-agent that gpg and pass started for this GNUPGHOME goes too."""
        if self.gnupghome.exists() and shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, **self.env()},
                           check=False, capture_output=True, timeout=30)

    def reset(self) -> None:
        """No entries left (the key and the store's .gpg-id stay)."""
        if not self.store_dir.exists():
            return
        for entry in self.store_dir.iterdir():
            if entry.name.startswith(".gpg-id"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def passstore_env(lab: Lab) -> dict[str, str]:
    store = PassStore(lab)
    return store.env() if Path(store.store_dir / ".gpg-id").exists() else {}
