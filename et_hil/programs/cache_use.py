"""Which cache entries are in use: a shared lock per entry, held by each process using it.

A process that finds or builds an entry holds a shared ``flock`` on
``locks/<key>.use`` until it closes its cache; ``et-hil cache prune`` removes an
entry only while it holds the exclusive lock, which it cannot get while any
session holds the entry. The kernel drops the locks of a process that dies.

A lock file may be removed by the pruner (so ``locks/`` does not grow without
bound); a holder therefore checks, once locked, that the path still names the
file it locked, and starts again if not.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".use"
HELD_LIMIT = 256  # open lock files per process; the oldest is let go beyond it


def use_lock_path(lock_dir: Path, key: str) -> Path:
    """The use lock of one entry."""
    return lock_dir / f"{key}{SUFFIX}"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class EntryUses:
    """The entries one process uses, each held with a shared lock.

    Args:
        lock_dir: the cache's ``locks`` folder.
    """

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self._held: collections.OrderedDict[str, int] = collections.OrderedDict()

    def hold(self, key: str) -> None:
        """Hold ``key`` as in use (idempotent). Waits while a prune is removing it.
        Best effort: a cache this process cannot write is used without a lock."""
        if key in self._held:
            self._held.move_to_end(key)
            return
        path = use_lock_path(self.lock_dir, key)
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_SH)
                if _same_file(fd, path):
                    break
                os.close(fd)  # the pruner removed it meanwhile: lock the new one
        except OSError:
            return
        self._held[key] = fd
        while len(self._held) > HELD_LIMIT:
            _, oldest = self._held.popitem(last=False)
            os.close(oldest)

    def release_all(self) -> None:
        """Let go of every entry."""
        while self._held:
            _, fd = self._held.popitem()
            os.close(fd)


@contextlib.contextmanager
def unused(lock_dir: Path, key: str) -> Iterator[bool]:
    """Hold ``key`` exclusively if nobody uses it: yields True then, False when a
    process holds it. The lock file is removed on the way out when it was ours."""
    path = use_lock_path(lock_dir, key)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield False  # cannot tell: treat it as in use
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if not _same_file(fd, path):
            yield False  # another pruner took it first
            return
        try:
            yield True
        finally:
            # Unlinked while locked: a holder that opened it meanwhile sees the
            # path gone once it gets its lock, and makes a new one.
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(fd)
