"""Where the numbers go wrong: a per-layer divergence table for a program on a board.

The program is rebuilt with tap points (see :mod:`harness.taps`): every layer's
output leaves whatever computes it (an NPU/TOSA partition or a CPU kernel) as
an extra program output, so the board itself reports each layer's value. Each
layer is then compared with the same layer of the fake-quant reference (in LSB
of that tensor's scale: integer to integer) and of eager float. The first layer
outside the test's tolerance is the **first divergent layer**: every tapped
layer before it, its inputs among them, was within.

Nothing is shown that was not measured: a layer the board returned no value
for says why in its ``where`` column.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness.compare import cosine_similarity, snr_db
from harness.taps import Fault, TapPlan

if TYPE_CHECKING:
    import torch

    from harness.boards.base import Board
    from harness.build import Builder
    from harness.tolerance import Tolerance

MODES = ("on-failure", "always", "off")


@dataclasses.dataclass(frozen=True)
class LayerMetrics:
    """A layer's board value against one reference."""

    max_abs: float
    snr_db: float
    cosine: float
    max_lsb: float | None = None  # quantized layers: error in units of the layer's scale


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One tapped layer, in execution order."""

    index: int
    node: str
    module_path: str
    op: str
    where: str
    scale: float | None
    vs_fake_quant: LayerMetrics | None
    vs_float: LayerMetrics | None
    within: bool | None  # None: not measured

    @property
    def name(self) -> str:
        """How a person finds the layer in the model: module path and op."""
        return f"{self.module_path or '(top)'} {self.op}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        row = dataclasses.asdict(self)
        for key in ("vs_fake_quant", "vs_float"):
            if row[key] is not None:
                row[key] = {k: _json_float(v) for k, v in row[key].items()}
        return row


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclasses.dataclass
class DivergenceReport:
    """The per-layer table of one model on one board, and its verdict."""

    model: str
    board: str
    quantized: bool
    limit: str
    rows: list[LayerRow]
    partitions_without_taps: int
    partitions_with_taps: int
    timings: dict[str, float]
    fault: Fault | None = None

    @property
    def first_divergent(self) -> LayerRow | None:
        """The first layer outside tolerance (all tapped layers before it were within)."""
        return next((r for r in self.rows if r.within is False), None)

    def summary(self) -> str:
        """One line: the first divergent layer, or that every layer is within."""
        first = self.first_divergent
        split = ""
        if self.partitions_with_taps != self.partitions_without_taps:
            split = (
                f"; taps changed the partitioning: {self.partitions_without_taps} -> "
                f"{self.partitions_with_taps} delegated partitions"
            )
        if first is None:
            measured = sum(r.within is not None for r in self.rows)
            return (
                f"every layer within {self.limit} ({measured} of {len(self.rows)} measured){split}"
            )
        m = first.vs_fake_quant if self.quantized else first.vs_float
        how = (
            f"{m.max_lsb:g} LSB vs fake-quant"
            if m is not None and m.max_lsb is not None
            else f"max abs {m.max_abs:.4g}"
            if m is not None
            else "?"
        )
        return (
            f"first divergent layer: #{first.index} {first.name} [{first.node}] in "
            f"{first.where}: {how} (limit {self.limit}); every layer before it was within"
            f"{split}"
        )

    def table(self, rows: int | None = None) -> str:
        """The table as text; ``rows`` limits it to the rows around the first divergence."""
        shown = self.rows
        first = self.first_divergent
        if rows is not None and len(shown) > rows:
            start = max(0, (first.index if first else 0) - rows // 2)
            shown = shown[start : start + rows]
        header = ["#", "layer", "where", "vs fake-quant", "vs float", ""]
        lines = [header]
        for r in shown:
            lines.append(
                [
                    str(r.index),
                    r.name,
                    r.where,
                    _describe(r.vs_fake_quant),
                    _describe(r.vs_float),
                    {True: "ok", False: "DIVERGES", None: "not measured"}[r.within],
                ]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )
        if len(shown) < len(self.rows):
            text += f"\n... {len(self.rows) - len(shown)} more layers in the full table"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (the record's ``debug`` field and ``divergence.json``)."""
        first = self.first_divergent
        return {
            "model": self.model,
            "board": self.board,
            "quantized": self.quantized,
            "limit": self.limit,
            "summary": self.summary(),
            "first_divergent": first.as_dict() if first else None,
            "partitions_without_taps": self.partitions_without_taps,
            "partitions_with_taps": self.partitions_with_taps,
            "fault": dataclasses.asdict(self.fault) if self.fault else None,
            "timings": self.timings,
            "rows": [r.as_dict() for r in self.rows],
        }

    def write(self, folder: Path) -> list[Path]:
        """``divergence.json`` and ``divergence.csv`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        as_json = folder / "divergence.json"
        as_json.write_text(json.dumps(self.as_dict(), indent=1) + "\n")
        as_csv = folder / "divergence.csv"
        with as_csv.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                [
                    "index",
                    "module_path",
                    "op",
                    "node",
                    "where",
                    "scale",
                    "fq_max_lsb",
                    "fq_max_abs",
                    "fq_snr_db",
                    "float_max_abs",
                    "float_snr_db",
                    "float_cosine",
                    "within",
                ]
            )
            for r in self.rows:
                fq, fl = r.vs_fake_quant, r.vs_float
                writer.writerow(
                    [
                        r.index,
                        r.module_path,
                        r.op,
                        r.node,
                        r.where,
                        r.scale,
                        fq.max_lsb if fq else "",
                        fq.max_abs if fq else "",
                        fq.snr_db if fq else "",
                        fl.max_abs if fl else "",
                        fl.snr_db if fl else "",
                        fl.cosine if fl else "",
                        "" if r.within is None else r.within,
                    ]
                )
        return [as_json, as_csv]


def _describe(m: LayerMetrics | None) -> str:
    if m is None:
        return "-"
    if m.max_lsb is not None:
        return f"{m.max_lsb:g} LSB, {m.snr_db:.1f} dB"
    return f"max abs {m.max_abs:.3g}, {m.snr_db:.1f} dB"


def _metrics(
    actual: npt.NDArray[Any], reference: npt.NDArray[Any], lsb: float | None = None
) -> LayerMetrics:
    a = actual.astype(np.float64).reshape(-1)
    r = reference.astype(np.float64).reshape(-1)
    diff = np.abs(a - r)
    max_abs = float(diff.max()) if diff.size else 0.0
    return LayerMetrics(
        max_abs=max_abs,
        snr_db=snr_db(a, r),
        cosine=cosine_similarity(a, r),
        max_lsb=None if lsb is None else round(max_abs / lsb, 4),
    )


def _node_values(graph_module: Any, inputs: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Every node's value when ``graph_module`` runs eagerly on ``inputs``, by node name."""
    import torch

    values: dict[str, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            value = super().run_node(n)
            if isinstance(value, torch.Tensor):
                values[n.name] = value.detach()
            return value

    with torch.no_grad():
        Recorder(graph_module).run(*inputs)
    return values


def debug_model(
    builder: Builder,
    board: Board,
    model: torch.nn.Module,
    inputs: Any,
    *,
    run_dir: Path,
    quantize: Any = None,
    calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    tolerance: Tolerance | None = None,
    timeout_s: float | None = None,
    fault: Fault | None = None,
) -> DivergenceReport:
    """Build the model with every layer tapped, run it on the board, and compare
    each layer with the fake-quant reference and eager float.

    Args:
        tolerance: the limit a layer is held to (default: the board file's,
            ``max_lsb`` for quantized programs, ``atol``/``rtol`` for float ones).
        fault: a deliberate error in one layer of the program (tests of this tool).

    Raises:
        HarnessError: as :func:`harness.check.check_model` (build, run, timeout...).
    """
    from harness.boards.base import as_numpy
    from harness.build import export_model, validate_inputs
    from harness.check import build_for_board, fake_quant_reference

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tensors = validate_inputs(model.eval(), inputs)
    spec = board.spec
    plain = build_for_board(
        builder, board, model, tensors, quantize=quantize, calibration=calibration
    )
    tapped = build_for_board(
        builder, board, model, tensors, quantize=quantize, calibration=calibration,
        taps=TapPlan(fault=fault),
    )  # fmt: skip
    timings["build_s"] = round(time.perf_counter() - t0, 3)
    quantized = tapped.quantized
    policy = spec.tolerance
    limit_tol = tolerance or (policy.quantized if quantized else policy.float)

    t1 = time.perf_counter()
    arrays = [as_numpy(t) for t in tensors]
    run = board.run(tapped, arrays, run_dir=run_dir, timeout_s=timeout_s)
    timings["run_s"] = round(time.perf_counter() - t1, 3)

    t2 = time.perf_counter()
    taps: list[dict[str, Any]] = tapped.metadata.get("taps") or []
    # Node names survive PT2E and saving: a quantized tap point (a quantize node)
    # finds its fake-quant value by its own name and its float value by its
    # source layer's name in the exported float graph.
    fake_quant = _node_values(fake_quant_reference(tapped), tensors) if quantized else {}
    floats = _node_values(export_model(model, tensors).module(), tensors)
    rows = []
    for i, tap in enumerate(taps):
        k = tap["output_index"]
        where = str(tap.get("where", "?"))
        scale = tap.get("scale")
        board_value = as_numpy(run.outputs[k]) if k < len(run.outputs) else None
        if board_value is None:
            rows.append(
                LayerRow(i, tap["node"], tap["module_path"], tap["op"],
                         f"not measured: the board returned {len(run.outputs)} outputs",
                         scale, None, None, None)
            )  # fmt: skip
            continue
        vs_fq = vs_float = None
        fq_value = fake_quant.get(tap["node"])
        if quantized and fq_value is not None and scale:
            vs_fq = _metrics(board_value, as_numpy(fq_value), lsb=1.0)  # integers, 1 LSB apart
            vs_fq = dataclasses.replace(vs_fq, max_abs=vs_fq.max_abs * scale)
            dequantized = (board_value.astype(np.float64) - tap["zero_point"]) * scale
        else:
            dequantized = board_value
        float_value = floats.get(tap["source"] if quantized else tap["node"])
        if float_value is not None and float_value.numel() == dequantized.size:
            vs_float = _metrics(dequantized, as_numpy(float_value).reshape(dequantized.shape))
        if quantized:
            limit = limit_tol.max_lsb if limit_tol.max_lsb is not None else 1.0
            within = vs_fq is not None and (vs_fq.max_lsb or 0.0) <= limit
        else:
            within = vs_float is not None and _within_float(
                dequantized, floats[tap["node"]], limit_tol
            )
        rows.append(
            LayerRow(i, tap["node"], tap["module_path"], tap["op"], where, scale,
                     vs_fq, vs_float, within)
        )  # fmt: skip
    timings["compare_s"] = round(time.perf_counter() - t2, 3)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    if quantized:
        limit_text = f"{limit_tol.max_lsb if limit_tol.max_lsb is not None else 1:g} LSB"
    else:
        limit_text = f"atol {limit_tol.atol or 0:g} + rtol {limit_tol.rtol or 0:g}*|ref|"
    return DivergenceReport(
        model=tapped.model_name,
        board=spec.name,
        quantized=quantized,
        limit=limit_text,
        rows=rows,
        partitions_without_taps=_partitions(plain.metadata),
        partitions_with_taps=_partitions(tapped.metadata),
        timings=timings,
        fault=fault,
    )


def _within_float(actual: npt.NDArray[Any], reference: Any, tol: Tolerance) -> bool:
    from harness.boards.base import as_numpy

    ref = as_numpy(reference).astype(np.float64).reshape(actual.shape)
    bound = (tol.atol or 0.0) + (tol.rtol or 0.0) * np.abs(ref)
    return bool(np.all(np.abs(actual.astype(np.float64) - ref) <= bound))


def _partitions(metadata: Mapping[str, Any]) -> int:
    return int((metadata.get("delegation") or {}).get("delegated_subgraphs") or 0)
