# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file scope's globs, walked by discover itself.

``glob.glob(recursive=True)`` follows symlinked directories (a ``loop -> ..`` link makes
the walk exponential), has no deadline inside, and ``/**`` walks /proc.  A pattern with
``**`` is walked here instead: os.scandir, directories never entered through a symlink,
each directory entered once (by st_dev, st_ino), /proc, /sys and /dev never entered, the
scope's deadline checked in every directory and the entries looked at bounded.  The
patterns mean what they mean to glob: ``*``, ``?`` and ``[...]`` within one path
component, ``**`` zero or more directories, hidden names only matched by a component that
starts with a dot (``**`` never enters a hidden directory).  A pattern without ``**`` is
left to glob (no recursion there)."""
from __future__ import annotations

import fnmatch
import functools
import glob
import os

MAX_WALK_ENTRIES = 100_000  # directory entries one scope looks at, over all its globs
# directories below a glob's root the walk enters: config files live far above this, and a
# tree nested deeper (anyone may make one where a glob looks) would exhaust the recursion
MAX_WALK_DEPTH = 64
SKIPPED_DIRS = ("/proc", "/sys", "/dev")


class WalkBudget(Exception):
    """The entry bound is reached (the scope turns it into its ScopeBudget)."""


def skipped_dir(path: str) -> bool:
    path = os.path.normpath(path)
    return any(path == top or path.startswith(top + "/") for top in SKIPPED_DIRS)


def _component(name: str, pattern: str) -> bool:
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


@functools.lru_cache(maxsize=4096)
def match(parts: tuple, patterns: tuple, prefix: bool = False) -> bool:
    """parts (path components below the walk's root) match patterns; with prefix, parts
    may still become a match further down (the walk enters that directory)."""
    if not patterns:
        return not parts
    if not parts:
        return prefix or all(item == "**" for item in patterns)
    head = patterns[0]
    if head == "**":
        return match(parts, patterns[1:], prefix) or (
            not parts[0].startswith(".") and match(parts[1:], patterns, prefix))
    return _component(parts[0], head) and match(parts[1:], patterns[1:], prefix)


def _split(pattern: str) -> tuple[str, tuple]:
    """(the literal directory the walk starts in, the pattern components below it)."""
    absolute = pattern.startswith("/")
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    literal = []
    while parts and not glob.has_magic(parts[0]):
        literal.append(parts.pop(0))
    if not parts:  # no magic at all: the file itself
        return os.path.dirname(pattern) or ".", (os.path.basename(pattern),)
    root = ("/" if absolute else "") + "/".join(literal)
    return root or ".", tuple(parts)


class Walker:
    """One scope's walk state: the entry count (across its globs) and the directories seen
    (per glob)."""

    def __init__(self, check_time=lambda: None, max_entries: int = MAX_WALK_ENTRIES):
        self.check_time, self.max_entries = check_time, max_entries
        self.entries = 0
        self.too_deep = 0  # directories not entered for MAX_WALK_DEPTH
        self.seen: set[tuple[int, int]] = set()

    def paths(self, pattern: str):
        """The regular files (not symlinks) pattern matches."""
        if "**" not in pattern:
            for path in sorted(glob.glob(pattern)):
                self.check_time()
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path
            return
        root, patterns = _split(pattern)
        self.seen = set()  # per pattern: another glob may match other names in the same dirs
        yield from self._walk(root, (), patterns)

    def _walk(self, directory: str, parts: tuple, patterns: tuple):
        self.check_time()
        if skipped_dir(os.path.abspath(directory)):
            return
        try:
            found = os.stat(directory)  # the root may be a symlink: the operator's choice
            if (found.st_dev, found.st_ino) in self.seen:
                return
            self.seen.add((found.st_dev, found.st_ino))
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            return  # unreadable or gone: nothing below it
        for entry in entries:
            self.entries += 1
            if self.entries > self.max_entries:
                raise WalkBudget(f"{self.max_entries} directory entries looked at")
            below = (*parts, entry.name)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if is_file and match(below, patterns):
                yield entry.path
            elif is_dir and len(below) > MAX_WALK_DEPTH:
                self.too_deep += 1
            elif is_dir and match(below, patterns, prefix=True):
                yield from self._walk(entry.path, below, patterns)
