"""Security review item 2: a file store written as root, in a directory its application's
user owns, must not let that user turn the write into reading or writing another file.

Each test runs the real module (``credops.pgauth.secret_value``, ``ansible`` ad-hoc against
localhost) as root on a file in a directory owned by ``nobody`` (uid 65534), after planting
what that user could plant there, and checks the files afterwards."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from labfixtures import BUILD

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on a module run as root")

BIN = Path(sys.executable).parent
APP_UID = APP_GID = 65534  # nobody: the application's user, who owns the config directory
OTHER_UID = 12345          # a user an ACL grants access to
OLD_PASSWORD = "Old-Passw0rd-4711"
CONFIG = ("# app settings\nAPP_NAME=demo\n"
          f"DATABASE_URL=postgresql://app_user:{OLD_PASSWORD}@127.0.0.1:5432/appdb\n")
STAMP = "%Y-%m-%d@%H:%M:%S"

# POSIX ACLs as the kernel stores them in the system.posix_acl_* xattrs (no setfacl here)
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
NO_ID = 0xFFFFFFFF


def posix_acl(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


# the file's ACL (mode 0640): OTHER_UID may read it too
FILE_ACL = posix_acl((ACL_USER_OBJ, 6, NO_ID), (ACL_USER, 4, OTHER_UID), (ACL_GROUP_OBJ, 4, NO_ID),
                     (ACL_MASK, 4, NO_ID), (ACL_OTHER, 0, NO_ID))
# a default ACL on the directory: files created in it would let OTHER_UID read them
DEFAULT_ACL = posix_acl((ACL_USER_OBJ, 7, NO_ID), (ACL_USER, 6, OTHER_UID),
                        (ACL_GROUP_OBJ, 5, NO_ID), (ACL_MASK, 7, NO_ID), (ACL_OTHER, 5, NO_ID))


def _pid_namespace_works() -> bool:
    if not shutil.which("unshare"):
        return False
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                          capture_output=True, check=False)
    return done.returncode == 0


def run_module(module: str, args: dict, cwd: Path, *, pid_namespace: bool = False,
               umask: int | None = None) -> tuple[dict, str]:
    """The module's result and the whole output of one ad-hoc run as root."""
    command = [str(BIN / "ansible"), "localhost", "-c", "local", "-e",
               f"ansible_python_interpreter={sys.executable}", "-m", f"credops.pgauth.{module}",
               "-a", json.dumps(args)]
    if pid_namespace:
        # the module's pid is then small and the same every run: the old backup name's pid
        # is known, and the names can be planted ahead
        command = ["unshare", "--pid", "--fork", "--mount-proc", *command]
    # the lab's Vault token ("root") would be masked in every message: file stores need none
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("VAULT_", "AWS_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(BUILD), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                          check=False, preexec_fn=(lambda: os.umask(umask)) if umask is not None
                          else None)
    output = done.stdout + done.stderr
    _head, sep, body = done.stdout.rpartition("localhost | ")
    assert sep, output
    status, _sep, result = body.partition(" => ")
    return {**json.loads(result), "failed": status.startswith(("FAILED", "UNREACHABLE"))}, output


