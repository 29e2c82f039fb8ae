"""Exclusive use of physical boards across processes (xdist workers, separate
pytest runs, other users of the lab machine).

Each unit has a lock file named after its port; ``flock`` locks (through
:mod:`filelock`) belong to the open file, so the kernel releases them when the
holder dies, even by SIGKILL: a crashed run never leaves a board locked. A pool
(identical units under one board name) hands out whichever unit is free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock

from et_hil.boards.serial.settings import Unit
from et_hil.errors import InfrastructureError

POLL_S = 0.1


def lock_dir() -> Path:
    """Where unit locks live: ``$ET_HIL_LOCK_DIR``, else one folder in the system
    temp dir that every user of the machine shares (sticky, world-writable)."""
    configured = os.environ.get("ET_HIL_LOCK_DIR")
    folder = Path(configured) if configured else Path(tempfile.gettempdir()) / "et-hil-locks"
    if not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfrastructureError(
                f"cannot create the board lock folder {folder} ({exc.strerror}); "
                "set ET_HIL_LOCK_DIR to a folder every user of the boards can write"
            ) from exc
        if not configured:
            with contextlib.suppress(OSError):
                folder.chmod(0o1777)
    return folder


def port_identity(port: str, by_id_dir: Path = Path("/dev/serial/by-id")) -> str:
    """One stable name per physical port, for its lock and state.

    ``/dev/ttyACM0`` numbers change when USB re-enumerates, so a device node is
    named by the ``/dev/serial/by-id`` link that points at it, when there is one
    (a board written as ``/dev/ttyACM0`` and as its by-id name is one board).
    Other symlinks resolve to their target; URLs (``socket://``,
    ``rfc2217://``) stay as written.
    """
    if "://" in port:
        return port
    if port.startswith(str(by_id_dir) + os.sep):
        return port
    real = os.path.realpath(port)
    with contextlib.suppress(OSError):
        for link in sorted(by_id_dir.iterdir()):
            if os.path.realpath(link) == real:
                return str(link)
    return real


def lock_path(port: str, folder: Path | None = None) -> Path:
    """The lock file of a unit's port."""
    identity = port_identity(port)
    readable = "".join(c if c.isalnum() else "_" for c in identity).strip("_")[-40:]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return (folder or lock_dir()) / f"{readable}-{digest}.lock"


@dataclasses.dataclass
class Lease:
    """A unit held by this process until :meth:`release`.

    Attributes:
        unit: the unit held.
        waited_s: how long it took to get it.
        acquired_at: ``time.time()`` when it was got (records show turns).
    """

    unit: Unit
    waited_s: float
    acquired_at: float
    _lock: filelock.BaseFileLock
    _state_path: Path

    def state(self) -> dict[str, Any]:
        """What the harness last recorded about this unit (the firmware it
        flashed, who holds it)."""
        return _read_json(self._state_path)

    def set_state(self, **facts: Any) -> None:
        """Record facts about the unit for the next holder. Written in place
        (this process holds the unit): the file may belong to another user of
        the lab, and is created readable and writable by all."""
        data = json.dumps({**self.state(), **facts}, sort_keys=True)
        with contextlib.suppress(OSError):
            fd = os.open(self._state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            with os.fdopen(fd, "w") as state:
                state.write(data)
            with contextlib.suppress(OSError):
                self._state_path.chmod(0o666)  # despite the umask; fails if not ours

    def release(self) -> None:
        """Let the next process have the unit. Idempotent."""
        self._lock.release(force=True)


def acquire(
    board: str, units: Sequence[Unit], timeout_s: float, folder: Path | None = None
) -> Lease:
    """The first free unit of the pool, waiting up to ``timeout_s`` for one.

    Raises:
        InfrastructureError: no unit came free in time (names the holders' ports).
    """
    folder = folder or lock_dir()
    locks = [
        (unit, filelock.FileLock(lock_path(unit.port, folder), mode=0o666, thread_local=False))
        for unit in units
    ]
    started = time.monotonic()
    while True:
        for unit, lock in locks:
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                continue
            except OSError as exc:  # a lock file another user made unwritable
                raise InfrastructureError(
                    f"board '{board}': cannot lock {lock.lock_file} ({exc.strerror}); "
                    "set ET_HIL_LOCK_DIR to a folder every user of the boards can write"
                ) from exc
            waited = time.monotonic() - started
            lease = Lease(unit, waited, time.time(), lock, _state_path(lock))
            lease.set_state(holder=_holder(board))
            return lease
        if time.monotonic() - started >= timeout_s:
            holders = "; ".join(
                f"{unit.port}: {_describe(_read_json(_state_path(lock)).get('holder'))}"
                for unit, lock in locks
            )
            raise InfrastructureError(
                f"board '{board}': every unit is in use after {timeout_s:g} s ({holders}). "
                f"Locks are in {folder}; raise [serial] lock_timeout_s or add units"
            )
        time.sleep(POLL_S)


def _state_path(lock: filelock.BaseFileLock) -> Path:
    return Path(str(lock.lock_file)).with_suffix(".json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder(board: str) -> dict[str, Any]:
    """Who takes a unit, so a waiting run can say who it waits for."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {
        "board": board,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": user,
        "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }


def _describe(holder: Any) -> str:
    if not isinstance(holder, dict):
        return "held (holder unknown)"
    return (
        f"held by {holder.get('user')} on {holder.get('host')}, pid {holder.get('pid')} "
        f"({holder.get('worker')}), since {holder.get('since')}"
    )


@contextlib.contextmanager
def held(
    board: str, units: Sequence[Unit], timeout_s: float, folder: Path | None = None
) -> Iterator[Lease]:
    """:func:`acquire` as a context manager that always releases."""
    lease = acquire(board, units, timeout_s, folder)
    try:
        yield lease
    finally:
        lease.release()


def unit_status(unit: Unit, folder: Path | None = None) -> tuple[bool, str]:
    """Whether a unit is held now, and by whom (tries the lock without waiting)."""
    path = lock_path(unit.port, folder)
    lock = filelock.FileLock(path, mode=0o666, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        state = _read_json(path.with_suffix(".json"))
        return True, _describe(state.get("holder"))
    lock.release()
    return False, "free"
