"""Child processes that never outlive their use: each runs in its own process
group, and the whole group is killed on timeout, error or interrupt.

Every board that starts a program (an FVP, a runtime worker, a flash or reset
command) starts it here, so the rules are kept in one place:

* its own session (``start_new_session``): Ctrl-C in the terminal reaches
  pytest only, which then ends the child itself, and ``killpg`` reaches any
  grandchild the program started (an FVP's helpers, a probe server);
* ``PR_SET_PDEATHSIG`` (:func:`et_hil.processes.signals.die_with_parent`): the
  kernel kills the child even when the harness itself is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from et_hil.processes import signals

# How long to wait for a SIGKILLed child to be reaped. SIGKILL cannot be caught,
# so this only runs out for a child stuck in the kernel (uninterruptible I/O).
REAP_S = 10.0


def start(
    argv: Sequence[str],
    *,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.STDOUT,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, to die with this thread.

    The caller must end it with :func:`kill_group` (or use :func:`run`).

    Raises:
        OSError: the program cannot be started (the caller words the message).
    """
    return subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=signals.die_with_parent(),  # even if we are SIGKILLed
    )


def kill_group(proc: subprocess.Popen[bytes], reap_s: float = REAP_S) -> None:
    """SIGKILL the child's whole process group and reap the child.

    Safe to call on a child that has already exited (its leftover grandchildren
    still die) and more than once.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=reap_s)


@dataclasses.dataclass(frozen=True)
class Finished:
    """How a child run by :func:`run` ended.

    Attributes:
        returncode: its exit status (negative: killed by that signal); ``None``
            when it was killed at the time limit.
        output: its merged stdout and stderr when captured (``log`` not given).
        timed_out: it was still running at the time limit.
        wall_s: from start to end, seconds.
    """

    returncode: int | None
    output: bytes
    timed_out: bool
    wall_s: float


def run(
    argv: Sequence[str],
    timeout_s: float,
    *,
    log: IO[bytes] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run ``argv`` to its end or to ``timeout_s``; nothing of it is left running.

    stdout and stderr are merged: into ``log`` when given, else captured in
    :attr:`Finished.output`. The process group is killed when the child exits
    (grandchildren it left behind), at the time limit, and when anything
    (an error, ``KeyboardInterrupt``) interrupts the wait. ``env`` replaces the
    environment, as :class:`subprocess.Popen`'s does.

    Raises:
        OSError: the program cannot be started.
    """
    started = time.monotonic()
    proc = start(argv, stdout=subprocess.PIPE if log is None else log, cwd=cwd, env=env)
    output: bytes | None = None
    timed_out = False
    try:
        try:
            if log is None:
                output, _ = proc.communicate(timeout=timeout_s)
            else:
                proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc)
            if log is None:
                try:
                    output, _ = proc.communicate(timeout=REAP_S)
                except subprocess.TimeoutExpired:
                    # A grandchild that left the group still holds the pipe:
                    # its output is lost, the child itself is reaped.
                    proc.kill()
                    output = b""
    finally:
        kill_group(proc)
        if proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdout.close()
    return Finished(
        None if timed_out else proc.returncode,
        output or b"",
        timed_out,
        time.monotonic() - started,
    )
