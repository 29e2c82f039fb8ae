"""Golden references: what a board is specified to compute, bit for bit.

Against the fake-quant reference a board may differ by rounding that deep
networks amplify, so that comparison needs a statistical limit
(:mod:`et_hil.tolerance`). Where the board's computation has a bit-exact
specification that runs on this machine, the board is also held to it, and a
wrong layer then shows at any depth:

* **a portable program on a device** (``qemu-m55``, an FVP or serial board with
  ``--et-compile-target portable``): the host's ExecuTorch runtime runs the same
  ``.pte`` on the same portable and quantized kernels;
* **a Cortex-M program** (``cortex-m55``/``cortex-m85``): the lowered program's
  ``cortex_m`` operators on upstream's Python implementations
  (``executorch/backends/cortex_m/ops/operators.py``), which compute in the
  integer arithmetic of the CMSIS-NN kernels they stand for (``requantize_cmsis``),
  but for the two that do not (:mod:`et_hil.verdict.cmsis_nn`);
* **an Ethos-U program**: the same model lowered to the TOSA graph the NPU is
  given (the Ethos-U's TOSA specification, e.g. ``TOSA-1.0+INT+int16+int4+u55``,
  the same partitions) and run on the TOSA reference model: what an NPU is
  specified to compute for that graph.

The ``host`` and ``tosa`` boards have none: each is itself the reference
implementation, judged against fake-quant. How close a board must be to its golden
reference is ``[tolerance.golden]`` (exact by default;
docs/writing-tests/verdicts.md, 'The comparisons', says why).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

    from et_hil.boards.base import Board
    from et_hil.programs.artifact import Artifact
    from et_hil.programs.builder import Builder

Array = npt.NDArray[Any]


@dataclasses.dataclass(frozen=True)
class Golden:
    """A golden reference's outputs for one check.

    Attributes:
        source: what computed them (shown beside the comparison).
        outputs: one array per program output.
        seconds: how long it took.
    """

    source: str
    outputs: list[Array]
    seconds: float


def golden_kind(board: Board, artifact: Artifact) -> str | None:
    """Which golden reference applies to ``artifact`` on ``board`` (``host``,
    ``cortex-m``, ``tosa``), or ``None``."""
    from et_hil.boards import registry
    from et_hil.programs.targets import is_ethos_u

    if not artifact.quantized or not registry.get(board.spec.kind).golden_reference:
        return None
    if artifact.target == "portable":
        return "host"
    if artifact.target.startswith("cortex-m"):
        return "cortex-m"
    if is_ethos_u(artifact.target):
        return "tosa"
    return None


class GoldenReferences:
    """Computes golden references, with the reference boards they need (the host
    runtime and the TOSA reference model in worker processes), opened on first use.

    Args:
        builder: builds the TOSA graph of an Ethos-U program (from its shared front).
        work_dir: where the reference boards' logs go.
    """

    def __init__(self, builder: Builder, work_dir: Path) -> None:
        self.builder = builder
        self.work_dir = work_dir
        self._boards: dict[str, Board] = {}

    def _board(self, name: str) -> Board:
        if name not in self._boards:
            from et_hil.boards import make_board
            from et_hil.boards.spec import load_boards

            board = make_board(load_boards()[name], self.work_dir)
            board.open()
            self._boards[name] = board
        return self._boards[name]

    def close(self) -> None:
        """Stop the reference boards."""
        for board in self._boards.values():
            board.close()
        self._boards.clear()

    def outputs(
        self,
        board: Board,
        artifact: Artifact,
        model: torch.nn.Module,
        inputs: Sequence[torch.Tensor],
        *,
        run_dir: Path,
        quantize: Any = None,
        calibration: Any = None,
    ) -> Golden | None:
        """The golden reference of ``artifact`` on ``board`` for ``inputs``, or ``None``
        when none applies (see the module doc).

        Raises:
            HarnessError: the reference could not be computed (build or run).
        """
        from et_hil.boards.base import as_numpy

        # the reference implementation's name (the built-in board it runs on, or
        # upstream's Python kernels): not the board's kind
        reference = golden_kind(board, artifact)
        if reference is None:
            return None
        arrays = [as_numpy(t) for t in inputs]
        started = time.perf_counter()
        if reference == "host":
            run = self._board("host").run(artifact, arrays, run_dir=run_dir / "golden-host")
            return Golden(
                "the host runtime on the same program (the same portable kernels)",
                [as_numpy(o) for o in run.outputs],
                time.perf_counter() - started,
            )
        if reference == "cortex-m":
            return Golden(
                "upstream's Python cortex_m kernels (CMSIS-NN integer arithmetic) on the "
                "lowered program",
                cortex_m_reference(artifact, inputs),
                time.perf_counter() - started,
            )
        return self._tosa_golden(artifact, model, inputs, run_dir, quantize, calibration, started)

    def _tosa_golden(
        self,
        artifact: Artifact,
        model: torch.nn.Module,
        inputs: Sequence[torch.Tensor],
        run_dir: Path,
        quantize: Any,
        calibration: Any,
        started: float,
    ) -> Golden | None:
        from et_hil.boards.base import as_numpy
        from et_hil.programs.target_registry import get_target
        from et_hil.programs.targets import EthosUTarget

        target = get_target(artifact.target, board="golden")
        assert isinstance(target, EthosUTarget)
        name = target.tosa_target_name()
        tosa = self.builder.build(
            model, inputs, target=name, board=f"golden of {artifact.target}",
            quantize=quantize, calibration=calibration,
        )  # fmt: skip
        if _partitions(tosa) != _partitions(artifact):
            return None  # another partitioning: not the graph the NPU runs
        run = self._board("tosa").run(
            tosa, [as_numpy(t) for t in inputs], run_dir=run_dir / "golden-tosa"
        )
        return Golden(
            f"the TOSA reference model on the {name} graph (the NPU's TOSA specification, "
            "the same partitions)",
            [as_numpy(o) for o in run.outputs],
            time.perf_counter() - started,
        )


def _partitions(artifact: Artifact) -> list[dict[str, Any]]:
    """Each delegated partition's ops (what the NPU is given, by name and count)."""
    delegation = artifact.metadata.get("delegation") or {}
    return [p.get("ops") for p in delegation.get("partitions") or []]


