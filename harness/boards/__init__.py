"""Board implementations, chosen by the ``kind`` of a board file."""

from __future__ import annotations

from pathlib import Path

from harness.boards.base import Availability, Board, BoardOptions, Fidelity, RunResult
from harness.boardspec import BoardSpec

__all__ = ["Availability", "Board", "BoardOptions", "Fidelity", "RunResult", "make_board"]


def make_board(spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None) -> Board:
    """The board object for ``spec``; ``work_dir`` holds its logs."""
    if spec.kind == "host":
        from harness.boards.host import HostBoard

        return HostBoard(spec, work_dir)
    if spec.kind == "tosa":
        from harness.boards.tosa import TosaBoard

        return TosaBoard(spec, work_dir)
    if spec.kind == "fvp":
        from harness.boards.fvp import FvpBoard

        return FvpBoard(spec, work_dir, options)
    if spec.kind == "serial":
        from harness.boards.serial import SerialBoard

        return SerialBoard(spec, work_dir, options)
    from harness.errors import ConfigError

    raise ConfigError(f"board file {spec.path}: no implementation of kind '{spec.kind}'")
