"""The report's plots: matplotlib figures rendered to PNG bytes, to inline in the page.

Each function returns :class:`Plot` objects. A plot without data has no image and
says why in its ``note``: the page shows that line instead of an empty chart.

matplotlib is imported inside :func:`_pyplot` only, so importing :mod:`et_hil`
(every pytest run does) does not pay for it; the Agg backend needs no display.
PNG rather than SVG: with thousands of tests an SVG holds one element per point
and bloats the page, a PNG's size depends on its pixels only.
"""

from __future__ import annotations

import dataclasses
import heapq
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from et_hil.report.figures import base_name, case_name, figures_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from et_hil.report.baseline import ChangeRow
    from et_hil.report.record import Record
    from et_hil.report.record_parts import DebugRecord, LayerMetricsRecord

ACCURACY_FIGURE = "snr_db@eager_float"
WORST_CASES = 40  # per board: a longer list is no longer read, only scrolled
LARGEST_MODELS = 30
CHANGES_PER_FIGURE = 25
LABEL_CHARS = 48
# Kinds of baseline change, as the baseline comparison names them, and their colours.
KIND_COLOURS = {
    "regression": "#c62828",
    "warning": "#ef8f00",
    "improvement": "#2e7d32",
}
_BOARD_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclasses.dataclass(frozen=True)
class Plot:
    """One plot of the report.

    Attributes:
        title: what it shows (the page's heading for it).
        png: the image, or None when there was nothing to plot.
        note: why there is no image (or a remark on what was left out).
    """

    title: str
    png: bytes | None
    note: str = ""


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display, thread-unsafe but headless)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Figure, tight: bool = True) -> bytes:
    """The figure as PNG (closed); ``tight``: trimmed to its content, at the cost of one
    more drawing of it (figures that set their own margins leave it out)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return buffer.getvalue()


def _label(text: str) -> str:
    """A case as an axis label: without the suites folder, shortened in the middle."""
    text = text.rpartition("/")[2]
    if len(text) <= LABEL_CHARS:
        return text
    half = (LABEL_CHARS - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def board_colours(boards: Iterable[str]) -> dict[str, str]:
    """A colour per board, in name order: pass the same to every plot of a page so that a
    board keeps its colour across plots whatever boards each one shows."""
    return {b: _BOARD_COLOURS[i % len(_BOARD_COLOURS)] for i, b in enumerate(sorted(set(boards)))}


def _colours(boards: Iterable[str], given: Mapping[str, str] | None) -> dict[str, str]:
    boards = list(boards)
    own = board_colours(boards)
    return {b: (given or {}).get(b, own[b]) for b in boards}


@dataclasses.dataclass(frozen=True)
class Point:
    """What the plots need of one record, read once (figures_of is the costly part)."""

    board: str
    case: str
    model: str
    outcome: str
    quarantined: bool
    figures: dict[str, float]


def points_of(records: Iterable[Record]) -> list[Point]:
    """The :class:`Point` of each record, in order."""
    found = []
    for record in records:
        case = case_name(record.test, record.board)
        found.append(
            Point(
                board=record.board or "-",
                case=case,
                model=(record.artifact.model if record.artifact else None) or case,
                outcome=record.outcome,
                quarantined=bool(record.quarantine and not record.quarantine.expired),
                figures=figures_of(record),
            )
        )
    return found


# -- (a) accuracy ------------------------------------------------------------------------


def accuracy_by_board(points: Iterable[Point]) -> dict[str, dict[str, float]]:
    """SNR (dB, vs eager float) per board and case; infinite means an exact match."""
    found: dict[str, dict[str, float]] = {}
    for point in points:
        value = point.figures.get(ACCURACY_FIGURE)
        if value is None or math.isnan(value):
            continue
        cases = found.setdefault(point.board, {})
        # Several records of one case (reruns): the worst one is the one to look at.
        cases[point.case] = min(value, cases.get(point.case, math.inf))
    return found


def accuracy_plots(points: Sequence[Point], colours: Mapping[str, str] | None = None) -> list[Plot]:
    """The worst cases per board (lowest SNR first) and each board's distribution."""
    per_board = accuracy_by_board(points)
    worst_title = f"Accuracy: the {WORST_CASES} worst cases per board (SNR vs eager float)"
    spread_title = "Accuracy: distribution per board (SNR vs eager float)"
    if not per_board:
        why = "no record has an SNR against eager float (nothing ran, or --et-build-only)"
        return [Plot(worst_title, None, why), Plot(spread_title, None, why)]
    colour = _colours(per_board, colours)
    return [
        _worst_cases(per_board, worst_title, colour),
        _distribution(per_board, spread_title, colour),
    ]


