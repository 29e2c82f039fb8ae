"""Where the numbers go wrong: a per-layer divergence table for a program on a board.

The program is rebuilt with tap points (see :mod:`harness.build.taps`): every layer's
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
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness.build.taps import Fault, TapPlan
from harness.verdict.compare import cosine_similarity, json_float, snr_db

if TYPE_CHECKING:
    import torch

    from harness.boards.base import Board
    from harness.build.builder import Builder
    from harness.verdict.tolerance import Tolerance


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

    code: str = ""  # file.py:line of the model code that made it

    @property
    def name(self) -> str:
        """How a person finds the layer in the model: module path (else the line of
        code, for functional ops at the top level) and op."""
        return f"{self.module_path or self.code or '(top)'} {self.op}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        row = dataclasses.asdict(self)
        for key in ("vs_fake_quant", "vs_float"):
            if row[key] is not None:
                row[key] = {k: json_float(v) for k, v in row[key].items()}
        return row


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
    strategy: str = "all"
    reducer: str = "FULL_TENSOR"
    # The runtime's own intermediate outputs (ETDump debug buffer) against the
    # ETRecord's graph, from ExecuTorch's Inspector: CPU operators only (a
    # delegate is one opaque event there), without rebuilding the program.
    etdump_gaps: list[dict[str, Any]] | None = None
    etdump_note: str = ""

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
            "strategy": self.strategy,
            "reducer": self.reducer,
            "etdump_gaps": self.etdump_gaps,
            "etdump_note": self.etdump_note,
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
                    "code",
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
                        r.code,
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
    """Every node's value when ``graph_module`` runs eagerly on ``inputs``, by node
    name; the graph's flat outputs under ``OUTPUTS``."""
    import torch
    import torch.utils._pytree as pytree

    values: dict[str, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            value = super().run_node(n)
            if isinstance(value, torch.Tensor):
                values[n.name] = value.detach()
            return value

    with torch.no_grad():
        values[OUTPUTS] = pytree.tree_leaves(Recorder(graph_module).run(*inputs))
    return values


OUTPUTS = "<outputs>"  # not a node name: fx names are identifiers


BISECT_ABOVE = 48  # tap points beyond which "auto" bisects instead of tapping all
# STATS fields that move by at most the elementwise error (in the tensor's units):
# a difference above the limit in any of them proves the layer diverged.
_BOUNDED_STATS = ("min", "max", "mean", "abs_max", "abs_mean", "rms", "p99_abs")


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
    strategy: str = "auto",
    reducer: str | None = None,
) -> DivergenceReport:
    """Run the model's layers on the board as tapped outputs and compare each with
    the fake-quant reference and eager float.

    Args:
        tolerance: the limit a layer is held to (default: the board file's,
            ``max_lsb`` for quantized programs, ``atol``/``rtol`` for float ones).
        fault: a deliberate error in one layer of the program (tests of this tool).
        strategy: ``all`` taps every layer in one build; ``bisect`` finds the
            first divergent layer with one single-tap build per step (log2 of
            the layer count), for large models; ``auto`` bisects above
            :data:`BISECT_ABOVE` layers.
        reducer: ``FULL_TENSOR`` or ``STATS`` (13 statistics per layer: what a
            UART carries in reasonable time); default ``STATS`` on serial boards.

    Raises:
        HarnessError: as :func:`harness.verdict.check.check_model` (build, run, timeout...).
    """
    from harness.build.builder import export_model, validate_inputs
    from harness.errors import ConfigError
    from harness.verdict.check import build_for_board

    if reducer not in (None, "FULL_TENSOR", "STATS"):
        raise ConfigError(f"et_debug: reducer={reducer!r}: use 'FULL_TENSOR' or 'STATS'")
    if strategy not in ("auto", "all", "bisect"):
        raise ConfigError(f"et_debug: strategy={strategy!r}: use 'auto', 'all' or 'bisect'")
    t0 = time.perf_counter()
    tensors = validate_inputs(model.eval(), inputs)
    spec = board.spec
    plain = build_for_board(
        builder, board, model, tensors, quantize=quantize, calibration=calibration
    )
    quantized = plain.quantized
    policy = spec.tolerance
    limit_tol = tolerance or (policy.quantized if quantized else policy.float)
    debug_pass = _Pass(
        builder=builder,
        board=board,
        model=model,
        tensors=tensors,
        quantize=quantize,
        calibration=calibration,
        limit=limit_tol,
        quantized=quantized,
        run_dir=run_dir,
        timeout_s=timeout_s,
        fault=fault,
        reducer=reducer or ("STATS" if spec.kind == "serial" else "FULL_TENSOR"),
        floats=_node_values(export_model(model, tensors).module(), tensors),
    )
    candidates: list[dict[str, Any]] = plain.metadata.get("tap_candidates") or []
    if strategy == "auto":
        strategy = "bisect" if len(candidates) > BISECT_ABOVE else "all"
    if strategy == "bisect" and candidates:
        rows = debug_pass.bisect(candidates)
    else:
        rows = debug_pass.probe(None)
    t_gap = time.perf_counter()
    gaps, gap_note = etdump_gaps(board, plain, tensors, run_dir / "etdump", timeout_s)
    debug_pass.timings["etdump_s"] = time.perf_counter() - t_gap
    timings = {
        **{k: round(v, 3) for k, v in debug_pass.timings.items()},
        "builds": debug_pass.builds,
        "total_s": round(time.perf_counter() - t0, 3),
    }
    if quantized:
        limit_text = f"{limit_tol.max_lsb if limit_tol.max_lsb is not None else 1:g} LSB"
    else:
        limit_text = f"atol {limit_tol.atol or 0:g} + rtol {limit_tol.rtol or 0:g}*|ref|"
    return DivergenceReport(
        model=plain.model_name,
        board=spec.name,
        quantized=quantized,
        limit=limit_text,
        rows=rows,
        partitions_without_taps=_partitions(plain.metadata),
        partitions_with_taps=debug_pass.partitions,
        timings=timings,
        fault=fault,
        strategy=strategy,
        reducer=debug_pass.reducer,
        etdump_gaps=gaps,
        etdump_note=gap_note,
    )


