"""Which runs are live on a results file: a lock per run, held by its controlling process.

Two pytest sessions started in one folder share the default results file. A run
that finds the file holding another run's records keeps them when that run is
still going (its records and repro folders are in use), and starts the file
afresh only from runs that have ended.

A live run holds an exclusive ``flock`` on ``<results>.live/<run id>`` from
session start to session end. The kernel drops the lock when its holder dies,
even by SIGKILL, so a killed run is never taken for a live one. A lock file is
made under a temporary name, locked, then renamed into place: a file that
carries a run id was locked before anyone could see it, so an unlocked one is a
leftover of a dead run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

SUFFIX = ".live"


def live_dir(results_path: Path) -> Path:
    """The folder of live-run locks of one results file."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.name + SUFFIX)


class LiveRun:
    """Marks one run as live on a results file while :meth:`start`-ed.

    Args:
        results_path: the run's results file.
        run_id: the run's id (what its records carry).
    """

    def __init__(self, results_path: Path, run_id: str) -> None:
        self.folder = live_dir(results_path)
        self.run_id = run_id
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """This run's lock file."""
        return self.folder / self.run_id

    def start(self) -> None:
        """Take the run's lock (idempotent). Raises ``OSError`` when the folder
        cannot be written; a run that cannot say it is live is never protected."""
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{self.run_id}.{os.getpid()}"
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.replace(partial, self.path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        self._fd = fd

    def end(self) -> None:
        """Drop the lock and its file (and the folder when no other run is live)."""
        if self._fd is None:
            return
        # Unlink before unlocking: whoever then takes the lock of the old file
        # finds it gone, never a file that names a run that ended.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty


def live_runs(results_path: Path) -> set[str]:
    """The ids of runs whose lock on ``results_path`` is held now (leftovers of
    dead runs are removed on the way)."""
    folder = live_dir(results_path)
    try:
        names = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return set()
    live: set[str] = set()
    for path in names:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # ended while we looked
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.add(path.name)
        else:
            with contextlib.suppress(OSError):
                path.unlink()  # its run died without ending: a leftover
        finally:
            os.close(fd)
    return live
