"""Running a board's external commands (flash, reset, firmware build) with a
time limit: each runs in its own process group, killed as a group on timeout
or interrupt, so a hung probe or build never outlives the test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from harness.boards import signals
from harness.boards.serial.settings import Command
from harness.errors import InfrastructureError

OUTPUT_TAIL_CHARS = 4000


def run_board_command(
    command: Command, values: Mapping[str, Any], *, board: str, what: str
) -> tuple[list[str], str, float]:
    """Run one rendered command to completion.

    Args:
        command: the template from the board file.
        values: placeholder values.
        board: board name, for messages.
        what: ``flash``, ``reset`` or ``firmware build``, for messages.

    Returns:
        The argv run, its merged stdout and stderr, and its wall time.

    Raises:
        InfrastructureError: the program is missing, exits non-zero, or times
            out; the message names the board, the step and the command.
    """
    argv = command.render(values)
    if not tool_exists(argv[0]):
        hint = " (pip install pyocd)" if argv[0] == "pyocd" else ""
        raise InfrastructureError(
            f"board '{board}': the {what} command '{argv[0]}' is not installed or not on PATH{hint}"
        )
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=signals.die_with_parent(),  # even if we are SIGKILLed
        )
    except OSError as exc:
        raise InfrastructureError(
            f"board '{board}': cannot start the {what} command {argv[0]}: {exc.strerror}"
        ) from exc
    try:
        output, _ = proc.communicate(timeout=command.timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild that left the group holds the pipe
            proc.kill()
            output = b""
        raise InfrastructureError(
            f"board '{board}': the {what} command timed out after {command.timeout_s:g} s "
            f"and was killed: {' '.join(argv)}",
            log_tail=_tail(output),
        ) from None
    except BaseException:  # Ctrl-C: take the whole group down before unwinding
        _kill_group(proc)
        proc.wait()
        raise
    wall = time.monotonic() - started
    text = _tail(output)
    if proc.returncode != 0:
        raise InfrastructureError(
            f"board '{board}': the {what} command exited with status {proc.returncode}: "
            f"{' '.join(argv)}",
            log_tail=text,
        )
    return argv, text, wall


def tool_exists(program: str) -> bool:
    """Whether a command's program is on PATH or is a path that exists."""
    return shutil.which(program) is not None or os.path.exists(program)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(output: bytes | None) -> str:
    return (output or b"").decode(errors="replace")[-OUTPUT_TAIL_CHARS:]
