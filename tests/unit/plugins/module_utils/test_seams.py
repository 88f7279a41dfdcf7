"""The seams issue 16 asked for, kept: every error of ours has one base, and nothing but
store.py reaches behind a Store to its backend."""
from __future__ import annotations

import inspect
import pathlib
import re

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils import (
    aws,
    cmd_runner,
    credential,
    logsources,
    pg,
    rotation_exec,
    safe_write,
    store,
    vault,
)
from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

PLUGINS = pathlib.Path(store.__file__).resolve().parents[1]


@pytest.mark.parametrize("module", [aws, cmd_runner, credential, logsources, pg, rotation_exec,
                                    safe_write, store, vault])
def test_every_public_error_is_a_pgauth_error(module):
    errors = [obj for name, obj in vars(module).items()
              if inspect.isclass(obj) and issubclass(obj, Exception) and not name.startswith("_")
              and obj.__module__ == module.__name__]
    assert errors, f"{module.__name__} defines no error class"
    for error in errors:
        assert issubclass(error, PgauthError), error


def test_an_error_code_is_kept():
    err = store.StoreError("store 'x': broken", code=credential.DSN_NOT_ENCODED)
    assert err.code == credential.DSN_NOT_ENCODED
    assert credential.CredentialError("bad", "some_code").code == "some_code"
    assert pg.PgError("failed", "role_missing").code == "role_missing"


def test_only_store_py_reaches_a_backend():
    offenders = []
    for path in PLUGINS.rglob("*.py"):
        if path.name == "store.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.(_?backend)\b(?!_)", line):
                offenders.append(f"{path.relative_to(PLUGINS)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
