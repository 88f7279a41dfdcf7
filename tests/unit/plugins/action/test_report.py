from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest

from ansible_collections.credops.pgauth.plugins.action.report import (
    ActionModule,
    ReportDirError,
    open_host_dir,
    write_atomically,
)
from ansible_collections.credops.pgauth.plugins.module_utils.report import report_host_dir


def run_action(args: dict, inventory_hostname: str = "db1") -> dict:
    task = MagicMock(args=args, async_val=0, check_mode=False, diff=False)
    action = ActionModule(task, MagicMock(), MagicMock(check_mode=False), loader=MagicMock(),
                          templar=MagicMock(), shared_loader_obj=MagicMock())
    return action.run(task_vars={"inventory_hostname": inventory_hostname})


def report_args(report_dir, **extra) -> dict:
    return {"runbook": "diagnose", "target": {"role": "app_user", "host": "db.internal"},
            "verdict": "healthy", "dir": str(report_dir), **extra}


def test_write_atomically_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "diagnose.json"
    write_atomically(str(target), "one")
    write_atomically(str(target), "two")
    assert target.read_text() == "two"
    assert [path.name for path in tmp_path.iterdir()] == ["diagnose.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o640"


def test_write_atomically_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "diagnose.json").symlink_to(victim)
    write_atomically(str(tmp_path / "diagnose.json"), "report")
    assert victim.read_text() == "keep"
    assert not (tmp_path / "diagnose.json").is_symlink()
    assert (tmp_path / "diagnose.json").read_text() == "report"


def test_write_atomically_removes_its_temp_file_on_failure(tmp_path):
    (tmp_path / "diagnose.json").mkdir()  # a rename over a directory fails
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "diagnose.json"), "report")
    assert [path.name for path in tmp_path.iterdir()] == ["diagnose.json"]


def test_open_host_dir_makes_the_directory(tmp_path):
    handle = open_host_dir(str(tmp_path / "reports"), "db1")
    try:
        write_atomically("verify.json", "{}", handle)
    finally:
        os.close(handle)
    folder = tmp_path / "reports" / "db1"
    assert (folder / "verify.json").read_text() == "{}"
    assert folder.stat().st_mode & 0o027 == 0


@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_open_host_dir_refuses_a_planted_symlink_or_file(tmp_path, planted):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "reports").mkdir()
    if planted == "symlink":
        (tmp_path / "reports" / "db1").symlink_to(elsewhere)
    else:
        (tmp_path / "reports" / "db1").write_text("")
    with pytest.raises(ReportDirError, match="symlink or not a directory"):
        open_host_dir(str(tmp_path / "reports"), "db1")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_open_host_dir_takes_a_name_not_a_path(tmp_path, name):
    with pytest.raises(ReportDirError):
        open_host_dir(str(tmp_path), name)


def test_the_report_directory_itself_may_be_a_symlink(tmp_path):
    """The operator chose the report directory; only what is below it is checked."""
    (tmp_path / "real").mkdir()
    (tmp_path / "reports").symlink_to(tmp_path / "real")
    result = run_action(report_args(tmp_path / "reports"))
    assert not result.get("failed"), result
    assert (tmp_path / "real" / "db1" / "diagnose.json").exists()


def test_the_action_writes_into_the_mapped_directory(tmp_path):
    result = run_action(report_args(tmp_path), inventory_hostname="db/1")
    assert not result.get("failed"), result
    folder = tmp_path / report_host_dir("db/1")
    assert result["paths"] == [str(folder / "diagnose.json"), str(folder / "diagnose.md")]
    assert json.loads((folder / "diagnose.json").read_text())["verdict"] == "healthy"
    assert [path.name for path in tmp_path.iterdir()] == [folder.name]


def test_the_host_option_is_mapped_too(tmp_path):
    result = run_action(report_args(tmp_path, host="../../etc"))
    assert not result.get("failed"), result
    (folder,) = tmp_path.iterdir()
    assert folder.name == report_host_dir("../../etc")
    assert (folder / "diagnose.json").exists()


def test_the_action_fails_with_a_message_on_a_planted_symlink(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "db1").symlink_to(tmp_path / "elsewhere")
    result = run_action(report_args(tmp_path / "reports"))
    assert result["failed"]
    assert "symlink" in result["msg"] and "'db1'" in result["msg"]
    assert list((tmp_path / "elsewhere").iterdir()) == []
