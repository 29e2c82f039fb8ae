"""Run a program file (``.pte`` or BundleIO ``.bpte``) on a board and judge it.

Without the ``nn.Module`` there is no eager reference: a bundle's expected
outputs are the reference (as the test that built it compared with its own: a
quantized program in LSB of each output's scale, within the board's
``[tolerance.quantized]``; a float one within ``[tolerance.float]``). A plain
``.pte`` is run for its outputs, timings and ETDump, and the result says that
nothing was compared.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil.boards.base import Board, RunResult
from et_hil.programs.artifact import Artifact
from et_hil.programs.program_file import ProgramFile, artifact_for
from et_hil.tolerance import Tolerance
from et_hil.verdict.compare import Comparison, compare_outputs, format_table

REFERENCE = "bundled"  # the comparison's reference name in records and tables


@dataclasses.dataclass(frozen=True)
class ProgramResult:
    """One run of a program file, and its verdict.

    Attributes:
        program: the file.
        artifact: it, as boards run it.
        run: the board's result.
        inputs: what ran (the bundle's, the caller's, or all ones).
        inputs_from: where the inputs came from, in words.
        comparisons: against the expected outputs (empty when there were none).
        timings: seconds per stage in this process.
    """

    program: ProgramFile
    artifact: Artifact
    run: RunResult
    inputs: list[npt.NDArray[Any]]
    inputs_from: str
    comparisons: tuple[Comparison, ...]
    timings: dict[str, float]

    @property
    def compared(self) -> bool:
        """Whether there were expected outputs to judge the run by."""
        return bool(self.comparisons)

    @property
    def passed(self) -> bool:
        """Every comparison passed (True when nothing was compared: the run itself worked)."""
        return all(c.passed for c in self.comparisons)

    def table(self) -> str:
        """The metric table, or why there is none."""
        if not self.comparisons:
            return (
                f"no expected outputs ({self.program.path.name} is not a BundleIO program "
                "with test cases): outputs, timings and ETDump only, nothing compared"
            )
        return format_table(self.comparisons)


def _tolerance(board: Board, artifact: Artifact, given: Tolerance | None) -> Tolerance:
    policy = board.spec.tolerance
    return given or (policy.quantized if artifact.quantized else policy.float)


def _inputs(
    program: ProgramFile,
    artifact: Artifact,
    inputs: Sequence[npt.NDArray[Any]] | None,
    case: int,
) -> tuple[list[npt.NDArray[Any]], str]:
    from et_hil.executor_runner.bundle import all_ones

    if inputs is not None:
        return [np.asarray(a) for a in inputs], "given"
    if program.cases:
        return list(program.cases[case].inputs), f"the bundle's test case {case}"
    return all_ones(artifact.input_specs), "all ones (a .pte carries no inputs)"


def run_program(
    board: Board,
    program: ProgramFile,
    *,
    run_dir: Path,
    inputs: Sequence[npt.NDArray[Any]] | None = None,
    expected: Sequence[npt.NDArray[Any]] | None = None,
    tolerance: Tolerance | None = None,
    timeout_s: float | None = None,
    case: int = 0,
) -> ProgramResult:
    """Check the program fits ``board``, run it, and judge its outputs by the expected
    ones (``expected``, else the bundle's test case ``case``).

    Raises:
        FitError: the program does not fit the board's memories.
        RunError, ConfigError: the run produced no result.
    """
    from et_hil.errors import ConfigError, FitError
    from et_hil.verdict.fit import fit_problems

    t0 = time.perf_counter()
    artifact = artifact_for(program, run_dir / "program")
    if program.cases and not 0 <= case < len(program.cases):
        raise ConfigError(
            f"program {program.path} has {len(program.cases)} test case(s); there is no case {case}"
        )
    if problems := fit_problems(artifact, board.spec):
        raise FitError(
            f"program {program.path} does not fit board '{board.spec.name}' "
            f"(checked before running): {'; '.join(problems)}"
        )
    arrays, inputs_from = _inputs(program, artifact, inputs, case)
    if expected is None and program.cases and inputs is None:
        expected = program.cases[case].expected
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = board.run(
        artifact,
        arrays,
        run_dir=run_dir / "run",
        timeout_s=timeout_s,
        expected=list(expected) if expected is not None else None,
    )
    run_s = time.perf_counter() - t0
    comparisons: tuple[Comparison, ...] = ()
    if expected is not None:
        comparisons = (
            compare_outputs(
                run.outputs,
                list(expected),
                _tolerance(board, artifact, tolerance),
                reference_name=REFERENCE,
                scales=artifact.output_scales,
                fallback=board.spec.tolerance.float,
            ),
        )
    timings = {"artifact_s": prepare_s, "run_s": run_s}
    return ProgramResult(program, artifact, run, arrays, inputs_from, comparisons, timings)