def cortex_m_reference(artifact: Artifact, inputs: Sequence[torch.Tensor]) -> list[Array]:
    """The Cortex-M program's lowered graph run eagerly: each ``cortex_m`` operator on
    upstream's Python implementation of its CMSIS-NN kernel.

    Raises:
        BuildError: the artifact has no lowered program (built by an older harness).
    """
    import torch

    from et_hil.errors import BuildError
    from et_hil.programs.builder import load_lowered_program
    from et_hil.verdict import cmsis_nn

    if artifact.lowered_program_path is None:
        raise BuildError(
            f"model '{artifact.model_name}': the Cortex-M program {artifact.key[:12]} has no "
            "lowered program to compute its golden reference from; rebuild it (--et-no-cache)"
        )
    # Registers the cortex_m operators and their Python implementations. The passes
    # package first: importing ops.operators on its own runs into a circular import
    # of ExecuTorch 1.5 (ops.operators -> passes.passes_utils -> ... -> ops.operators).
    importlib.import_module("executorch.backends.cortex_m.passes")
    importlib.import_module("executorch.backends.cortex_m.ops.operators")

    module = load_lowered_program(artifact.lowered_program_path).module()
    # Upstream's kernels, but average pooling and dilated convolutions as the C
    # kernels compute them (et_hil.verdict.cmsis_nn says where they differ).
    result = cmsis_nn.run(module, inputs)
    flat = torch.utils._pytree.tree_leaves(result)
    return [np.asarray(t.detach().contiguous().numpy()) for t in flat if hasattr(t, "numpy")]
