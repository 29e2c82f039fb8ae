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
    "Artifact": "et_hil.programs.artifact",
    "ArtifactCache": "et_hil.programs.cache",
    "Builder": "et_hil.programs.builder",
    "QuantConfig": "et_hil.programs.quantization",
    "TargetKind": "et_hil.programs.target_kind",
    "Availability": "et_hil.boards.base",
    "Board": "et_hil.boards.base",
    "BoardOptions": "et_hil.boards.base",
    "Fidelity": "et_hil.boards.base",
    "RunResult": "et_hil.boards.base",
    "make_board": "et_hil.boards",
    "BoardKind": "et_hil.boards.kind",
    "BoardSpec": "et_hil.boards.spec",
    "load_board_file": "et_hil.boards.spec",
    "load_board_files": "et_hil.boards.spec",
    "load_boards": "et_hil.boards.spec",
    "Comparison": "et_hil.verdict.compare",
    "compare_outputs": "et_hil.verdict.compare",
    "format_table": "et_hil.verdict.compare",
    "Tolerance": "et_hil.tolerance",
    "TolerancePolicy": "et_hil.tolerance",
    "check_model": "et_hil.verdict.check",
    "bundle_program": "et_hil.verdict.bundle_file",
    "read_program": "et_hil.programs.program_file",
    "run_program": "et_hil.verdict.program_check",
    "BoardUnavailable": "et_hil.errors",
    "BuildError": "et_hil.errors",
    "ConfigError": "et_hil.errors",
    "FailureClass": "et_hil.errors",
    "HarnessError": "et_hil.errors",
    "InfrastructureError": "et_hil.errors",
    "RunCrashed": "et_hil.errors",
    "RunError": "et_hil.errors",
    "RunTimeout": "et_hil.errors",
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
    "TargetKind",
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
        raise AttributeError(f"module 'et_hil' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from et_hil.boards import make_board
    from et_hil.boards.base import Availability, Board, BoardOptions, Fidelity, RunResult
    from et_hil.boards.kind import BoardKind
    from et_hil.boards.spec import BoardSpec, load_board_file, load_board_files, load_boards
    from et_hil.errors import (
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
    from et_hil.programs.artifact import Artifact
    from et_hil.programs.builder import Builder
    from et_hil.programs.cache import ArtifactCache
    from et_hil.programs.program_file import read_program
    from et_hil.programs.quantization import QuantConfig
    from et_hil.programs.target_kind import TargetKind
    from et_hil.tolerance import Tolerance, TolerancePolicy
    from et_hil.verdict.bundle_file import bundle_program
    from et_hil.verdict.check import check_model
    from et_hil.verdict.compare import Comparison, compare_outputs, format_table
    from et_hil.verdict.program_check import run_program