def _worst_cases(
    per_board: Mapping[str, Mapping[str, float]], title: str, colour: Mapping[str, str]
) -> Plot:
    plt = _pyplot()
    boards = sorted(per_board)
    worst_of = {
        b: heapq.nsmallest(WORST_CASES, per_board[b].items(), key=lambda kv: kv[1]) for b in boards
    }
    rows = max(len(w) for w in worst_of.values())
    # Margins from the labels' length, not tight_layout nor a tight bbox: each measures
    # every text once more, and this is the costliest plot of the page.
    labels = max(len(_label(c)) for w in worst_of.values() for c, _ in w)
    label_in, bars_in, height_in = 0.3 + 0.058 * labels, 4.5, 1.2 + 0.22 * rows
    width_in = len(boards) * (label_in + bars_in)
    fig, axes = plt.subplots(1, len(boards), figsize=(width_in, height_in), squeeze=False)
    fig.subplots_adjust(
        left=label_in / width_in,
        right=1 - 0.1 / width_in,
        wspace=label_in / bars_in,
        top=1 - 0.4 / height_in,
        bottom=0.55 / height_in,
    )
    finite = [v for cases in per_board.values() for v in cases.values() if math.isfinite(v)]
    # An exact match (inf) is drawn just past the best finite value, and labelled.
    cap = (max(finite) if finite else 100.0) + 10.0
    for board, ax in zip(boards, axes[0], strict=True):
        worst = worst_of[board]
        values = [min(v, cap) for _, v in worst]
        positions = range(len(worst))
        ax.barh(positions, values, color=colour[board])
        ax.set_yticks(list(positions), [_label(c) for c, _ in worst], fontsize=7)
        ax.invert_yaxis()  # the worst on top
        for pos, (_, v) in zip(positions, worst, strict=True):
            ax.text(
                min(v, cap),
                pos,
                " exact" if math.isinf(v) else f" {v:.1f}",
                va="center",
                fontsize=6,
            )
        ax.set_title(f"{board} ({len(per_board[board])} cases)", fontsize=9)
        ax.set_xlabel("SNR dB (higher is better)", fontsize=8)
        # Each board on its own scale: its worst cases may be far below another's.
        ax.set_xlim(min(0.0, min(values) * 1.1), max(values) * 1.15 or 1.0)
        ax.grid(axis="x", alpha=0.3)
    return Plot(title, _png(fig, tight=False))


