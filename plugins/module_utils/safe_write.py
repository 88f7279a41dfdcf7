# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rewriting a file that holds a secret, safely when run as root in a directory that
another user owns (DESIGN §7).

An application's config lives in a directory its user owns, so that user can plant
anything there: a symlink at the config's path or at a name root is about to create, a
FIFO, a directory swapped in between two system calls.  Hence:

- the path is walked one component at a time with directory file descriptors, and every
  later operation is relative to the descriptor of the file's directory (``*at`` system
  calls), so nothing is looked up by path twice;
- a symlink is followed only when root or the user running the module owns it (someone
  who could have written the file anyway, like the kernel's protected_symlinks rule); any
  other symlink, in the directories or at the file itself, is refused;
- every file created (the temporary file of the atomic rewrite, the backup) is created
  ``O_CREAT|O_EXCL|O_NOFOLLOW`` mode 0600 under a random name, written, then given the
  original's owner, group, extended attributes (POSIX ACLs are the xattr
  ``system.posix_acl_access``) and mode through its descriptor, fsync'ed, and renamed;
- whatever fails, a file created here is removed again.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import secrets
import stat
from dataclasses import dataclass

from ansible_collections.credops.pgauth.plugins.module_utils.errors import PgauthError

# Linux: an fd of a symlink itself (fstat, readlinkat) and of a directory one may only
# search.  Without it symlinks are never followed: checking a link's owner and then
# reading its target by name would be a race.
_O_PATH = getattr(os, "O_PATH", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = (_O_PATH or os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted at the path must not hang the run (it is refused after fstat)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
_MAX_LINKS = 40  # as the kernel's ELOOP limit
_BACKUP_STAMP = "%Y-%m-%d@%H:%M:%S"  # ansible's own backup_local stamp


class UnsafeFileError(PgauthError):
    """The file cannot be read or rewritten safely; the message names the path, never the
    content."""


@dataclass
class OpenedFile:
    """A regular file opened for reading, and its directory, both by descriptor."""

    dir_fd: int
    name: str
    fd: int
    stat: os.stat_result
    directory: str  # the resolved directory, for messages and the backup's name

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    def read(self) -> bytes:
        chunks = []
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def close(self) -> None:
        for fd in (self.fd, self.dir_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- resolving the path without following untrusted symlinks --------------------------------

def _link_target(dir_fd: int, name: str, shown: str, hops: list[int]) -> str | None:
    """The target of the symlink name in dir_fd when root or this user owns it; None when
    name is no symlink (any more: it may have been swapped since the open that failed)."""
    hops[0] += 1
    if hops[0] > _MAX_LINKS:
        raise UnsafeFileError(f"{shown}: too many levels of symbolic links")
    if not _O_PATH:
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise UnsafeFileError(f"{shown} is a symbolic link: not followed on this system")
        return None
    link_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    try:
        link = os.fstat(link_fd)
        if not stat.S_ISLNK(link.st_mode):
            return None
        if link.st_uid not in (0, os.geteuid()):
            raise UnsafeFileError(
                f"{shown} is a symbolic link owned by uid {link.st_uid}, neither root nor the "
                "user running this: it is not followed (whoever owns it could point it at "
                "any file); set the store's path to the real file")
        # the target of this very link inode: no second lookup by name
        return os.readlink("", dir_fd=link_fd)
    finally:
        os.close(link_fd)


def _walk(fd: int, where: str, parts: list[str], hops: list[int]) -> tuple[int, str]:
    """Open the directory that parts lead to from fd (which this closes); returns its fd
    and its real path."""
    todo = list(reversed(parts))
    try:
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            shown = os.path.join(where, part)
            try:
                new = os.open(part, _DIR_FLAGS, dir_fd=fd)
                where = os.path.dirname(where) if part == ".." else shown
            except OSError as err:
                if err.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                target = _link_target(fd, part, shown, hops)
                if target is None:
                    if stat.S_ISDIR(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        todo.append(part)  # a link swapped for a directory: open that
                        continue
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                             shown) from None
                if target.startswith("/"):
                    new, where = os.open("/", _DIR_FLAGS), "/"
                else:
                    new = os.dup(fd)
                todo.extend(reversed(target.split("/")))
            os.close(fd)
            fd = new
    except BaseException:
        os.close(fd)
        raise
    return fd, where


def _check_name(name: str, shown: str) -> None:
    if name in ("", ".", ".."):
        raise UnsafeFileError(f"{shown} does not name a file")


def open_regular(path: str) -> OpenedFile:
    """path opened for reading, with its directory; symlinks followed only when trusted.
    Raises UnsafeFileError, or OSError (FileNotFoundError, PermissionError, ...)."""
    _check_name(os.path.basename(path), path)
    hops = [0]
    absolute = path.startswith("/")
    start = os.open("/" if absolute else ".", _DIR_FLAGS)
    where = "/" if absolute else os.getcwd()
    dir_fd, where = _walk(start, where, os.path.dirname(path).split("/"), hops)
    name = os.path.basename(path)
    try:
        while True:
            shown = os.path.join(where, name)
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except OSError as err:
                if err.errno != errno.ELOOP:
                    raise
                target = _link_target(dir_fd, name, shown, hops)
                if target is None:
                    continue  # swapped for a file since the open: open that
                _check_name(os.path.basename(target), f"{shown} -> {target}")
                start = os.open("/", _DIR_FLAGS) if target.startswith("/") else os.dup(dir_fd)
                os.close(dir_fd)
                dir_fd = -1
                dir_fd, where = _walk(start, "/" if target.startswith("/") else where,
                                      os.path.dirname(target).split("/"), hops)
                name = os.path.basename(target)
                continue
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                os.close(fd)
                raise UnsafeFileError(f"{shown} is not a regular file")
            return OpenedFile(dir_fd, name, fd, found, where)
    except BaseException:
        if dir_fd >= 0:
            os.close(dir_fd)
        raise


# -- creating files that are never readable by more than the original ----------------------

def check_owner_kept(original: os.stat_result, shown: str) -> None:
    """Refuse before writing anything when the new file could not get the original's owner
    and group (its users could lose access, or another group gain it)."""
    if os.geteuid() == 0:
        return
    if original.st_uid != os.geteuid():
        raise UnsafeFileError(f"{shown} is owned by uid {original.st_uid}: only root or its "
                              "owner can rewrite it and keep its owner")
    if original.st_gid not in (os.getegid(), *os.getgroups()):
        raise UnsafeFileError(f"{shown} has group gid {original.st_gid}, not one of this "
                              "user's groups: only root can rewrite it and keep its group")


def _create(dir_fd: int, name_for) -> tuple[str, int]:
    """A new file, 0600 (umask permitting less), at an unpredictable name."""
    for _attempt in range(100):
        name = name_for(secrets.token_hex(6))
        try:
            return name, os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue  # planted, or a collision: another random name
    raise UnsafeFileError("no free name for a new file after 100 attempts")


def copy_xattrs(src_fd: int, dst_fd: int) -> None:
    """dst gets exactly src's extended attributes: its own (a default ACL of the directory
    inherited at creation, for one) are removed, since they could grant more."""
    try:
        wanted = {name: os.getxattr(src_fd, name) for name in os.listxattr(src_fd)}
        present = os.listxattr(dst_fd)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
            return  # a file system without extended attributes: nothing to keep
        raise
    changes = [(name, None) for name in present if name not in wanted] + list(wanted.items())
    for name, value in changes:
        try:
            if value is None:
                os.removexattr(dst_fd, name)
            else:
                os.setxattr(dst_fd, name, value)
        except OSError as err:
            # never a copy without them: a lost ACL locks the application out, an inherited
            # default ACL lets others in
            raise UnsafeFileError(f"cannot give the new file the extended attributes of the "
                                  f"original ({name}): {err.strerror}") from None


def _write_as_original(fd: int, data: bytes, src: OpenedFile, keep_times: bool) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    original = src.stat
    # owner first (chown clears set-id bits and file capabilities), the mode last: it also
    # sets an ACL's mask, which must end up the original's
    if os.geteuid() == 0:
        os.fchown(fd, original.st_uid, original.st_gid)
    elif os.fstat(fd).st_gid != original.st_gid:
        os.fchown(fd, -1, original.st_gid)
    copy_xattrs(src.fd, fd)
    os.fchmod(fd, stat.S_IMODE(original.st_mode))
    if keep_times:
        os.utime(fd, ns=(original.st_atime_ns, original.st_mtime_ns))
    os.fsync(fd)


def _remove_own(dir_fd: int, name: str, fd: int) -> None:
    """Unlink name only while it still is the file this fd has open."""
    try:
        mine, there = os.fstat(fd), os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def remove_backup(src: OpenedFile, path: str) -> None:
    """Remove a backup write_backup made (unlinkat: a name, never what it points to)."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.basename(path), dir_fd=src.dir_fd)


def _fsync_dir(dir_fd: int) -> None:
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return  # a directory one may search but not read: the rename is done all the same
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_backup(src: OpenedFile, data: bytes, now: datetime.datetime | None = None) -> str:
    """A copy of data (the file's content as read) next to it, as the original: same owner,
    group, mode, xattrs and times.  Returns its path; nothing is left behind on error."""
    stamp = (now or datetime.datetime.now()).strftime(_BACKUP_STAMP)
    name, fd = _create(src.dir_fd, lambda token: f"{src.name}.{stamp}.{token}~")
    try:
        _write_as_original(fd, data, src, keep_times=True)
    except BaseException:
        _remove_own(src.dir_fd, name, fd)
        raise
    finally:
        os.close(fd)
    return os.path.join(src.directory, name)


def replace(src: OpenedFile, data: bytes) -> os.stat_result:
    """Atomically replace the file with data, kept as the original; returns the new stat."""
    name, fd = _create(src.dir_fd, lambda token: f".{src.name}.pgauth-{token}.tmp")
    try:
        _write_as_original(fd, data, src, keep_times=False)
        written = os.fstat(fd)
        there = os.stat(src.name, dir_fd=src.dir_fd, follow_symlinks=False)
        if (there.st_dev, there.st_ino) != (src.stat.st_dev, src.stat.st_ino):
            # someone put another file there since it was read: do not overwrite theirs
            raise UnsafeFileError(f"{src.path} was replaced while it was being rewritten")
        os.replace(name, src.name, src_dir_fd=src.dir_fd, dst_dir_fd=src.dir_fd)
    except BaseException:
        _remove_own(src.dir_fd, name, fd)
        raise
    finally:
        os.close(fd)
    _fsync_dir(src.dir_fd)
    return written


def backup_pattern(name: str) -> re.Pattern:
    """Backups of name: this module's ``name.STAMP.RANDOM~`` and the earlier
    ``name.PID.STAMP~`` (which retention also cleans up)."""
    stamp = r"\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d"
    return re.compile(rf"^{re.escape(name)}\.(?:(?P<stamp>{stamp})\.[0-9a-f]+"
                      rf"|\d+\.(?P<old_stamp>{stamp}))~$")


def prune_backups(src: OpenedFile, keep: int) -> list[str]:
    """Remove all but the newest keep backups of the file; returns the removed paths.
    Only regular files count: a symlink named like a backup is neither counted nor followed
    (unlinkat removes a name, never what it points to)."""
    pattern = backup_pattern(src.name)
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC, dir_fd=src.dir_fd)
    found = []
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                match = pattern.match(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found.append((match.group("stamp") or match.group("old_stamp"),
                                  info.st_mtime_ns, entry.name))
    finally:
        os.close(fd)
    found.sort()
    removed = []
    for _stamp, _mtime, name in found[:max(len(found) - keep, 0)]:
        try:
            os.unlink(name, dir_fd=src.dir_fd)
            removed.append(os.path.join(src.directory, name))
        except FileNotFoundError:
            pass
    return removed
