"""Hooks et-hil adds to pytest, for conftest.py files and plugins to implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from et_hil.boards.registry import BoardKind
    from et_hil.programs.target_kind import TargetKind


def pytest_et_hil_board_kinds() -> Sequence[BoardKind]:  # type: ignore[empty-body]
    """Return the board kinds this conftest.py or plugin adds.

    Called once per pytest process (controller and each xdist worker) before any
    board file is read, so board files may use the kinds. Each result is a list
    of :class:`et_hil.boards.registry.BoardKind`.
    """


def pytest_et_hil_compile_targets() -> Sequence[TargetKind]:  # type: ignore[empty-body]
    """Return the compile target kinds this conftest.py or plugin adds.

    Called once per pytest process (controller and each xdist worker) before any
    board file is read, so board files may name their targets. Each result is a
    list of :class:`et_hil.programs.target_kind.TargetKind` (see
    :mod:`et_hil.programs.target_registry`).
    """