def _distribution(
    per_board: Mapping[str, Mapping[str, float]], title: str, colour: Mapping[str, str]
) -> Plot:
    plt = _pyplot()
    boards = sorted(per_board)
    finite = [[v for v in per_board[b].values() if math.isfinite(v)] for b in boards]
    exact = [sum(math.isinf(v) for v in per_board[b].values()) for b in boards]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(boards) + 2), 3.8))
    shown = [i for i, values in enumerate(finite) if values]
    if shown:
        parts = ax.boxplot(
            [finite[i] for i in shown],
            positions=[i + 1 for i in shown],
            widths=0.5,
            patch_artist=True,
            showfliers=True,
        )
        for patch, i in zip(parts["boxes"], shown, strict=True):
            patch.set_facecolor(colour[boards[i]])
            patch.set_alpha(0.5)
    ax.set_xticks(
        range(1, len(boards) + 1),
        [f"{b}\n{len(finite[i])} finite, {exact[i]} exact" for i, b in enumerate(boards)],
        fontsize=8,
    )
    ax.set_xlim(0.4, len(boards) + 0.6)
    ax.set_ylabel("SNR dB (higher is better)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return Plot(title, _png(fig))


# -- (b) Vela estimates ------------------------------------------------------------------


def vela_by_model(points: Iterable[Point]) -> dict[str, dict[str, tuple[float, float]]]:
    """Vela's (cycles, SRAM bytes) per model and board: the largest over a model's tests."""
    found: dict[str, dict[str, tuple[float, float]]] = {}
    for point in points:
        cycles = point.figures.get("vela.cycles_total")
        sram = point.figures.get("vela.sram_bytes")
        if cycles is None and sram is None:
            continue
        boards = found.setdefault(point.model, {})
        old = boards.get(point.board, (0.0, 0.0))
        boards[point.board] = (max(old[0], cycles or 0.0), max(old[1], sram or 0.0))
    return found


def vela_plot(points: Sequence[Point], colours: Mapping[str, str] | None = None) -> Plot:
    """Vela's cycles and SRAM per model, bars grouped by board (the largest models only)."""
    title = "Vela estimates per model: cycles and SRAM"
    per_model = vela_by_model(points)
    if not per_model:
        return Plot(title, None, "no record has Vela estimates (no Ethos-U board in the run)")
    models = sorted(per_model, key=lambda m: -max(c for c, _ in per_model[m].values()))
    note = ""
    if len(models) > LARGEST_MODELS:
        note = f"the {LARGEST_MODELS} largest of {len(models)} models (by cycles)"
        models = models[:LARGEST_MODELS]
    boards = sorted({b for m in models for b in per_model[m]})
    colour = _colours(boards, colours)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.5 + 0.3 * len(models) * max(1, len(boards) / 2)))
    height = 0.8 / len(boards)
    for column, (ax, label) in enumerate(zip(axes, ("cycles (total)", "SRAM bytes"), strict=True)):
        for i, board in enumerate(boards):
            values = [per_model[m].get(board, (0.0, 0.0))[column] for m in models]
            ax.barh(
                [y + i * height for y in range(len(models))],
                values,
                height=height,
                color=colour[board],
                label=board,
            )
        ax.set_yticks(
            [y + height * (len(boards) - 1) / 2 for y in range(len(models))],
            [_label(m) if column == 0 else "" for m in models],
            fontsize=7,
        )
        ax.invert_yaxis()
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return Plot(title, _png(fig), note)


# -- (c) changes against the baseline ----------------------------------------------------


