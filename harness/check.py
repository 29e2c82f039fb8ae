"""Build -> run -> compare, as one library call (the plugin's ``et_check`` wraps it)."""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.artifact import Artifact
from harness.boards.base import Board, RunResult, as_numpy
from harness.build import Builder, run_eager, validate_inputs
from harness.compare import Comparison, compare_outputs, format_table
from harness.quantization import QuantConfig
from harness.tolerance import Tolerance

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Everything one check produced.

    Attributes:
        artifact: the built program.
        run: the board's result.
        comparisons: against the fake-quant reference (quantized programs) and eager float.
        timings: seconds spent per stage in this process.
    """

    artifact: Artifact
    run: RunResult
    comparisons: tuple[Comparison, ...]
    timings: Mapping[str, float]

    @property
    def passed(self) -> bool:
        """True when every comparison passed."""
        return all(c.passed for c in self.comparisons)

    def table(self, *, only_failed: bool = False) -> str:
        """The metric table (reference, output, metric, value, limit)."""
        return format_table(self.comparisons, only_failed=only_failed)


@functools.lru_cache(maxsize=32)
def _load_reference(path: str) -> Any:
    import torch

    # Defines the quantized_decomposed operators the saved program refers to
    # (cheap; torchao's pt2e package would define them too, at ~1 s import).
    import torch.ao.quantization.fx._decomposed

    return torch.export.load(path).module()


def fake_quant_outputs(artifact: Artifact, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Outputs of the artifact's fake-quant reference (the PT2E-converted model)."""
    if artifact.reference_path is None:
        raise ValueError(f"artifact {artifact.key[:12]} is not quantized: no fake-quant reference")
    return run_eager(_load_reference(str(artifact.reference_path)), inputs)


def _to_numpy(tensors: Sequence[Any]) -> list[np.ndarray[Any, Any]]:
    return [as_numpy(t) for t in tensors]


def preflight(artifact: Artifact, board: Board, *, require_full_delegation: bool) -> None:
    """Checks made before any run: full delegation (when required) and memory fit.

    Raises:
        DelegationError: ops other than the boundary quantize/dequantize stayed on the CPU.
        FitError: the program needs more memory than the board file gives.
    """
    from harness.errors import DelegationError, FitError
    from harness.fit import fit_problems

    fallback = (artifact.metadata.get("delegation") or {}).get("cpu_fallback") or {}
    if require_full_delegation and fallback:
        ops = ", ".join(f"{op} x{n}" for op, n in fallback.items())
        raise DelegationError(
            f"board '{board.spec.name}' requires full delegation, but model "
            f"'{artifact.model_name}' leaves these ops to the CPU: {ops}"
        )
    if problems := fit_problems(artifact, board.spec.memory):
        raise FitError(
            f"model '{artifact.model_name}' does not fit board '{board.spec.name}' "
            f"(checked before running): {'; '.join(problems)}"
        )


def check_model(
    builder: Builder,
    board: Board,
    model: torch.nn.Module,
    inputs: Any,
    *,
    run_dir: Path,
    quantize: bool | str | QuantConfig | None = None,
    calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    reference: torch.nn.Module | None = None,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
    debug_buffer_size: int = 0,
    timeout_s: float | None = None,
) -> CheckResult:
    """Build ``model`` for ``board``, run it on ``inputs``, compare with references.

    Args:
        builder: builds (or finds) the artifact.
        board: where to run.
        model: the eager model.
        inputs: a tensor or tuple of tensors; also the export example inputs.
        run_dir: folder for this run's files.
        quantize: see :meth:`harness.build.Builder.build`.
        calibration: calibration input tuples.
        reference: the eager model to compare with (default: ``model``).
        tolerance: limits of the main comparison (float programs: against eager
            float; quantized: against fake-quant); default from the board file.
        vs_float: limits of a quantized program against eager float.
        debug_buffer_size: bytes for intermediate outputs in the ETDump (0: off).
        timeout_s: time limit of the run (default: the board file's).

    Raises:
        BuildError, RunError, ConfigError: no result could be produced.
    """
    t0 = time.perf_counter()
    artifact = builder.build(
        model,
        inputs,
        target=board.spec.target,
        board=board.spec.name,
        quantize=quantize,
        calibration=calibration,
        vela=board.spec.sections.get("vela"),
    )
    artifact_s = time.perf_counter() - t0
    preflight(artifact, board, require_full_delegation=board.spec.require_full_delegation)
    result = run_and_compare(
        board,
        artifact,
        reference or model,
        inputs,
        run_dir=run_dir,
        tolerance=tolerance,
        vs_float=vs_float,
        debug_buffer_size=debug_buffer_size,
        timeout_s=timeout_s,
    )
    return dataclasses.replace(result, timings={"artifact_s": artifact_s, **result.timings})


def run_and_compare(
    board: Board,
    artifact: Artifact,
    reference: torch.nn.Module,
    inputs: Any,
    *,
    run_dir: Path,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
    debug_buffer_size: int = 0,
    timeout_s: float | None = None,
) -> CheckResult:
    """Run a built artifact on ``board`` and compare it with the eager ``reference``
    (and with the artifact's fake-quant reference when it is quantized).

    Raises:
        RunError, ConfigError: no result could be produced.
    """
    timings: dict[str, float] = {}
    tensors = validate_inputs(reference, inputs)
    note = None
    if (fed := board.inputs_it_runs(artifact, _to_numpy(tensors))) is not None:
        import torch

        # The firmware cannot take these inputs (UART runner without BundleIO):
        # compare on what it really ran, and say so.
        tensors = tuple(torch.from_numpy(a) for a in fed)
        note = (
            f"board '{board.spec.name}' ran all-ones inputs (firmware without BundleIO); "
            "outputs compared with eager on all-ones, not on the test's inputs"
        )
        warnings.warn(note, stacklevel=2)

    t0 = time.perf_counter()
    policy = board.spec.tolerance
    eager = _to_numpy(run_eager(reference.eval(), tensors))
    fake_quant = _to_numpy(fake_quant_outputs(artifact, tensors)) if artifact.quantized else None
    timings["reference_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run = board.run(
        artifact,
        _to_numpy(tensors),
        run_dir=run_dir,
        timeout_s=timeout_s,
        debug_buffer_size=debug_buffer_size,
        expected=fake_quant if fake_quant is not None else eager,
    )
    timings["run_s"] = time.perf_counter() - t0
    if note:
        run = dataclasses.replace(run, extra={**run.extra, "inputs": note})

    t0 = time.perf_counter()
    comparisons = []
    if fake_quant is not None:
        comparisons.append(
            compare_outputs(
                run.outputs,
                fake_quant,
                tolerance or policy.quantized,
                reference_name="fake_quant",
                scales=artifact.output_scales,
                fallback=policy.float,
            )
        )
        comparisons.append(
            compare_outputs(
                run.outputs,
                eager,
                vs_float or policy.quantized_vs_float,
                reference_name="eager_float",
                scales=artifact.output_scales,
            )
        )
    else:
        comparisons.append(
            compare_outputs(
                run.outputs, eager, tolerance or policy.float, reference_name="eager_float"
            )
        )
    timings["compare_s"] = time.perf_counter() - t0 + timings.pop("reference_s")
    return CheckResult(artifact, run, tuple(comparisons), timings)
