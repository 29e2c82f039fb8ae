"""Boards whose kind this version does not implement: always unavailable, never a fake pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from harness.artifact import Artifact
from harness.boards.base import Availability, RunResult, RunsGivenInputs
from harness.boardspec import BoardSpec
from harness.errors import BoardUnavailable

_PLANNED = {
    "serial": "real boards over serial",
}


class UnimplementedBoard(RunsGivenInputs):
    """Stands for a board of a kind not implemented yet; every run is refused."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec

    def availability(self) -> Availability:
        """Never available, saying so plainly."""
        what = _PLANNED.get(self.spec.kind, f"kind '{self.spec.kind}'")
        return Availability(
            False,
            f"board kind '{self.spec.kind}' ({what}) is not implemented in this version of et-hil",
            "run on --board=host meanwhile",
        )

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def run(
        self,
        artifact: Artifact,
        inputs: Sequence[npt.NDArray[Any]],
        *,
        run_dir: Path,
        timeout_s: float | None = None,
        debug_buffer_size: int = 0,
        expected: Sequence[npt.NDArray[Any]] | None = None,
    ) -> RunResult:
        """Refuse: nothing can run here.

        Raises:
            BoardUnavailable: always.
        """
        availability = self.availability()
        raise BoardUnavailable(self.spec.name, availability.reason, availability.hint)
