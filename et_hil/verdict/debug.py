"""Where the numbers go wrong: a per-layer divergence table for a program on a board.

The program is rebuilt with tap points (see :mod:`et_hil.programs.taps`): every layer's
output leaves whatever computes it (an NPU/TOSA partition or a CPU kernel) as an extra
program output, so the board itself reports each layer's value. Each layer gets two
errors against the fake-quant reference (in LSB of that tensor's scale, integer to
integer; float programs: against eager float):

* **local**: against what the reference's layer computes from the board's *own*
  inputs to it (:func:`et_hil.verdict.replay.replay` substitutes the board's tapped
  values). A correct layer is within about 1 LSB of it however much error came
  before; a broken layer shows its own error at any depth.
* **accumulated**: against the reference run end to end. Deep networks grow it by
  rounding alone (1, 2, 3, 5 ... 53 LSB over MobileNetV2's 67 quantization points),
  so it says how much error reached a layer, not where it was made.

The **first divergent layer** is the first whose local error is beyond its limit. A
network none of whose layers diverges says so in one line, with how far rounding
carried the accumulated error.

Every layer is tapped in one build when the board can carry the taps (host and tosa
always; other boards when the tapped program passes the fit check); otherwise the
pass splits the layers over several builds (``bisect``) and the table says why.
Nothing is shown that was not measured: a layer the board returned no value for says
why in its ``where`` column.
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

from et_hil.boards import registry
from et_hil.programs.taps import Fault, TapPlan, layer_inputs
from et_hil.verdict.compare import cosine_similarity, json_float, snr_db

if TYPE_CHECKING:
    import torch

    from et_hil.boards.base import Board
    from et_hil.programs.artifact import Artifact
    from et_hil.programs.builder import Builder
    from et_hil.tolerance import Tolerance

Array = npt.NDArray[Any]

STRATEGIES = ("auto", "all", "bisect")
# A correct quantized layer, from the board's own inputs: at most its LSB limit
# anywhere, few elements a step off (values near a rounding boundary), and no
# systematic offset (rounding differences cancel; a wrong zero point or rounding
# mode does not). Calibrated on the real-model suite
# (docs/writing-tests/verdicts.md, 'What a verdict means: the mutation campaign'):
# every correct layer of the mutation campaign (19 clean tables on host, tosa,
# qemu-m55 and qemu-m55-cmsis, and the unfaulted layers of every faulted one) had at
# most 1.6% of its elements a step off, with a bias of at most 0.016 LSB either way;
# an output requantized one step off on tosa moves only the positive activations (its
# ReLU's clamp keeps the zeros): 43-50% of the elements +1, a bias of +0.44 to +0.50.
LOCAL_MAX_OFF = 0.5  # share of elements off by a step or more
LOCAL_MAX_BIAS_LSB = 0.25  # mean signed error, judged when enough elements are off:
LOCAL_MIN_BIASED = 16  # in a tiny tensor a few flips make a large mean by chance


@dataclasses.dataclass(frozen=True)
class LayerMetrics:
    """A layer's board value against one reference.

    Attributes:
        max_abs: largest absolute difference (the tensor's units).
        snr_db: SNR of the board's value against the reference.
        cosine: cosine similarity.
        max_lsb: quantized layers: the largest difference in units of the layer's scale.
        off_share: quantized layers: the share of elements off by a step or more.
        bias_lsb: quantized layers: the mean signed difference, in LSB.
    """

    max_abs: float
    snr_db: float
    cosine: float
    max_lsb: float | None = None
    off_share: float | None = None
    bias_lsb: float | None = None


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One tapped layer, in execution order.

    Attributes:
        vs_fake_quant: the accumulated error (against the reference run end to end).
        local: the layer's own error (against the reference's layer run on the board's
            inputs to it); ``None`` where the board gave no full tensors (STATS).
        vs_float: against the float model at the same point of the graph (after a
            folded BatchNorm and the activation), ``None`` where it has no such point.
        within: the layer's verdict (its local error within the limits), ``None``
            when not measured.
    """

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
    local: LayerMetrics | None = None

    @property
    def name(self) -> str:
        """How a person finds the layer in the model: module path (else the line of
        code, for functional ops at the top level) and op."""
        return f"{self.module_path or self.code or '(top)'} {self.op}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        row = dataclasses.asdict(self)
        for key in ("vs_fake_quant", "vs_float", "local"):
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
    strategy_note: str = ""  # why the layers were split over builds, if they were

    @property
    def first_divergent(self) -> LayerRow | None:
        """The first layer outside its limits on its own (see the module doc)."""
        return next((r for r in self.rows if r.within is False), None)

    def summary(self) -> str:
        """One line: the first divergent layer, or that none diverges on its own."""
        first = self.first_divergent
        split = ""
        if self.partitions_with_taps != self.partitions_without_taps:
            split = (
                f"; taps changed the partitioning: {self.partitions_without_taps} -> "
                f"{self.partitions_with_taps} delegated partitions"
            )
        if self.strategy_note:
            split += f"; {self.strategy_note}"
        measured = [r for r in self.rows if r.within is not None]
        if first is None:
            return (
                f"no layer diverges on its own (limit {self.limit}; {len(measured)} of "
                f"{len(self.rows)} layers measured){self._growth(measured)}{split}"
            )
        return (
            f"first divergent layer: #{first.index} {first.name} [{first.node}] in "
            f"{first.where}: {_short(first.local) if first.local else _short(first.vs_fake_quant)}"
            f" on its own (limit {self.limit}), {_short(first.vs_fake_quant)} accumulated; "
            f"every layer before it was within{split}"
        )

    def _growth(self, rows: Sequence[LayerRow]) -> str:
        errors = [r.vs_fake_quant for r in rows if r.vs_fake_quant is not None]
        if not errors:
            return ""
        if self.quantized:
            values = [e.max_lsb or 0.0 for e in errors]
            return (
                f"; error accumulates from {values[0]:g} to {max(values):g} LSB over "
                f"{len(values)} layers"
            )
        values = [e.max_abs for e in errors]
        return f"; error accumulates from {values[0]:.3g} to {max(values):.3g} over {len(values)}"

    def table(self, rows: int | None = None) -> str:
        """The table as text; with ``rows``, only that many rows around the first
        divergent layer (none when no layer diverges: the summary says it all)."""
        shown = self.rows
        first = self.first_divergent
        if rows is not None and len(shown) > rows:
            if first is None:
                shown = []
            else:
                start = max(0, first.index - rows // 2)
                shown = shown[start : start + rows]
        header = ["#", "layer", "where", "on its own", "accumulated", "vs float", ""]
        lines = [header]
        for r in shown:
            lines.append(
                [
                    str(r.index),
                    r.name,
                    r.where,
                    _describe(r.local),
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
            "strategy_note": self.strategy_note,
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
                    "index", "module_path", "code", "op", "node", "where", "scale",
                    "local_max_lsb", "local_off_share", "local_bias_lsb", "local_max_abs",
                    "fq_max_lsb", "fq_max_abs", "fq_snr_db",
                    "float_max_abs", "float_snr_db", "float_cosine", "within",
                ]
            )  # fmt: skip
            for r in self.rows:
                lo, fq, fl = r.local, r.vs_fake_quant, r.vs_float
                writer.writerow(
                    [
                        r.index, r.module_path, r.code, r.op, r.node, r.where, r.scale,
                        _cell(lo, "max_lsb"), _cell(lo, "off_share"), _cell(lo, "bias_lsb"),
                        _cell(lo, "max_abs"),
                        _cell(fq, "max_lsb"), _cell(fq, "max_abs"), _cell(fq, "snr_db"),
                        _cell(fl, "max_abs"), _cell(fl, "snr_db"), _cell(fl, "cosine"),
                        "" if r.within is None else r.within,
                    ]
                )  # fmt: skip
        return [as_json, as_csv]


def _cell(m: LayerMetrics | None, field: str) -> Any:
    value = getattr(m, field) if m is not None else None
    return "" if value is None else value


def _short(m: LayerMetrics | None) -> str:
    if m is None:
        return "?"
    if m.max_lsb is not None:
        return f"{m.max_lsb:g} LSB"
    return f"max abs {m.max_abs:.4g}"


def _describe(m: LayerMetrics | None) -> str:
    if m is None:
        return "-"
    if m.max_lsb is not None:
        text = f"{m.max_lsb:g} LSB"
        if m.off_share:
            text += f" ({100 * m.off_share:.0f}% off"
            text += f", bias {m.bias_lsb:+.2f})" if m.bias_lsb else ")"
        return text
    return f"max abs {m.max_abs:.3g}, {m.snr_db:.1f} dB"


def _float_metrics(actual: Array, reference: Array) -> LayerMetrics:
    a = actual.astype(np.float64).reshape(-1)
    r = reference.astype(np.float64).reshape(-1)
    diff = np.abs(a - r)
    return LayerMetrics(
        max_abs=float(diff.max()) if diff.size else 0.0,
        snr_db=snr_db(a, r),
        cosine=cosine_similarity(a, r),
    )


def _lsb_metrics(actual: Array, reference: Array, scale: float) -> LayerMetrics:
    """Integer tensors compared in steps (LSB); ``max_abs`` in the tensor's units."""
    a = actual.astype(np.int64).reshape(-1)
    r = reference.astype(np.int64).reshape(-1)
    signed = a - r
    steps = np.abs(signed)
    worst = float(steps.max()) if steps.size else 0.0
    return LayerMetrics(
        max_abs=worst * scale,
        snr_db=snr_db(a, r),
        cosine=cosine_similarity(a, r),
        max_lsb=worst,
        off_share=round(float(np.mean(steps >= 1)), 6) if steps.size else 0.0,
        bias_lsb=round(float(signed.mean()), 6) if steps.size else 0.0,
    )


def float_points(float_graph: Any) -> dict[str, str]:
    """For each node of the exported float graph, the node holding its value as the
    quantized graph sees it: past a BatchNorm that PT2E folds into the conv before it
    (``conv2d_3`` -> ``batch_norm_3``), else itself."""
    folded = ("batch_norm", "_native_batch_norm_legit")
    points: dict[str, str] = {}
    for node in float_graph.graph.nodes:
        point = node
        while True:
            users = list(point.users)
            if len(users) != 1 or users[0].op != "call_function":
                break
            name = str(getattr(users[0].target, "__name__", users[0].target))
            if name.startswith(folded):
                point = users[0]
            elif name == "getitem" and point is not node:
                point = users[0]  # the BatchNorm's output of a training-form node
            else:
                break
        points[node.name] = point.name
    return points


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
    the fake-quant reference (on its own and accumulated) and eager float.

    Args:
        tolerance: the limits a layer is held to on its own (default: the board
            file's: ``max_lsb`` for quantized programs, 1 LSB when it sets none;
            ``atol``/``rtol`` for float ones).
        fault: a deliberate error in one layer of the program (tests of this tool).
        strategy: ``all`` taps every layer in one build; ``bisect`` splits them over
            several builds (a binary search on the accumulated error, for boards
            that cannot carry every tap); ``auto`` taps every layer in one build when
            the board can carry them (host and tosa always; other boards when the
            tapped program passes the fit check), else bisects and says why.
        reducer: ``FULL_TENSOR`` or ``STATS`` (13 statistics per layer: what a
            UART carries in reasonable time); default ``STATS`` on serial boards.

    Raises:
        HarnessError: as :func:`et_hil.verdict.check.check_model` (build, run, timeout...).
    """
    from et_hil.errors import ConfigError
    from et_hil.programs.builder import validate_inputs
    from et_hil.verdict.check import build_for_board

    if reducer not in (None, "FULL_TENSOR", "STATS"):
        raise ConfigError(f"et_debug: reducer={reducer!r}: use 'FULL_TENSOR' or 'STATS'")
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"et_debug: strategy={strategy!r}: use {', '.join(repr(s) for s in STRATEGIES)}"
        )
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
        reducer=reducer or registry.get(spec.kind).debug_reducer,
        float_graph=_float_graph(model, tensors),
        front_graph=_exported_graph(plain),
    )
    candidates: list[dict[str, Any]] = plain.metadata.get("tap_candidates") or []
    note = ""
    rows: list[LayerRow] | None = None
    if strategy in ("auto", "all"):
        rows, note = debug_pass.probe_all(check_fit=strategy == "auto")
        if rows is None:
            strategy = "bisect"
    if rows is None:
        rows = debug_pass.bisect(candidates) if candidates else []
        strategy = "bisect"
    elif strategy == "auto":
        strategy = "all"
    t_gap = time.perf_counter()
    gaps, gap_note = etdump_gaps(board, plain, tensors, run_dir / "etdump", timeout_s)
    debug_pass.timings["etdump_s"] = time.perf_counter() - t_gap
    timings = {
        **{k: round(v, 3) for k, v in debug_pass.timings.items()},
        "builds": debug_pass.builds,
        "total_s": round(time.perf_counter() - t0, 3),
    }
    return DivergenceReport(
        model=plain.model_name,
        board=spec.name,
        quantized=quantized,
        limit=_limit_text(limit_tol, quantized),
        rows=rows,
        partitions_without_taps=_partitions(plain.metadata),
        partitions_with_taps=debug_pass.partitions,
        timings=timings,
        fault=fault,
        strategy=strategy,
        reducer=debug_pass.reducer,
        etdump_gaps=gaps,
        etdump_note=gap_note,
        strategy_note=note,
    )


def quantized_layer_within(error: LayerMetrics, size: int, max_lsb: float = 1.0) -> bool:
    """A quantized layer's local verdict: its error on its own (against the reference's
    layer fed the board's inputs) looks like rounding (see :data:`LOCAL_MAX_OFF`).

    Args:
        error: the layer's local error, in LSB of its scale.
        size: how many elements the layer's tensor has.
        max_lsb: the board's LSB limit.
    """
    off_count = (error.off_share or 0.0) * size
    biased = abs(error.bias_lsb or 0.0) > LOCAL_MAX_BIAS_LSB
    return (
        (error.max_lsb or 0.0) <= max_lsb
        and (error.off_share or 0.0) <= LOCAL_MAX_OFF
        and not (biased and off_count >= LOCAL_MIN_BIASED)
    )


def _limit_text(limit: Tolerance, quantized: bool) -> str:
    if quantized:
        lsb = limit.max_lsb if limit.max_lsb is not None else 1.0
        return (
            f"{lsb:g} LSB, at most {100 * LOCAL_MAX_OFF:.0f}% of elements a step off, "
            f"bias within +-{LOCAL_MAX_BIAS_LSB:g} when {LOCAL_MIN_BIASED}+ are off"
        )
    return f"atol {limit.atol or 0:g} + rtol {limit.rtol or 0:g}*|ref|"


def _exported_graph(artifact: Artifact) -> Any:
    """The program's exported graph (its front), or ``None`` for an older artifact."""
    from et_hil.programs import front

    path = artifact.exported_program_path
    if path is None:
        return None
    namespaces = tuple(artifact.metadata.get("reference_op_namespaces") or ())
    return front.load_program(path, namespaces, artifact.model_name).graph_module


def _float_graph(model: Any, tensors: Sequence[Any]) -> Any:
    """The float model's exported graph (for the vs-float column)."""
    from et_hil.programs.builder import export_model

    return export_model(model, tensors).module()


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

    from et_hil.boards.base import as_numpy

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
    float_graph: Any
    front_graph: Any = None  # the program's exported graph (tap points by name)
    builds: int = 0
    partitions: int = 0
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def _add_time(self, key: str, since: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - since

    def _build(self, points: tuple[str, ...] | None) -> Artifact:
        from et_hil.verdict.check import build_for_board

        t0 = time.perf_counter()
        tapped = build_for_board(
            self.builder, self.board, self.model, self.tensors, quantize=self.quantize,
            calibration=self.calibration, taps=TapPlan(points=points, reducer=self.reducer),
            fault=self.fault,
        )  # fmt: skip
        self.builds += 1
        self.partitions = max(self.partitions, _partitions(tapped.metadata))
        self._add_time("build_s", t0)
        return tapped

    def probe_all(self, *, check_fit: bool) -> tuple[list[LayerRow] | None, str]:
        """Every layer in one build; ``(None, why)`` when the board cannot carry the
        taps (``check_fit``: the tapped program fails the board's fit check)."""
        from et_hil.verdict.fit import fit_problems

        tapped = self._build(None)
        carries_all = not check_fit or registry.get(self.board.spec.kind).host_memory
        if not carries_all and (problems := fit_problems(tapped, self.board.spec)):
            return None, (
                f"every layer tapped does not fit board '{self.board.spec.name}' "
                f"({'; '.join(problems)}): the layers were split over builds"
            )
        return self.compare(tapped), ""

    def probe(self, points: tuple[str, ...] | None) -> list[LayerRow]:
        """Build with these tap points (``None``: all), run, and compare each."""
        return self.compare(self._build(points))

    def compare(self, tapped: Artifact) -> list[LayerRow]:
        """Run a tapped program and compare every tapped layer."""
        from et_hil.boards.base import as_numpy
        from et_hil.programs import front
        from et_hil.verdict.replay import replay

        t1 = time.perf_counter()
        taps: list[dict[str, Any]] = tapped.metadata.get("taps") or []
        # The front (float, or the fake-quant program) names its nodes as the tap
        # points do: a tap finds its reference value by its own name.
        reference = front.reference_module(
            _front_path(tapped),
            tuple(tapped.metadata.get("reference_op_namespaces") or ()),
            tapped.model_name,
        )
        plain = replay(reference, self.tensors, keep_values=True)
        floats = replay(self.float_graph, self.tensors, keep_values=True).values
        self._add_time("reference_s", t1)
        t2 = time.perf_counter()
        run = self.board.run(
            tapped,
            [as_numpy(t) for t in self.tensors],
            run_dir=self.run_dir / f"probe{self.builds}",
            timeout_s=self.timeout_s,
            expected=_expected(plain.outputs, taps, plain.values, self.reducer),
        )
        self._add_time("run_s", t2)
        t3 = time.perf_counter()
        outputs = run.outputs
        board_values = {
            t["node"]: as_numpy(outputs[t["output_index"]])
            for t in taps
            if t["output_index"] < len(outputs) and self.reducer == "FULL_TENSOR"
        }
        local = replay(reference, self.tensors, board_values=board_values).local
        points = float_points(self.float_graph) if self.quantized else {}
        candidates = tapped.metadata.get("tap_candidates") or taps
        index = {c["node"]: i for i, c in enumerate(candidates)}
        rows = []
        for i, tap in enumerate(taps):
            # a quantized layer's float value: the float graph's node at the same point
            # (past a folded BatchNorm); a float program's: the tap point itself
            float_node = points.get(tap["source"], "") if self.quantized else tap["node"]
            value = floats.get(float_node)
            rows.append(
                self._row(index.get(tap["node"], i), tap, outputs, plain.values, local, value)
            )
        self._add_time("compare_s", t3)
        return rows

    def bisect(self, candidates: Sequence[dict[str, Any]]) -> list[LayerRow]:
        """The first divergent layer by binary search over single-tap builds, on the
        accumulated error (it persists in the layers after a bad one; a later layer
        that clamps it away can hide it, and then the search says what it measured).
        Each measured row also has its local error where its inputs were tapped."""
        measured: dict[int, LayerRow] = {}

        def diverged(i: int) -> bool:
            if i not in measured:
                node = candidates[i]["node"]
                # the layer's inputs too: its own error needs the board's values of them
                inputs = layer_inputs(self.front_graph, node) if self.front_graph else []
                rows = self.probe((node, *inputs))
                row = next(r for r in rows if r.node == node)
                measured[i] = dataclasses.replace(row, index=i)
            row = measured[i]
            accumulated = row.vs_fake_quant
            if self.quantized:
                limit = self.limit.max_lsb if self.limit.max_lsb is not None else 1.0
                return accumulated is not None and (accumulated.max_lsb or 0.0) > limit
            return row.within is False

        lo, hi = 0, len(candidates) - 1
        if diverged(hi):
            while lo < hi:
                mid = (lo + hi) // 2
                if diverged(mid):
                    hi = mid
                else:
                    lo = mid + 1
        rows = []
        for i, c in enumerate(candidates):
            if i in measured:
                row = measured[i]
                # a bisection judges by the accumulated error (see above)
                rows.append(dataclasses.replace(row, within=not diverged(i)))
            else:
                rows.append(
                    LayerRow(i, c["node"], c["module_path"], c["op"],
                             "not measured (bisection)", c.get("scale"), None, None, None,
                             code=c.get("code", ""))
                )  # fmt: skip
        return rows

    def _row(
        self,
        i: int,
        tap: dict[str, Any],
        outputs: Sequence[Any],
        plain: Mapping[str, Any],
        local: Mapping[str, Any],
        float_value: Any,
    ) -> LayerRow:
        from et_hil.boards.base import as_numpy

        k = tap["output_index"]
        scale = tap.get("scale")
        code = tap.get("code", "")
        if k >= len(outputs):
            return LayerRow(
                i, tap["node"], tap["module_path"], tap["op"],
                f"not measured: the board returned {len(outputs)} outputs",
                scale, None, None, None, code=code,
            )  # fmt: skip
        board_value = as_numpy(outputs[k])
        reference = plain.get(tap["node"])
        if self.reducer == "STATS":
            return self._stats_row(i, tap, board_value, reference, float_value)
        own = local.get(tap["node"])
        vs_fq = own_error = vs_float = None
        if self.quantized and scale:
            if reference is not None:
                vs_fq = _lsb_metrics(board_value, as_numpy(reference), scale)
            if own is not None:
                own_error = _lsb_metrics(board_value, as_numpy(own), scale)
            dequantized = (board_value.astype(np.float64) - tap["zero_point"]) * scale
        else:
            if reference is not None:
                vs_fq = _float_metrics(board_value, as_numpy(reference))
            if own is not None:
                own_error = _float_metrics(board_value, as_numpy(own))
            dequantized = board_value
        if float_value is not None and float_value.numel() == dequantized.size:
            vs_float = _float_metrics(dequantized, as_numpy(float_value).reshape(dequantized.shape))
        within = None if own is None else self._within(board_value, own, own_error)
        return LayerRow(
            i, tap["node"], tap["module_path"], tap["op"], str(tap.get("where", "?")),
            scale, vs_fq, vs_float, within, code=code, local=own_error,
        )  # fmt: skip

    def _within(self, board_value: Array, own: Any, error: LayerMetrics | None) -> bool:
        """A layer's local verdict (see :data:`LOCAL_MAX_OFF`)."""
        from et_hil.boards.base import as_numpy

        if error is None:
            return False
        if self.quantized and error.max_lsb is not None:
            limit = self.limit.max_lsb if self.limit.max_lsb is not None else 1.0
            return quantized_layer_within(error, board_value.size, limit)
        return _within_float(board_value, as_numpy(own), self.limit)

    def _stats_row(
        self,
        i: int,
        tap: dict[str, Any],
        board_stats: Array,
        reference: Any,
        float_value: Any,
    ) -> LayerRow:
        """A layer measured through STATS: the statistics that move by at most the
        elementwise error are compared, so a difference beyond the limit proves a
        divergence (errors that cancel in every statistic can go unseen). STATS
        carry no tensor to feed the next layer: accumulated error only."""
        from executorch.devtools.intermediate_output_tap import STATS

        from et_hil.boards.base import as_numpy

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
            metrics, None, within, code=tap.get("code", ""),
        )  # fmt: skip


# STATS fields that move by at most the elementwise error (in the tensor's units):
# a difference above the limit in any of them proves the layer diverged.
_BOUNDED_STATS = ("min", "max", "mean", "abs_max", "abs_mean", "rms", "p99_abs")


def _front_path(artifact: Artifact) -> Path:
    """The exported program a tapped artifact was lowered from (see
    :attr:`et_hil.programs.artifact.Artifact.exported_program_path`)."""
    path = artifact.exported_program_path
    if path is None:
        from et_hil.errors import BuildError

        raise BuildError(
            f"model '{artifact.model_name}': the tapped program {artifact.key[:12]} keeps "
            "no exported program to compare its layers with; rebuild it (--et-no-cache)"
        )
    return path


def _expected(
    user: Sequence[Any], taps: Sequence[dict[str, Any]], values: Mapping[str, Any], reducer: str
) -> list[Array] | None:
    """Every output's reference, in program order (firmware that checks its
    outputs, BundleIO, needs them): the model's outputs, then each tap's value."""
    from executorch.devtools.intermediate_output_tap import get_reducer

    from et_hil.boards.base import as_numpy

    if any(t["node"] not in values for t in taps):
        return None
    reduce = get_reducer(reducer).eager
    return [as_numpy(o) for o in user] + [as_numpy(reduce(values[t["node"]])) for t in taps]


def _within_float(actual: Array, reference: Array, tol: Tolerance) -> bool:
    ref = reference.astype(np.float64).reshape(actual.shape)
    bound = (tol.atol or 0.0) + (tol.rtol or 0.0) * np.abs(ref)
    return bool(np.all(np.abs(actual.astype(np.float64) - ref) <= bound))


def _partitions(metadata: Mapping[str, Any]) -> int:
    return int((metadata.get("delegation") or {}).get("delegated_subgraphs") or 0)
