"""The ``serial`` board kind: a real board over a serial port, its ``[serial]`` table."""

from __future__ import annotations

from pathlib import Path

from et_hil.boards.kind import BoardKind
from et_hil.boards.serial.memory import SerialFirmwareMemory
from et_hil.boards.serial.settings import SerialTable, serial_problems


def check_settings(table: SerialTable | None, path: Path) -> list[str]:
    """The problems across the fields of a well-typed ``[serial]`` table
    (a method's required fields, command placeholders, units; see
    :func:`et_hil.boards.serial.settings.serial_problems`)."""
    return [] if table is None else serial_problems(table, path)


SERIAL_KIND = BoardKind(
    name="serial",
    board="et_hil.boards.serial.board:SerialBoard",
    summary="a real board over a serial port: flash, reset, capture the runner's UART output",
    fidelities={"silicon": "a real board: PMU cycles of the device itself"},
    settings_table="serial",
    settings_type=SerialTable,
    settings_required=True,
    check_settings=check_settings,
    add_commands="et_hil.boards.serial.cli:add_commands",
    memory_layout=SerialFirmwareMemory(),
    fixed_shapes="the UART runner's inputs are fixed when its firmware is built",
    debug_reducer="STATS",  # full tensors over a UART take minutes a layer
)
