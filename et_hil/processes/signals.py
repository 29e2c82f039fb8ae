"""Cancellation: SIGTERM and SIGHUP end a run the way Ctrl-C does, and children die
with the process that started them.

CI systems cancel a job with SIGTERM to pytest's process group; a closed
terminal sends SIGHUP. Python's default for both is to die at once, skipping
every ``finally`` and fixture teardown, so simulators and runtime workers (in
their own sessions, out of reach of the group signal) would be orphaned and run
to their own time limits. Turned into ``KeyboardInterrupt``, they unwind like
Ctrl-C: each board kills its process group or removes its container, finished
records are already on disk, and pytest exits with status 2.

Children also get ``PR_SET_PDEATHSIG``: when the thread that started them dies
(even by SIGKILL), the kernel kills them, which no handler can do.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Later signals while unwinding: cleanup must finish. (A Python no-op, not
    SIG_IGN, which children would inherit across exec.)"""


def _cancel(signum: int, frame: FrameType | None) -> None:
    for sig in CANCEL_SIGNALS:
        signal.signal(sig, _ignore)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # execnet interrupts a worker that has not finished 5 s after the
        # controller shuts it down; our teardown (killing FVPs, removing
        # containers) must not be cut short by that second interrupt.
        signal.signal(signal.SIGINT, _ignore)
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def install() -> dict[int, Any]:
    """Make SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in this (main) thread.

    Returns:
        The previous handlers, for :func:`restore`; empty when not on the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}  # signal.signal works on the main thread only
    previous: dict[int, Any] = {sig: signal.signal(sig, _cancel) for sig in CANCEL_SIGNALS}
    if os.environ.get("PYTEST_XDIST_WORKER"):
        previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`install` replaced."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _resolve_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _resolve_prctl()  # resolved once, here: the child must not load libraries


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when its parent thread
    dies (Linux), or ``None`` where that is not available.

    The parent's pid is taken now: a parent that died before the child's
    ``prctl`` would otherwise go unnoticed.
    """
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