def baseline_plot(changes: Sequence[ChangeRow]) -> Plot:
    """The changes against the baseline, one panel per figure (relative ones in %).

    ``changes`` are the baseline's change rows with the ``test`` and ``board`` they
    belong to. New and missing figures have no change to draw; the table lists them.
    """
    title = "Changes against the baseline"
    groups: dict[tuple[str, bool], list[tuple[str, float, str]]] = {}
    for row in changes:
        value, kind = row.change.change, row.change.kind
        if value is None or not math.isfinite(value) or kind not in KIND_COLOURS:
            continue
        # A relative limit ('+2%') gives its change as a fraction, others as a difference.
        relative = row.change.limit.strip().endswith("%")
        label = f"{_label(case_name(row.test, row.board))} @{row.board or '-'}"
        key = (base_name(row.change.figure), relative)
        groups.setdefault(key, []).append((label, value * 100 if relative else value, kind))
    if not groups:
        return Plot(title, None, "no regression, warning or improvement against the baseline")
    plt = _pyplot()
    keys = sorted(groups)
    shown = [
        sorted(groups[k], key=lambda row: -abs(row[1]))[:CHANGES_PER_FIGURE][::-1] for k in keys
    ]
    rows = max(len(s) for s in shown)
    columns = min(3, len(keys))
    lines = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(6.5 * columns, lines * max(2.6, 1.3 + 0.22 * rows)), squeeze=False
    )
    for ax, (figure, relative), rows_of in zip(axes.flat, keys, shown, strict=False):
        positions = range(len(rows_of))
        ax.barh(positions, [v for _, v, _ in rows_of], color=[KIND_COLOURS[k] for *_, k in rows_of])
        ax.set_yticks(list(positions), [label for label, _, _ in rows_of], fontsize=7)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(figure, fontsize=9)
        ax.set_xlabel("change (%)" if relative else "change (difference)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    from matplotlib.patches import Patch

    kinds = sorted({k for rows_of in shown for *_, k in rows_of}, key=list(KIND_COLOURS).index)
    fig.legend(
        handles=[Patch(color=KIND_COLOURS[k], label=k) for k in kinds],
        loc="upper right",
        fontsize=7,
    )
    fig.tight_layout()
    cut = sum(len(groups[k]) > CHANGES_PER_FIGURE for k in keys)
    note = f"the {CHANGES_PER_FIGURE} largest changes per figure" if cut else ""
    return Plot(title, _png(fig), note)


# -- (d) trend over runs -----------------------------------------------------------------


def _counts(points: Iterable[Point]) -> dict[str, tuple[int, int]]:
    """Per board: (passed, ran). Skipped tests did not run; quarantined failures are
    known ones that do not fail the run, so they do not count against it either."""
    counts: dict[str, list[int]] = {}
    for point in points:
        if point.outcome == "skipped" or (point.outcome != "passed" and point.quarantined):
            continue
        pair = counts.setdefault(point.board, [0, 0])
        pair[0] += point.outcome == "passed"
        pair[1] += 1
    return {board: (p, n) for board, (p, n) in counts.items()}


def trend_plot(
    runs: Sequence[tuple[str, Sequence[Point]]], colours: Mapping[str, str] | None = None
) -> Plot:
    """Pass fraction and median SNR per board over ``runs`` ((label, points), oldest first)."""
    title = "Trend over runs"
    if len(runs) < 2:
        return Plot(title, None, "a trend needs several results files (one run each)")
    boards = sorted({p.board for _, points in runs for p in points})
    passing: dict[str, list[float]] = {b: [] for b in boards}
    median: dict[str, list[float]] = {b: [] for b in boards}
    for _, points in runs:
        counts = _counts(points)
        snr = accuracy_by_board(points)
        for board in boards:
            passed, ran = counts.get(board, (0, 0))
            passing[board].append(passed / ran if ran else math.nan)
            finite = [v for v in snr.get(board, {}).values() if math.isfinite(v)]
            median[board].append(statistics.median(finite) if finite else math.nan)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    x = range(len(runs))
    panels = (
        (axes[0], passing, "pass fraction (of tests that ran)"),
        (axes[1], median, "median SNR dB vs eager float"),
    )
    for ax, series, label in panels:
        _trend_panel(ax, x, _colours(boards, colours), series, label)
        ax.set_xticks(list(x), [label for label, _ in runs], fontsize=7, rotation=20, ha="right")
    axes[0].set_ylim(-0.05, 1.05)
    fig.tight_layout()
    return Plot(title, _png(fig))


def _trend_panel(
    ax: Axes, x: range, colour: Mapping[str, str], series: Mapping[str, list[float]], label: str
) -> None:
    drawn = False
    for board in colour:
        if all(math.isnan(v) for v in series[board]):
            continue
        ax.plot(list(x), series[board], marker="o", color=colour[board], label=board)
        drawn = True
    if drawn:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(label, fontsize=8)
    ax.grid(alpha=0.3)


def divergence_plot(debug: DebugRecord) -> Plot:
    """A per-layer table's errors against depth: each layer's own error and the error
    accumulated up to it, in LSB (float programs: max abs), the first divergent layer
    marked. At 70-200 layers a reader sees where rounding grows and where a layer
    breaks faster in this than in the table."""
    rows = debug.rows
    title = f"Per-layer error of {debug.model or '?'} on {debug.board or '?'}"
    lsb = debug.quantized

    def error(metrics: LayerMetricsRecord | None) -> float | None:
        if metrics is None:
            return None
        return metrics.max_lsb if lsb else metrics.max_abs

    own = [(r.index, value) for r in rows if (value := error(r.local)) is not None]
    accumulated = [(r.index, value) for r in rows if (value := error(r.vs_fake_quant)) is not None]
    if not own and not accumulated:
        return Plot(title, None, "no layer was measured with full tensors")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    if accumulated:
        ax.plot(*zip(*accumulated, strict=True), color="#888", label="accumulated", lw=1.2)
    if own:
        ax.plot(*zip(*own, strict=True), color="#1f77b4", label="on its own", marker=".", lw=1)
    first = next((r for r in rows if r.within is False), None)
    if first is not None:
        ax.axvline(first.index, color="#c62828", ls="--", lw=1)
        ax.annotate(
            "first divergent", (first.index, ax.get_ylim()[1]),
            color="#c62828", fontsize=8, ha="left", va="top",
        )  # fmt: skip
    ax.set_xlabel("layer (quantization point)" if lsb else "layer")
    ax.set_ylabel("max error (LSB)" if lsb else "max abs error")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return Plot(title, _png(fig))