@pytest.fixture
def root_dir():
    """A root-owned directory (0755) under /var/tmp: ext4 here, with user xattrs and ACLs
    (a tmpfs /tmp may have neither)."""
    path = Path(tempfile.mkdtemp(prefix="pgauth-sec-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def app_dir(root_dir):
    """The application's config directory, owned by its user (who can plant anything)."""
    path = root_dir / "app"
    path.mkdir()
    os.chown(path, APP_UID, APP_GID)
    return path


@pytest.fixture
def vault_dir(root_dir):
    """Stands in for /etc/cron.d: only root may write there."""
    path = root_dir / "rootonly"
    path.mkdir(mode=0o700)
    return path


def make_config(path: Path, mode: int = 0o600, text: str = CONFIG) -> Path:
    path.write_text(text)
    os.chown(path, APP_UID, APP_GID)
    path.chmod(mode)
    return path


def store(path: Path, **extra) -> dict:
    return {"name": "app-env", "type": "file", "path": str(path), "format": "dotenv",
            "key": "DATABASE_URL", **extra}


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def xattrs(path: Path) -> dict[str, bytes]:
    return {name: os.getxattr(path, name, follow_symlinks=False)
            for name in os.listxattr(path, follow_symlinks=False)}


def backups(directory: Path, name: str = "app.env") -> list[Path]:
    """Backup files (regular files, not planted symlinks) of name in directory."""
    return sorted(path for path in directory.iterdir()
                  if path.name.startswith(name + ".") and path.name.endswith("~")
                  and not path.is_symlink())


def test_planted_backup_symlinks_are_not_written_through(app_dir, vault_dir):
    """The attack of the review: the application's user plants symlinks at the names root's
    backup will be created at, pointing into a root-only directory (/etc/cron.d); root must
    not write the config there.  Run in a PID namespace, the old name ({path}.{pid}.{stamp}~)
    is predictable, so this hits the old code for certain."""
    config = make_config(app_dir / "app.env")
    target = vault_dir / "pgauth-job"
    in_namespace = _pid_namespace_works()
    if in_namespace:
        pids = range(1, 301)
    else:  # without unshare: the next pids of the whole machine
        last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
        pids = range(last + 1, last + 2001)
    now = datetime.datetime.now()
    stamps = [(now + datetime.timedelta(seconds=offset)).strftime(STAMP)
              for offset in range(-2, 61 if in_namespace else 31)]
    planted = []
    for pid in pids:
        for stamp in stamps:
            link = app_dir / f"app.env.{pid}.{stamp}~"
            os.symlink(target, link)
            os.lchown(link, APP_UID, APP_GID)
            planted.append(link)

    result, output = run_module("secret_value", {"store": store(config, backup=True),
                                                 "value": "N3w-Passw0rd-after"},
                                app_dir, pid_namespace=in_namespace)

    assert not target.exists(), \
        f"root wrote the config through a planted symlink: {target} exists"
    assert not result.get("failed"), output
    assert all(link.is_symlink() and os.readlink(link) == str(target) for link in planted)
    made = backups(app_dir)
    assert len(made) == 1, [path.name for path in made]
    assert made[0].read_text() == CONFIG
    info = made[0].lstat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (APP_UID, APP_GID, 0o600)
    assert "N3w-Passw0rd-after" in config.read_text()


def test_a_symlink_at_the_store_path_is_refused(app_dir, vault_dir):
    """The application's user replaces its config by a symlink to a root-only file holding
    another credential: root must neither read it (secret_value_info would show its user
    and host) nor write it, nor replace the link by a copy of it."""
    secret = vault_dir / "admin.env"
    secret.write_text("DATABASE_URL=postgresql://root_admin:Root-Only-S3cret@10.9.8.7:5432/"
                      "postgres\n")
    secret.chmod(0o600)
    before = fingerprint(secret)
    link = app_dir / "app.env"
    os.symlink(secret, link)
    os.lchown(link, APP_UID, APP_GID)

    result, output = run_module("secret_value", {"store": store(link, backup=True),
                                                 "value": "Attacker-Chosen-1"}, app_dir)

    assert result.get("failed"), f"the write went through the symlink: {output}"
    assert "store 'app-env'" in result["msg"] and f"{link} is a symbolic link" in result["msg"]
    assert link.is_symlink() and os.readlink(link) == str(secret)
    assert fingerprint(secret) == before
    assert sorted(path.name for path in app_dir.iterdir()) == ["app.env"]

    info, output = run_module("secret_value_info", {"store": store(link)}, app_dir)
    assert info.get("failed"), f"root read the file the link points to: {output}"
    assert "symbolic link" in info["msg"]
    assert "root_admin" not in output and "10.9.8.7" not in output


def test_a_root_owned_symlink_is_followed_and_kept(root_dir):
    """The ops-friendly case: root linked the app's .env to a file in /etc/app; the write
    goes to that file, as the original, and the link stays a link."""
    etc_app = root_dir / "etc-app"
    etc_app.mkdir(mode=0o755)
    real = make_config(etc_app / "app.env", mode=0o640)
    app = root_dir / "srv-app"
    app.mkdir()
    os.chown(app, APP_UID, APP_GID)
    link = app / ".env"
    os.symlink(real, link)  # root's own link

    result, output = run_module("secret_value", {"store": store(link, backup=True),
                                                 "value": "Linked-Passw0rd-2"}, app)

    assert not result.get("failed"), output
    assert link.is_symlink() and os.readlink(link) == str(real), "the link was replaced"
    assert "Linked-Passw0rd-2" in real.read_text()
    info = real.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (APP_UID, APP_GID, 0o640)
    made = backups(etc_app)
    assert len(made) == 1 and made[0].read_text() == CONFIG
    assert sorted(path.name for path in app.iterdir()) == [".env"]


def test_rewrite_and_backup_keep_owner_group_mode_acl_and_xattrs(app_dir):
    config = make_config(app_dir / "app.env", mode=0o640)
    try:
        os.setxattr(config, "user.test", b"keep-me")
        os.setxattr(config, "system.posix_acl_access", FILE_ACL)
    except OSError as err:
        pytest.skip(f"no user xattrs or ACLs on {config.parent}: {err.strerror}")
    before = xattrs(config)
    assert set(before) == {"user.test", "system.posix_acl_access"}

    result, output = run_module("secret_value", {"store": store(config, backup=True),
                                                 "value": "Acl-Passw0rd-3"}, app_dir)

    assert not result.get("failed"), output
    assert "Acl-Passw0rd-3" in config.read_text()
    assert xattrs(config) == before, "the rewritten file lost its xattrs or its ACL"
    info = config.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (APP_UID, APP_GID, 0o640)
    made = backups(app_dir)
    assert len(made) == 1 and made[0].read_text() == CONFIG
    copy = made[0].lstat()
    assert (copy.st_uid, copy.st_gid, stat.S_IMODE(copy.st_mode)) == (APP_UID, APP_GID, 0o640), \
        "the backup is not owned and moded as the original"
    assert xattrs(made[0]) == before, "the backup lost the xattrs or the ACL"
    assert [path.name for path in app_dir.iterdir() if path.name.startswith(".")] == [], \
        "a temporary file was left behind"


def test_a_default_acl_of_the_directory_does_not_widen_the_rewrite(app_dir):
    """A file created in a directory with a default ACL inherits it: a rewrite built from a
    new file would let OTHER_UID read the secret that the original (no ACL) kept from it."""
    config = make_config(app_dir / "app.env", mode=0o640)
    try:
        os.setxattr(app_dir, "system.posix_acl_default", DEFAULT_ACL)
    except OSError as err:
        pytest.skip(f"no ACLs on {app_dir}: {err.strerror}")
    assert xattrs(config) == {}

    result, output = run_module("secret_value", {"store": store(config, backup=True),
                                                 "value": "Dacl-Passw0rd-4"}, app_dir)

    assert not result.get("failed"), output
    assert "Dacl-Passw0rd-4" in config.read_text()
    assert xattrs(config) == {}, "the rewritten file got an ACL the original did not have"
    made = backups(app_dir)
    assert len(made) == 1
    assert xattrs(made[0]) == {}, "the backup got an ACL the original did not have"
    assert stat.S_IMODE(made[0].stat().st_mode) == 0o640


@pytest.mark.parametrize("created", ["mode 0600", "umask 022"])
def test_a_backup_is_never_wider_than_the_original(app_dir, created):
    """Run with umask 000, the most permissive one: the backup and the rewrite still get the
    original's mode and owner, never wider."""
    config = app_dir / "app.env"
    if created == "umask 022":
        # what an editor or a deploy script leaves: a new file under the usual umask
        old_umask = os.umask(0o022)
        try:
            config.write_text(CONFIG)
        finally:
            os.umask(old_umask)
        os.chown(config, APP_UID, APP_GID)
    else:
        make_config(config, mode=0o600)
    mode = stat.S_IMODE(config.stat().st_mode)
    assert mode == (0o644 if created == "umask 022" else 0o600)

    result, output = run_module("secret_value", {"store": store(config, backup=True),
                                                 "value": "Umask-Passw0rd-5"}, app_dir, umask=0)

    assert not result.get("failed"), output
    made = backups(app_dir)
    assert len(made) == 1
    copy = made[0].lstat()
    assert stat.S_IMODE(copy.st_mode) & ~mode == 0, f"backup mode {oct(copy.st_mode)}"
    assert (copy.st_uid, copy.st_gid) == (APP_UID, APP_GID), \
        f"backup owned by {copy.st_uid}:{copy.st_gid}, not the original's owner"
    info = config.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, APP_UID, APP_GID)


def test_backup_keep_removes_the_oldest_backups_only(app_dir, vault_dir):
    config = make_config(app_dir / "app.env")
    # named like an old backup: a symlink (not counted, not followed), and an unrelated file
    kept = vault_dir / "keep-me"
    kept.write_text("root's\n")
    lure = app_dir / "app.env.2000-01-01@00:00:00.0123456789ab~"
    os.symlink(kept, lure)
    os.lchown(lure, APP_UID, APP_GID)
    unrelated = make_config(app_dir / "app.env.bak")
    versions = []
    for number in range(4):
        versions.append(config.read_text())
        result, output = run_module("secret_value", {
            "store": store(config, backup=True, backup_keep=2),
            "value": f"Keep-Passw0rd-{number}"}, app_dir)
        assert not result.get("failed"), output

    made = backups(app_dir)
    assert [path.read_text() for path in made] == versions[2:], "not the two newest backups"
    assert lure.is_symlink() and kept.read_text() == "root's\n"
    assert unrelated.read_text() == CONFIG
    assert "Keep-Passw0rd-3" in config.read_text()