DEBUG_BUFFER_BYTES = 8 << 20  # room for every intermediate output of a test-sized model


def etdump_gaps(
    board: Board, artifact: Any, tensors: Sequence[Any], run_dir: Path, timeout_s: float | None
) -> tuple[list[dict[str, Any]] | None, str]:
    """The untapped program's CPU operators, from the runtime's own ETDump.

    Boards with the ``intermediate_outputs`` capability run the program once
    more with a debug buffer; ExecuTorch's Inspector pairs each runtime event
    with its ETRecord graph nodes (the test's inputs as representative inputs)
    and gives their gap (MSE). Returns the rows, or ``None`` and why not.
    """
    if "intermediate_outputs" not in board.spec.capabilities:
        return None, f"board '{board.spec.name}' records no intermediate outputs"
    if artifact.etrecord_path is None or not Path(artifact.etrecord_path).exists():
        return None, "the program has no ETRecord"
    from executorch.devtools import Inspector
    from executorch.devtools.etrecord import parse_etrecord

    from harness.boards.base import as_numpy

    try:
        run = board.run(
            artifact, [as_numpy(t) for t in tensors], run_dir=run_dir, timeout_s=timeout_s,
            debug_buffer_size=DEBUG_BUFFER_BYTES,
        )  # fmt: skip
        if run.etdump_path is None or run.debug_buffer_path is None:
            return None, "the run left no ETDump debug buffer"
        etrecord = parse_etrecord(str(artifact.etrecord_path))
        etrecord.update_representative_inputs([tuple(tensors)])
        inspector = Inspector(
            etdump_path=str(run.etdump_path),
            etrecord=etrecord,
            debug_buffer_path=str(run.debug_buffer_path),
        )
        frame = inspector.calculate_numeric_gap(distance="MSE")
    except Exception as exc:  # devtools raise assorted types; the tap table stands
        return None, f"Inspector: {type(exc).__name__}: {str(exc)[:200]}"
    rows = []
    for record in frame.to_dict("records"):
        gap = record.get("gap")
        gaps = [float(g) for g in (gap if isinstance(gap, list | tuple) else [gap])]
        rows.append(
            {
                "aot_ops": [str(o) for o in record.get("aot_ops") or []],
                "runtime_ops": [str(o) for o in record.get("runtime_ops") or []],
                "mse": max(gaps) if gaps else None,
            }
        )
    return rows, f"{len(rows)} CPU operator events compared by ExecuTorch's Inspector"


