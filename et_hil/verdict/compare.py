"""Compare a board's outputs with a reference: metrics per output, then a verdict.

The steps are fixed (normalize -> structural checks -> metrics -> limits): every
comparison reports the same metrics, and only the limits differ between the
float, quantized and quantized-vs-float comparisons (see :mod:`et_hil.tolerance`).
Numbers only; nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from et_hil.errors import FailureClass
from et_hil.tolerance import Tolerance, Tolerances

if TYPE_CHECKING:
    from collections.abc import Mapping

    from et_hil.programs.artifact import Artifact

Array = npt.NDArray[Any]

LSB_EPSILON = 1e-4  # float32 dequantization noise on an LSB count (see _limit_checks)


@dataclasses.dataclass(frozen=True)
class OutputMetrics:
    """Metrics of one output against its reference.

    Attributes:
        index: output position.
        max_abs: largest ``|actual - reference|``.
        mean_abs: mean ``|actual - reference|``.
        max_lsb: ``max_abs / scale`` when the output is quantized, else ``None``.
        mean_lsb: ``mean_abs / scale`` (quantized outputs).
        bias_lsb: the mean signed error ``mean(actual - reference) / scale``
            (quantized outputs): rounding errors cancel, a wrong offset does not.
        within_1lsb: share of elements within 1 LSB (quantized outputs).
        snr_db: ``10 log10(sum(ref^2) / sum((act - ref)^2))``; ``inf`` when equal.
        cosine: cosine similarity of the flattened tensors.
        top1: fraction of rows whose argmax agrees (classifier-like outputs only).
        top5: fraction of rows whose reference argmax is in the actual top 5.
        max_excess: largest ``|a - r| - rtol*|r|`` (what ``atol`` is checked against).
    """

    index: int
    max_abs: float
    mean_abs: float
    max_lsb: float | None
    snr_db: float
    cosine: float
    top1: float | None
    top5: float | None
    max_excess: float
    mean_lsb: float | None = None
    bias_lsb: float | None = None
    within_1lsb: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (infinities become strings)."""
        return {k: json_float(v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Check:
    """One limit applied to one metric of one output."""

    output: str
    metric: str
    value: float | str
    limit: str
    passed: bool


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Result of comparing all outputs with one reference.

    Attributes:
        reference: what was compared against (``eager_float``, ``fake_quant``).
        metrics: per-output metrics (empty when the structure did not match).
        checks: every limit applied, passed or not.
        problems: structural problems (count, shape, dtype, NaN/Inf).
        source: what computed the reference (a golden reference says which).
    """

    reference: str
    metrics: tuple[OutputMetrics, ...]
    checks: tuple[Check, ...]
    problems: tuple[str, ...] = ()
    source: str = ""  # what computed the reference, where it is not obvious (golden)

    @property
    def passed(self) -> bool:
        """True when there is no structural problem and every check passed."""
        return not self.problems and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]


def failure_class_of(
    comparisons: Sequence[Comparison], degenerate: Sequence[str] = ()
) -> FailureClass | None:
    """The verdict of a check: ``degenerate`` first (no comparison means anything
    then), then ``numeric_mismatch`` (a comparison of the board failed), then
    ``quantization_quality`` (only the model's quantization limits failed); ``None``
    when it passed."""
    if degenerate:
        return FailureClass.DEGENERATE
    if any(not c.passed for c in comparisons if c.reference != "quantization"):
        return FailureClass.NUMERIC_MISMATCH
    if any(not c.passed for c in comparisons):
        return FailureClass.QUANTIZATION_QUALITY
    return None


def json_float(value: Any) -> Any:
    """A float JSON can hold: NaN and infinities as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def snr_db(actual: Array, reference: Array) -> float:
    """Signal-to-noise ratio of ``actual`` against ``reference``, in dB.

    ``inf`` when they are equal; ``-inf`` when the reference is all zeros and
    ``actual`` is not.
    """
    ref = reference.astype(np.float64).ravel()
    noise = float(np.sum((actual.astype(np.float64).ravel() - ref) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine_similarity(actual: Array, reference: Array) -> float:
    """Cosine similarity of the flattened arrays; 1.0 when both are all zeros."""
    a = actual.astype(np.float64).ravel()
    r = reference.astype(np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(r))
    if norm == 0.0:
        return 1.0 if not np.any(a) and not np.any(r) else 0.0
    return float(np.dot(a, r) / norm)


def _is_classifier_like(reference: Array) -> bool:
    # [batch, classes] float scores with at least two classes.
    return reference.ndim == 2 and reference.shape[1] >= 2 and reference.dtype.kind == "f"


def topk_agreement(actual: Array, reference: Array, k: int) -> float:
    """Fraction of rows where the reference's argmax is among the actual top ``k``."""
    ref_top1 = np.argmax(reference, axis=1)
    actual_topk = np.argsort(-actual, axis=1, kind="stable")[:, :k]
    hits = [ref_top1[i] in actual_topk[i] for i in range(reference.shape[0])]
    return float(np.mean(hits))


def output_metrics(
    index: int, actual: Array, reference: Array, *, scale: float | None = None, rtol: float = 0.0
) -> OutputMetrics:
    """All metrics of one output (same shape assumed)."""
    a = actual.astype(np.float64)
    r = reference.astype(np.float64)
    signed = a - r
    diff = np.abs(signed)
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    excess = diff - rtol * np.abs(r)
    top1 = top5 = None
    if _is_classifier_like(reference) and reference.size:
        top1 = topk_agreement(a, r, 1)
        if reference.shape[1] >= 5:
            top5 = topk_agreement(a, r, 5)
    return OutputMetrics(
        index=index,
        max_abs=max_abs,
        mean_abs=mean_abs,
        max_lsb=max_abs / scale if scale else None,
        snr_db=snr_db(a, r),
        cosine=cosine_similarity(a, r),
        top1=top1,
        top5=top5,
        max_excess=float(excess.max()) if excess.size else 0.0,
        mean_lsb=mean_abs / scale if scale else None,
        bias_lsb=float(signed.mean()) / scale if scale and signed.size else None,
        within_1lsb=float(np.mean(diff <= scale * (1 + LSB_EPSILON))) if scale else None,
    )


def _limit_checks(
    name: str,
    m: OutputMetrics,
    tol: Tolerance,
    fallback: Tolerance | None = None,
    quantization_snr: float | None = None,
) -> list[Check]:
    if m.max_lsb is None and fallback is not None and _in_lsb(tol):
        # LSB limits need the output's scale. An output the quantizer left in float
        # (no dequantize feeds it) still comes out of quantized layers, whose
        # rounding it carries: it passes within the float limits, else by the same
        # margin over the model's quantization SNR as a quantized output.
        margin = tol.snr_margin_db
        tol = dataclasses.replace(
            fallback, min_top1=tol.min_top1, min_top5=tol.min_top5, min_cosine=tol.min_cosine
        )
        if margin is not None and quantization_snr is not None and tol.atol is not None:
            return [_float_margin_check(name, m, tol, margin, quantization_snr)] + [
                c for c in _limit_checks(name, m, tol.replace(atol=None, rtol=None))
            ]
    checks: list[Check] = []
    if tol.atol is not None:
        rtol = tol.rtol or 0.0
        limit = f"{tol.atol:g}" + (f" + {rtol:g}*|ref|" if rtol else "")
        checks.append(Check(name, "max_abs_err", m.max_abs, limit, m.max_excess <= tol.atol))
    if tol.max_lsb is not None and m.max_lsb is not None:
        # Outputs are dequantized in float32: (q - zp) * scale rounds each value to
        # 2^-24 of itself, and |q - zp| <= 255 steps, so a difference of exactly
        # one step measures 1 +- 255 * 2 * 2^-24 ~ 1 +- 3e-5 LSB (seen: 1.0000075
        # on the genuine runner). 1e-4 covers that and no real extra step.
        checks.append(
            Check(
                name,
                "max_err_lsb",
                m.max_lsb,
                f"{tol.max_lsb:g}",
                m.max_lsb <= tol.max_lsb + LSB_EPSILON,
            )
        )
    if tol.snr_margin_db is not None and m.max_lsb is not None:
        checks.append(_margin_check(name, m, tol, quantization_snr))
    if tol.max_mean_lsb is not None and m.mean_lsb is not None:
        checks.append(
            Check(name, "mean_err_lsb", m.mean_lsb, f"{tol.max_mean_lsb:g}",
                  m.mean_lsb <= tol.max_mean_lsb + LSB_EPSILON)
        )  # fmt: skip
    if tol.max_bias_lsb is not None and m.bias_lsb is not None:
        checks.append(
            Check(name, "bias_lsb", m.bias_lsb, f"within +-{tol.max_bias_lsb:g}",
                  abs(m.bias_lsb) <= tol.max_bias_lsb + LSB_EPSILON)
        )  # fmt: skip
    if tol.min_snr_db is not None:
        checks.append(
            Check(name, "snr_db", m.snr_db, f">= {tol.min_snr_db:g}", m.snr_db >= tol.min_snr_db)
        )
    if tol.min_cosine is not None:
        checks.append(
            Check(name, "cosine", m.cosine, f">= {tol.min_cosine:g}", m.cosine >= tol.min_cosine)
        )
    if tol.min_top1 is not None and m.top1 is not None:
        checks.append(Check(name, "top1", m.top1, f">= {tol.min_top1:g}", m.top1 >= tol.min_top1))
    if tol.min_top5 is not None and m.top5 is not None:
        checks.append(Check(name, "top5", m.top5, f">= {tol.min_top5:g}", m.top5 >= tol.min_top5))
    return checks


def _float_margin_check(
    name: str, m: OutputMetrics, tol: Tolerance, margin: float, quantization_snr: float
) -> Check:
    """A float output of a quantized program: within ``atol + rtol*|ref|``, or its SNR
    against fake-quant ``margin`` dB above the model's quantization SNR."""
    atol, rtol = tol.atol or 0.0, tol.rtol or 0.0
    within = m.max_excess <= atol
    above = m.snr_db - quantization_snr
    bound = f"{atol:g}" + (f" + {rtol:g}*|ref|" if rtol else "")
    limit = f">= {margin:g} (or max abs error <= {bound})"
    return Check(name, "snr_above_quantization_db", above, limit, within or above >= margin)


def _in_lsb(tol: Tolerance) -> bool:
    """True when ``tol`` limits an output in units of its quantization scale."""
    return any(
        v is not None for v in (tol.max_lsb, tol.snr_margin_db, tol.max_mean_lsb, tol.max_bias_lsb)
    )


def _margin_check(
    name: str, m: OutputMetrics, tol: Tolerance, quantization_snr: float | None
) -> Check:
    """The board's SNR against fake-quant, above the model's quantization SNR by
    ``snr_margin_db``, unless every element is within ``rounding_lsb`` (or within a
    ``max_lsb`` the test set: that cap is then the whole rule, as it always was)."""
    rounding = max(tol.rounding_lsb or 0.0, tol.max_lsb or 0.0)
    margin = tol.snr_margin_db or 0.0
    within = m.max_lsb is not None and m.max_lsb <= rounding + LSB_EPSILON
    if quantization_snr is None:
        # No float reference to measure the model's quantization noise against:
        # only the rounding allowance applies.
        return Check(name, "max_err_lsb", m.max_lsb or 0.0, f"{rounding:g}", within)
    above = m.snr_db - quantization_snr
    limit = f">= {margin:g} (or max error <= {rounding:g} LSB)"
    return Check(name, "snr_above_quantization_db", above, limit, within or above >= margin)


def compare_outputs(
    actual: Sequence[Array],
    reference: Sequence[Array],
    tolerance: Tolerance,
    *,
    reference_name: str,
    scales: Sequence[float | None] | None = None,
    fallback: Tolerance | None = None,
    quantization_snr: Sequence[float] | None = None,
    judged: bool = True,
) -> Comparison:
    """Compare every output with its reference under ``tolerance``.

    Args:
        actual: the board's outputs.
        reference: the reference outputs, same order.
        tolerance: the limits to apply.
        reference_name: what the reference is, for reports.
        scales: per-output quantization scale (``None`` for float outputs).
        fallback: limits for outputs without a scale when ``tolerance`` is in LSB.
        quantization_snr: per output, the model's quantization SNR (fake-quant
            against float), for ``snr_margin_db``.
        judged: False for a comparison reported for its metrics only (a quantized
            program against float): it has no limits and passes.

    Returns:
        A :class:`Comparison`; structural problems (count, shape, dtype, NaN/Inf)
        are reported in ``problems`` rather than raised.
    """
    problems: list[str] = []
    if len(actual) != len(reference):
        problems.append(f"output count: board gave {len(actual)}, reference has {len(reference)}")
        return Comparison(reference_name, (), (), tuple(problems))
    metrics: list[OutputMetrics] = []
    checks: list[Check] = []
    for i, (a, r) in enumerate(zip(actual, reference, strict=True)):
        name = f"out[{i}]"
        a, r = np.asarray(a), np.asarray(r)
        if a.shape != r.shape:
            problems.append(f"{name} shape: board gave {list(a.shape)}, reference {list(r.shape)}")
            continue
        if a.dtype != r.dtype:
            problems.append(f"{name} dtype: board gave {a.dtype}, reference {r.dtype}")
            continue
        if a.dtype == np.bool_:
            mismatched = int(np.sum(a != r))
            checks.append(Check(name, "mismatched_elements", mismatched, "0", mismatched == 0))
            continue
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a) & np.isfinite(r)
            if bad.any():
                problems.append(
                    f"{name}: {int(np.isnan(a[bad]).sum())} NaN and {int(np.isinf(a[bad]).sum())} "
                    "Inf values where the reference is finite"
                )
                continue
            # Non-finite values where the reference has the same value (masked
            # logits at -inf, say) agree; compare the finite elements only.
            same_nonfinite = ~np.isfinite(r) & ((a == r) | (np.isnan(a) & np.isnan(r)))
            if (~np.isfinite(r) & ~same_nonfinite).any():
                problems.append(f"{name}: non-finite reference values differ from the board's")
                continue
            if same_nonfinite.any():
                a, r = a[~same_nonfinite], r[~same_nonfinite]
        scale = scales[i] if scales is not None and i < len(scales) else None
        rtol = tolerance.rtol if scale is not None or fallback is None else fallback.rtol
        m = output_metrics(i, a, r, scale=scale, rtol=rtol or 0.0)
        metrics.append(m)
        if not judged:
            continue
        yardstick = (
            quantization_snr[i] if quantization_snr is not None and i < len(quantization_snr)
            else None
        )  # fmt: skip
        output_checks = _limit_checks(name, m, tolerance, fallback, yardstick)
        if not output_checks:
            # A comparison that checks nothing must not pass.
            output_checks = [Check(name, "unchecked", "-", "a limit for this output", False)]
        checks.extend(output_checks)
    return Comparison(reference_name, tuple(metrics), tuple(checks), tuple(problems))


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_table(comparisons: Sequence[Comparison], *, only_failed: bool = False) -> str:
    """A compact text table: reference, output, metric, value, limit, status."""
    rows = [("reference", "output", "metric", "value", "limit", "")]
    for comparison in comparisons:
        for problem in comparison.problems:
            rows.append((comparison.reference, "-", "structure", problem, "-", "FAIL"))
        for check in comparison.checks:
            if only_failed and check.passed:
                continue
            rows.append(
                (
                    comparison.reference,
                    check.output,
                    check.metric,
                    _fmt(check.value),
                    check.limit,
                    "ok" if check.passed else "FAIL",
                )
            )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def compare_with_references(
    outputs: Sequence[Any],
    references: Mapping[str, Sequence[Any]],
    artifact: Artifact,
    tolerances: Tolerances,
    golden_source: str = "",
) -> tuple[Comparison, ...]:
    """Judge a board's outputs, apart from the model they come from.

    A quantized program gives (in this order):

    * ``fake_quant``: the board against the fake-quant reference, in LSB of each
      output's scale, with the rounding allowance and the margin over the model's
      quantization SNR (:class:`~et_hil.tolerance.Tolerance`);
    * ``eager_float``: the board against eager float, for its metrics only;
    * ``quantization``: the fake-quant reference against eager float, the model's
      quantization quality (the same on every board), judged only by limits the
      test or board file sets (``quantized_vs_float``);
    * ``golden``: the board against a bit-exact reference of what it is specified
      to compute, when ``references`` has one (:mod:`et_hil.verdict.golden`).

    A float program gives ``eager_float``, judged by the float limits.
    """
    if "fake_quant" not in references:
        return (
            compare_outputs(
                outputs, references["eager_float"], tolerances.main, reference_name="eager_float"
            ),
        )
    scales = artifact.output_scales
    quantization = compare_outputs(
        references["fake_quant"],
        references["eager_float"],
        tolerances.vs_float,
        reference_name="quantization",
        scales=scales,
        judged=tolerances.vs_float.checks_anything,
    )
    by_index = {m.index: m.snr_db for m in quantization.metrics}
    quantization_snr = [by_index.get(i, math.inf) for i in range(len(references["fake_quant"]))]
    comparisons = [
        compare_outputs(
            outputs,
            references["fake_quant"],
            tolerances.main,
            reference_name="fake_quant",
            scales=scales,
            fallback=tolerances.fallback,
            quantization_snr=quantization_snr,
        ),
        compare_outputs(
            outputs,
            references["eager_float"],
            Tolerance(),
            reference_name="eager_float",
            scales=scales,
            judged=False,
        ),
        quantization,
    ]
    if "golden" in references:
        golden = compare_outputs(
            outputs,
            references["golden"],
            tolerances.golden,
            reference_name="golden",
            scales=scales,
            fallback=tolerances.fallback,
        )
        comparisons.append(dataclasses.replace(golden, source=golden_source))
    return tuple(comparisons)
