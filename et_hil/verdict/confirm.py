"""Confirming, layer by layer, outputs that differ from fake-quant by rounding only.

At the outputs a broken layer can look exactly like rounding. A real network's
logits are coarse against its output scale: in the mutation campaign a layer with
its weights x1.25, an output channel's sign flipped or a requantization one step
off moved every output of ResNet-18 (200 logits), the anomaly autoencoder or DS-CNN
by at most 1 LSB, which the rounding allowance passes (26 of 96 faults that changed
an output on host and tosa). Boards whose integer arithmetic legitimately differs
from fake-quant's float32 (TOSA, CMSIS-NN) give the same 1 LSB on correct layers, so
no limit on the outputs alone tells the two apart.

A layer's *own* error does (:mod:`et_hil.verdict.debug`): fed the board's inputs to
it, a correct layer is within 1 LSB with few elements a step off and no bias, while
a broken layer shows its error in thousands of elements. So when a quantized
program's outputs differ from fake-quant but pass only by the rounding allowance,
the per-layer pass decides: a layer that diverges on its own fails the check, named;
none, and the differences are confirmed as rounding. Outputs equal to fake-quant
(host and the portable kernels are bit-exact on every real model measured), or equal
to a golden reference (what the board is specified to compute), need no pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from et_hil.verdict.compare import LSB_EPSILON, Check, Comparison

if TYPE_CHECKING:
    from et_hil.tolerance import Tolerances

REFERENCE = "layers"  # the comparison's name in tables and records


class LayerError(Protocol):
    """A layer's error in LSB (:class:`et_hil.verdict.debug.LayerMetrics`)."""

    @property
    def max_lsb(self) -> float | None: ...
    @property
    def off_share(self) -> float | None: ...
    @property
    def bias_lsb(self) -> float | None: ...


class LayerVerdict(Protocol):
    """One row of a per-layer table (:class:`et_hil.verdict.debug.LayerRow`)."""

    @property
    def index(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def within(self) -> bool | None: ...
    @property
    def local(self) -> LayerError | None: ...
    @property
    def vs_fake_quant(self) -> LayerError | None: ...


class LayerTable(Protocol):
    """What the confirmation reads of a per-layer table
    (:class:`et_hil.verdict.debug.DivergenceReport`, which the pass makes: the
    verdict stage's check does not import it)."""

    @property
    def rows(self) -> Sequence[LayerVerdict]: ...
    @property
    def first_divergent(self) -> LayerVerdict | None: ...
    @property
    def strategy(self) -> str: ...
    @property
    def limit(self) -> str: ...


def needs_confirmation(comparisons: Sequence[Comparison], tolerances: Tolerances) -> str | None:
    """Why a passed check's outputs need the per-layer pass, or ``None``.

    They need it when the board's outputs differ from fake-quant (a quantized output
    by a step or more, a float output beyond the float limits) and no golden
    reference vouched for them.
    """
    by_name = {c.reference: c for c in comparisons}
    fake_quant = by_name.get("fake_quant")
    if fake_quant is None or not fake_quant.passed:
        return None
    golden = by_name.get("golden")
    if golden is not None and golden.metrics and golden.passed:
        return None  # the board computes what it is specified to: its rounding is right
    fallback = tolerances.fallback
    atol = fallback.atol if fallback.atol is not None else 0.0
    for m in fake_quant.metrics:
        if m.max_lsb is not None:
            if m.max_lsb > LSB_EPSILON:
                return (
                    f"out[{m.index}] differs from fake-quant by up to {m.max_lsb:.3g} LSB, "
                    "within the rounding allowance"
                )
        elif m.max_excess > atol:
            return (
                f"out[{m.index}] differs from fake-quant by up to {m.max_abs:.3g} "
                f"(SNR {m.snr_db:.1f} dB), within the margin rounding is allowed"
            )
    return None


def layers_comparison(report: LayerTable, reason: str) -> Comparison:
    """The per-layer pass as a comparison of the check: one failing row naming the
    first layer that diverges on its own, or one passing row saying none does."""
    first = report.first_divergent
    measured = [r for r in report.rows if r.within is not None]
    source = f"per-layer pass ({reason}); {report.strategy}, {len(measured)} layers measured"
    if not measured:
        return not_confirmed(reason, "the per-layer pass measured no layer")
    if first is None:
        check = Check(f"{len(measured)} layers", "layers_diverging", 0, "0", True)
        return Comparison(REFERENCE, (), (check,), source=source)
    error = first.local or first.vs_fake_quant
    value = "?" if error is None else _error_text(error.max_lsb, error.off_share, error.bias_lsb)
    check = Check(f"#{first.index} {first.name}", "error_on_its_own", value, report.limit, False)
    return Comparison(REFERENCE, (), (check,), source=source)


def not_confirmed(reason: str, why: str) -> Comparison:
    """The per-layer pass could not be made: the outputs' own verdict stands, and the
    record says the differences were not confirmed, and why."""
    return Comparison(REFERENCE, (), (), source=f"not confirmed ({reason}): {why}")


def _error_text(max_lsb: float | None, off_share: float | None, bias: float | None) -> str:
    parts = [f"{max_lsb:g} LSB" if max_lsb is not None else "?"]
    if off_share is not None:
        parts.append(f"{off_share:.0%} off")
    if bias is not None:
        parts.append(f"bias {bias:+.2f}")
    return ", ".join(parts)