@dataclasses.dataclass
class _Pass:
    """One debug pass: builds tapped programs, runs them, compares their layers."""

    builder: Builder
    board: Board
    model: Any
    tensors: Sequence[Any]
    quantize: Any
    calibration: Any
    limit: Tolerance
    quantized: bool
    run_dir: Path
    timeout_s: float | None
    fault: Fault | None
    reducer: str
    floats: Mapping[str, Any]
    builds: int = 0
    partitions: int = 0
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def _add_time(self, key: str, since: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - since

    def probe(self, points: tuple[str, ...] | None) -> list[LayerRow]:
        """Build with these tap points (``None``: all), run, and compare each."""
        from harness.boards.base import as_numpy
        from harness.build.builder import run_eager
        from harness.verdict.check import build_for_board, fake_quant_reference

        t0 = time.perf_counter()
        plan = TapPlan(points=points, reducer=self.reducer)
        tapped = build_for_board(
            self.builder, self.board, self.model, self.tensors, quantize=self.quantize,
            calibration=self.calibration, taps=plan, fault=self.fault,
        )  # fmt: skip
        self.builds += 1
        self.partitions = max(self.partitions, _partitions(tapped.metadata))
        self._add_time("build_s", t0)
        t1 = time.perf_counter()
        taps: list[dict[str, Any]] = tapped.metadata.get("taps") or []
        # Node names survive PT2E and saving: a quantized tap point (a quantize
        # node) finds its fake-quant value by its own name, and its float value
        # by its source layer's name in the exported float graph.
        fake_quant = (
            _node_values(fake_quant_reference(tapped), self.tensors) if self.quantized else {}
        )
        values = fake_quant if self.quantized else self.floats
        user = fake_quant[OUTPUTS] if self.quantized else run_eager(self.model, self.tensors)
        self._add_time("reference_s", t1)
        t2 = time.perf_counter()
        run = self.board.run(
            tapped,
            [as_numpy(t) for t in self.tensors],
            run_dir=self.run_dir / f"probe{self.builds}",
            timeout_s=self.timeout_s,
            expected=_expected(user, taps, values, self.reducer),
        )
        self._add_time("run_s", t2)
        t3 = time.perf_counter()
        candidates = tapped.metadata.get("tap_candidates") or taps
        index = {c["node"]: i for i, c in enumerate(candidates)}
        rows = [
            dataclasses.replace(
                self._row(index.get(tap["node"], i), tap, run.outputs, fake_quant),
                code=tap.get("code", ""),
            )
            for i, tap in enumerate(taps)
        ]
        self._add_time("compare_s", t3)
        return rows

    def bisect(self, candidates: Sequence[dict[str, Any]]) -> list[LayerRow]:
        """The first divergent layer by binary search over single-tap builds.

        Assumes an error, once in, stays in the layers after it (true of a
        diverged requantization chain; a later layer that clamps it away can
        hide it, and then the search says what it measured).
        """
        measured: dict[int, LayerRow] = {}

        def diverged(i: int) -> bool:
            if i not in measured:
                (row,) = self.probe((candidates[i]["node"],))
                measured[i] = dataclasses.replace(row, index=i)
            return measured[i].within is False

        lo, hi = 0, len(candidates) - 1
        if diverged(hi):
            while lo < hi:
                mid = (lo + hi) // 2
                if diverged(mid):
                    hi = mid
                else:
                    lo = mid + 1
            # lo == hi now, and hi was measured (diverged) when it was set
        rows = []
        for i, c in enumerate(candidates):
            if i in measured:
                rows.append(measured[i])
            else:
                rows.append(
                    LayerRow(i, c["node"], c["module_path"], c["op"],
                             "not measured (bisection)", c.get("scale"), None, None, None,
                             code=c.get("code", ""))
                )  # fmt: skip
        return rows

    def _row(
        self, i: int, tap: dict[str, Any], outputs: Sequence[Any], fake_quant: Mapping[str, Any]
    ) -> LayerRow:
        from harness.boards.base import as_numpy

        k = tap["output_index"]
        scale = tap.get("scale")
        if k >= len(outputs):
            return LayerRow(
                i, tap["node"], tap["module_path"], tap["op"],
                f"not measured: the board returned {len(outputs)} outputs",
                scale, None, None, None,
            )  # fmt: skip
        board_value = as_numpy(outputs[k])
        fq_value = fake_quant.get(tap["node"])
        float_value = self.floats.get(tap["source"] if self.quantized else tap["node"])
        if self.reducer == "STATS":
            return self._stats_row(i, tap, board_value, fq_value, float_value)
        vs_fq = vs_float = None
        if self.quantized and fq_value is not None and scale:
            vs_fq = _metrics(board_value, as_numpy(fq_value), lsb=1.0)  # integers, 1 LSB apart
            vs_fq = dataclasses.replace(vs_fq, max_abs=vs_fq.max_abs * scale)
            dequantized = (board_value.astype(np.float64) - tap["zero_point"]) * scale
        else:
            dequantized = board_value
        if float_value is not None and float_value.numel() == dequantized.size:
            vs_float = _metrics(dequantized, as_numpy(float_value).reshape(dequantized.shape))
        if self.quantized:
            limit = self.limit.max_lsb if self.limit.max_lsb is not None else 1.0
            within = vs_fq is not None and (vs_fq.max_lsb or 0.0) <= limit
        else:
            within = float_value is not None and _within_float(dequantized, float_value, self.limit)
        return LayerRow(
            i, tap["node"], tap["module_path"], tap["op"], str(tap.get("where", "?")),
            scale, vs_fq, vs_float, within,
        )  # fmt: skip

    def _stats_row(
        self,
        i: int,
        tap: dict[str, Any],
        board_stats: npt.NDArray[Any],
        fq_value: Any,
        float_value: Any,
    ) -> LayerRow:
        """A layer measured through STATS: the statistics that move by at most the
        elementwise error are compared, so a difference beyond the limit proves a
        divergence (errors that cancel in every statistic can go unseen)."""
        from executorch.devtools.intermediate_output_tap import STATS

        from harness.boards.base import as_numpy

        reference = fq_value if self.quantized else float_value
        where = str(tap.get("where", "?")) + " (STATS)"
        if reference is None:
            return LayerRow(i, tap["node"], tap["module_path"], tap["op"], where,
                            tap.get("scale"), None, None, None)  # fmt: skip
        ref_stats = as_numpy(STATS.eager(reference))
        fields = list(STATS.fields)
        picks = [fields.index(f) for f in _BOUNDED_STATS]
        worst = float(np.max(np.abs(board_stats[picks] - ref_stats[picks])))
        metrics = LayerMetrics(
            max_abs=worst * (tap.get("scale") or 1.0),
            snr_db=snr_db(board_stats[picks], ref_stats[picks]),
            cosine=cosine_similarity(board_stats[picks], ref_stats[picks]),
            max_lsb=round(worst, 4) if self.quantized else None,
        )
        if self.quantized:
            limit = self.limit.max_lsb if self.limit.max_lsb is not None else 1.0
            within = worst <= limit
        else:
            bound = (self.limit.atol or 0.0) + (self.limit.rtol or 0.0) * float(
                np.max(np.abs(ref_stats[picks]))
            )
            within = worst <= bound
        return LayerRow(
            i, tap["node"], tap["module_path"], tap["op"], where, tap.get("scale"),
            metrics if self.quantized else None, None if self.quantized else metrics, within,
        )  # fmt: skip


def _expected(
    user: Sequence[Any], taps: Sequence[dict[str, Any]], values: Mapping[str, Any], reducer: str
) -> list[npt.NDArray[Any]] | None:
    """Every output's reference, in program order (firmware that checks its
    outputs, BundleIO, needs them): the model's outputs, then each tap's value."""
    from executorch.devtools.intermediate_output_tap import get_reducer

    from harness.boards.base import as_numpy

    if any(t["node"] not in values for t in taps):
        return None
    reduce = get_reducer(reducer).eager
    return [as_numpy(o) for o in user] + [as_numpy(reduce(values[t["node"]])) for t in taps]


def _within_float(actual: npt.NDArray[Any], reference: Any, tol: Tolerance) -> bool:
    from harness.boards.base import as_numpy

    ref = as_numpy(reference).astype(np.float64).reshape(actual.shape)
    bound = (tol.atol or 0.0) + (tol.rtol or 0.0) * np.abs(ref)
    return bool(np.all(np.abs(actual.astype(np.float64) - ref) <= bound))


def _partitions(metadata: Mapping[str, Any]) -> int:
    return int((metadata.get("delegation") or {}).get("delegated_subgraphs") or 0)
