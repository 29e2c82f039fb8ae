"""The ``serial`` board kind: a real board over a serial port, its ``[serial]`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.boards.kind import BoardKind
from harness.errors import ConfigError


def check_settings(table: Any, path: Path) -> list[str]:
    """The problems of a ``[serial]`` table (see :func:`parse_serial`)."""
    from harness.boards.serial.settings import parse_serial

    try:
        parse_serial(table, path)
    except ConfigError as exc:
        return [str(exc).removeprefix(f"board file {path}: ")]
    return []


SERIAL_KIND = BoardKind(
    name="serial",
    board="harness.boards.serial.board:SerialBoard",
    summary="a real board over a serial port: flash, reset, capture the runner's UART output",
    fidelities={"silicon": "a real board: PMU cycles of the device itself"},
    settings_table="serial",
    settings_required=True,
    check_settings=check_settings,
)
