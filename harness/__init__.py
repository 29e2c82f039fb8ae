"""et-hil: hardware-in-the-loop testing of ExecuTorch programs.

The pipeline, one subpackage per stage::

    build/    model -> artifact (.pte + ETRecord + metadata), cached by content
    boards/   artifact -> run result, on a board of a registered kind
    runner/   what the upstream Arm runner firmware speaks (logs, ETDump, BundleIO, ELF)
    verdict/  result -> verdict: references, tolerances, fit, the check pipeline
    report/   verdict -> report: the results record, JSON Lines, repro folders
    pytest/   the pytest plugin that maps options and fixtures onto all of it

The names below are the public API. They are loaded on first use, so importing
one submodule (or this package) imports neither torch nor the other stages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it.
_EXPORTS = {
    "Artifact": "harness.build.artifact",
    "ArtifactCache": "harness.build.cache",
    "Builder": "harness.build.builder",
    "QuantConfig": "harness.build.quantization",
    "Availability": "harness.boards.base",
    "Board": "harness.boards.base",
    "BoardOptions": "harness.boards.base",
    "Fidelity": "harness.boards.base",
    "RunResult": "harness.boards.base",
    "make_board": "harness.boards",
    "BoardKind": "harness.boards.kind",
    "BoardSpec": "harness.boards.spec",
    "load_board_file": "harness.boards.spec",
    "load_board_files": "harness.boards.spec",
    "load_boards": "harness.boards.spec",
    "Comparison": "harness.verdict.compare",
    "compare_outputs": "harness.verdict.compare",
    "format_table": "harness.verdict.compare",
    "Tolerance": "harness.tolerance",
    "TolerancePolicy": "harness.tolerance",
    "check_model": "harness.verdict.check",
    "bundle_program": "harness.verdict.bundle_file",
    "read_program": "harness.build.program_file",
    "run_program": "harness.verdict.program_check",
    "BoardUnavailable": "harness.errors",
    "BuildError": "harness.errors",
    "ConfigError": "harness.errors",
    "FailureClass": "harness.errors",
    "HarnessError": "harness.errors",
    "InfrastructureError": "harness.errors",
    "RunCrashed": "harness.errors",
    "RunError": "harness.errors",
    "RunTimeout": "harness.errors",
}

__all__ = [
    "Artifact",
    "ArtifactCache",
    "Availability",
    "Board",
    "BoardKind",
    "BoardOptions",
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
    "bundle_program",
    "check_model",
    "compare_outputs",
    "format_table",
    "load_board_file",
    "load_board_files",
    "load_boards",
    "make_board",
    "read_program",
    "run_program",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from harness.boards import make_board
    from harness.boards.base import Availability, Board, BoardOptions, Fidelity, RunResult
    from harness.boards.kind import BoardKind
    from harness.boards.spec import BoardSpec, load_board_file, load_board_files, load_boards
    from harness.build.artifact import Artifact
    from harness.build.builder import Builder
    from harness.build.cache import ArtifactCache
    from harness.build.program_file import read_program
    from harness.build.quantization import QuantConfig
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
    from harness.tolerance import Tolerance, TolerancePolicy
    from harness.verdict.bundle_file import bundle_program
    from harness.verdict.check import check_model
    from harness.verdict.compare import Comparison, compare_outputs, format_table
    from harness.verdict.program_check import run_program
