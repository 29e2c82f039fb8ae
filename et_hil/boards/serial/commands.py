"""Running a board's external commands (flash, reset, firmware build) with a
time limit: each runs in its own process group, killed as a group on timeout
or interrupt, so a hung probe or build never outlives the test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

from et_hil import processes
from et_hil.boards.serial.settings import Command
from et_hil.errors import InfrastructureError

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
    try:
        finished = processes.run(argv, command.timeout_s)
    except OSError as exc:
        raise InfrastructureError(
            f"board '{board}': cannot start the {what} command {argv[0]}: {exc.strerror}"
        ) from exc
    text = _tail(finished.output)
    if finished.timed_out:
        raise InfrastructureError(
            f"board '{board}': the {what} command timed out after {command.timeout_s:g} s "
            f"and was killed: {' '.join(argv)}",
            log_tail=text,
        )
    if finished.returncode != 0:
        raise InfrastructureError(
            f"board '{board}': the {what} command exited with status {finished.returncode}: "
            f"{' '.join(argv)}",
            log_tail=text,
        )
    return argv, text, finished.wall_s


def tool_exists(program: str) -> bool:
    """Whether a command's program is on PATH or is a path that exists."""
    return shutil.which(program) is not None or os.path.exists(program)


def _tail(output: bytes) -> str:
    return output.decode(errors="replace")[-OUTPUT_TAIL_CHARS:]
