from __future__ import annotations

import os

import pytest

from ansible_collections.credops.pgauth.plugins.action.report import (
    safe_dirname,
    write_atomically,
)


@pytest.mark.parametrize(("host", "expected"), [
    ("db1.example.com", "db1.example.com"),
    ("../../etc", "_.._etc"),
    ("a/b", "a_b"),
    (".hidden", "hidden"),
    ("", "_"),
    ("user@db:5432", "user@db:5432"),
])
def test_report_dirs_stay_inside_the_report_dir(host, expected):
    assert safe_dirname(host) == expected
    assert os.sep not in safe_dirname(host)


def test_write_atomically_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "diagnose.json"
    write_atomically(str(target), "one")
    write_atomically(str(target), "two")
    assert target.read_text() == "two"
    assert [path.name for path in tmp_path.iterdir()] == ["diagnose.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o640"
