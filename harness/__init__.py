"""et-hil: hardware-in-the-loop testing of ExecuTorch programs.

model -> artifact (.pte + ETRecord + metadata) -> board run -> result -> verdict -> report.

The library works from plain scripts; :mod:`harness.plugin` maps pytest options
and fixtures onto it. Importing this package does not import torch.
"""

from __future__ import annotations

from harness.artifact import Artifact
from harness.boards import Availability, Board, Fidelity, RunResult, make_board
from harness.boardspec import BoardSpec, load_board_file, load_board_files, load_boards
from harness.build import Builder
from harness.cache import ArtifactCache
from harness.compare import Comparison, compare_outputs, format_table
from harness.errors import (
    BoardUnavailable,
    BuildError,
    ConfigError,
    FailureClass,
    HarnessError,
    InfrastructureError,
    RunCrashed,
    RunError,
    RunTimeout,
)
from harness.quantization import QuantConfig
from harness.tolerance import Tolerance, TolerancePolicy

__all__ = [
    "Artifact",
    "ArtifactCache",
    "Availability",
    "Board",
    "BoardSpec",
    "BoardUnavailable",
    "BuildError",
    "Builder",
    "Comparison",
    "ConfigError",
    "FailureClass",
    "Fidelity",
    "HarnessError",
    "InfrastructureError",
    "QuantConfig",
    "RunCrashed",
    "RunError",
    "RunResult",
    "RunTimeout",
    "Tolerance",
    "TolerancePolicy",
    "compare_outputs",
    "format_table",
    "load_board_file",
    "load_board_files",
    "load_boards",
    "make_board",
]
