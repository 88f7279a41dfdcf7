"""Safe rewrites of secret-holding files: what is followed, what is created, what is left."""
from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.credops.pgauth.plugins.module_utils import safe_write
from ansible_collections.credops.pgauth.plugins.module_utils.safe_write import (
    UnsafeFileError,
    backup_pattern,
    open_regular,
    prune_backups,
    replace,
    write_backup,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, lchown)")
OTHER_UID = 65534


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("K=old\n")
    path.chmod(0o640)
    return path


def _set_xattr(path, name: str, value: bytes) -> None:
    try:
        os.setxattr(path, name, value)
    except OSError as err:
        pytest.skip(f"no {name.split('.')[0]} xattrs here: {err.strerror}")


def test_a_regular_file_is_read_through_its_directory(config):
    with open_regular(str(config)) as opened:
        assert opened.read() == b"K=old\n"
        assert opened.path == str(config)
        assert stat.S_ISREG(opened.stat.st_mode)


def test_dot_dot_and_own_links_resolve_to_the_real_path(tmp_path, config):
    (tmp_path / "sub").mkdir()
    os.symlink("sub", tmp_path / "dirlink")
    os.symlink("../app.env", tmp_path / "sub" / "filelink")
    with open_regular(str(tmp_path / "dirlink" / "filelink")) as opened:
        assert opened.path == str(config)
    with open_regular(str(tmp_path / "sub" / ".." / "app.env")) as opened:
        assert opened.read() == b"K=old\n"


@as_root
@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_link_owned_by_another_user_is_not_followed(tmp_path, config, where):
    if where == "file":
        link = tmp_path / "planted.env"
        os.symlink(config, link)
        path = link
    else:
        link = tmp_path / "planted-dir"
        os.symlink(tmp_path, link)
        path = link / "app.env"
    os.lchown(link, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeFileError, match=f"{link} is a symbolic link owned by uid "
                                              f"{OTHER_UID}"):
        open_regular(str(path))


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_anything_but_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "app.env"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises((UnsafeFileError, IsADirectoryError)):
        open_regular(str(path))


@pytest.mark.parametrize("path", ["", "/", "dir/", "dir/.."])
def test_a_path_that_names_no_file_is_refused(path):
    with pytest.raises(UnsafeFileError, match="does not name a file"):
        open_regular(path)


def test_replace_keeps_mode_and_xattrs_and_leaves_no_temporary_file(config):
    _set_xattr(config, "user.test", b"keep")
    with open_regular(str(config)) as opened:
        replace(opened, b"K=new\n")
    assert config.read_bytes() == b"K=new\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert os.getxattr(config, "user.test") == b"keep"
    assert os.listdir(config.parent) == ["app.env"]


def test_the_copy_drops_xattrs_the_original_does_not_have(tmp_path, config):
    with open_regular(str(config)) as opened:
        fd = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            _set_xattr(tmp_path / "other", "user.inherited", b"x")
            safe_write.copy_xattrs(opened.fd, fd)
            assert os.listxattr(fd) == []
        finally:
            os.close(fd)


def test_new_files_are_0600_and_randomly_named_while_written(config, monkeypatch):
    """Spy on every write: the file written to is 0600 at that moment, even under umask 0."""
    seen = []
    real_write = os.write

    def spy(fd, data):
        info = os.fstat(fd)
        seen.append(stat.S_IMODE(info.st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    old_umask = os.umask(0)
    try:
        with open_regular(str(config)) as opened:
            first = write_backup(opened, opened.read())
            opened_again = open_regular(str(config))
        with opened_again:
            second = write_backup(opened_again, opened_again.read())
            replace(opened_again, b"K=new\n")
    finally:
        os.umask(old_umask)
    assert seen and set(seen) == {0o600}
    assert first != second  # same second, same file: the random part differs
    for path in (first, second):
        assert backup_pattern("app.env").match(os.path.basename(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_planted_name_is_skipped_never_followed(tmp_path, config, monkeypatch):
    target = tmp_path / "target"
    tokens = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(safe_write.secrets, "token_hex", lambda _n: next(tokens))
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    os.symlink(target, tmp_path / "app.env.2026-01-02@03:04:05.aaaaaaaaaaaa~")
    with open_regular(str(config)) as opened:
        made = write_backup(opened, opened.read(), now)
    assert made.endswith(".bbbbbbbbbbbb~")
    assert not target.exists()


def test_a_failed_backup_is_removed(config, monkeypatch):
    def broken(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with open_regular(str(config)) as opened, pytest.raises(OSError):
        write_backup(opened, opened.read())
    assert os.listdir(config.parent) == ["app.env"]


def test_a_failed_rewrite_leaves_the_file_and_no_temporary_file(config, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken)
    with open_regular(str(config)) as opened, pytest.raises(OSError):
        replace(opened, b"K=new\n")
    assert config.read_bytes() == b"K=old\n"
    assert os.listdir(config.parent) == ["app.env"]


def test_a_file_swapped_in_meanwhile_is_not_overwritten(tmp_path, config):
    with open_regular(str(config)) as opened:
        (tmp_path / "theirs").write_text("theirs\n")
        os.replace(tmp_path / "theirs", config)
        with pytest.raises(UnsafeFileError, match="replaced while"):
            replace(opened, b"K=new\n")
    assert config.read_text() == "theirs\n"


@as_root
def test_owner_and_group_are_kept(config):
    os.chown(config, OTHER_UID, OTHER_UID)
    with open_regular(str(config)) as opened:
        made = write_backup(opened, opened.read())
        replace(opened, b"K=new\n")
    for path in (str(config), made):
        info = os.stat(path)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == \
            (OTHER_UID, OTHER_UID, 0o640)


def test_another_users_file_is_refused_when_not_root(config, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    with open_regular(str(config)) as opened, \
            pytest.raises(UnsafeFileError, match="only root or its owner"):
        safe_write.check_owner_kept(opened.stat, opened.path)


def test_prune_keeps_the_newest_and_only_counts_regular_backups(tmp_path, config):
    names = ["app.env.2026-01-01@00:00:00.0a0a0a0a0a0a~",
             "app.env.123.2026-01-02@00:00:00~",  # the earlier name format
             "app.env.2026-01-03@00:00:00.1b1b1b1b1b1b~",
             "app.env.2026-01-04@00:00:00.2c2c2c2c2c2c~"]
    for name in names:
        (tmp_path / name).write_text("old\n")
    os.symlink(tmp_path / "elsewhere", tmp_path / "app.env.2026-01-05@00:00:00.3d3d3d3d3d3d~")
    (tmp_path / "app.env.bak").write_text("mine\n")
    (tmp_path / "other.env.2026-01-01@00:00:00.4e4e4e4e4e4e~").write_text("other\n")
    with open_regular(str(config)) as opened:
        removed = prune_backups(opened, 2)
    assert sorted(os.path.basename(path) for path in removed) == sorted(names[:2])
    assert sorted(os.listdir(tmp_path)) == sorted([
        "app.env", "app.env.bak", *names[2:], "app.env.2026-01-05@00:00:00.3d3d3d3d3d3d~",
        "other.env.2026-01-01@00:00:00.4e4e4e4e4e4e~"])
