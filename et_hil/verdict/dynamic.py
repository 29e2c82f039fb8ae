"""A dynamic-shape program, run at the sizes its bounds allow beyond its example's.

:func:`et_hil.verdict.check.check_model` builds the program (with
``dynamic_shapes``) and checks it at the example inputs' size; :func:`check_sizes`
then runs it at its smallest and largest sizes (:func:`et_hil.programs.dynamic_shapes.sizes`),
with the example inputs tiled or cropped to each size, compared with the same
references and limits. Boards whose runner cannot resize inputs lack the
``dynamic_shapes`` capability, and :func:`unsupported` says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from et_hil.boards import registry
from et_hil.boards.base import Board
from et_hil.programs.artifact import Artifact
from et_hil.programs.dynamic_shapes import Size, resized, sizes
from et_hil.tolerance import Tolerance
from et_hil.verdict.check import CheckResult, KeepEvidence, run_and_compare

if TYPE_CHECKING:
    import torch

CAPABILITY = "dynamic_shapes"


def unsupported(board: Board) -> str | None:
    """Why ``board`` cannot run dynamic-shape programs, or ``None`` when it can."""
    spec = board.spec
    if CAPABILITY in spec.capabilities:
        return None
    why = registry.get(spec.kind).fixed_shapes or (
        f"its board file does not list the '{CAPABILITY}' capability"
    )
    return f"board '{spec.name}' cannot run dynamic-shape programs: {why}"


@dataclasses.dataclass(frozen=True)
class SizedResult:
    """One run of a dynamic-shape program at one size."""

    size: Size
    result: CheckResult


def other_sizes(artifact: Artifact, inputs: Sequence[torch.Tensor]) -> list[Size]:
    """The sizes to run beyond the example's (none for a static program)."""
    dims = artifact.metadata.get("dynamic_dims")
    if not dims:
        return []
    found = sizes(dims, [list(t.shape) for t in inputs])
    return [s for s in found if s.label != "example"]


def check_sizes(
    board: Board,
    artifact: Artifact,
    reference: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    run_dir: Path,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
    timeout_s: float | None = None,
    keep: Callable[[str], KeepEvidence] | None = None,
) -> list[SizedResult]:
    """Run ``artifact`` at each of :func:`other_sizes`, compared as the example was
    (``keep(label)``: what keeps a failed size's evidence, by the size's label).

    Raises:
        RunError, ConfigError: a run produced no result.
    """
    done: list[SizedResult] = []
    for size in other_sizes(artifact, inputs):
        sized = tuple(resized(t, shape) for t, shape in zip(inputs, size.shapes, strict=True))
        result = run_and_compare(
            board,
            artifact,
            reference,
            sized,
            run_dir=run_dir.with_name(f"{run_dir.name}-{size.label}"),
            tolerance=tolerance,
            vs_float=vs_float,
            timeout_s=timeout_s,
            keep=keep(size.label) if keep is not None else None,
        )
        done.append(SizedResult(size, result))
    return done


def describe(size: Size) -> str:
    """``smallest size (x: [1, 16])``-like words for messages."""
    shapes = ", ".join(str(shape) for shape in size.shapes)
    values = ", ".join(f"{k}={v}" for k, v in size.values.items())
    return f"{size.label} size ({values}; inputs {shapes})"
