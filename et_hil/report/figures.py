"""The figures of one result record that baselines track and reports plot.

A figure is a named number of one test on one board. Names say where the number
comes from, and figures measured at different fidelities never share a name:

=============================  =========================================================
``snr_db@<reference>``         worst (lowest) SNR over the outputs, per reference
                               (``eager_float``, ``fake_quant``), at most
                               :data:`SNR_CEILING_DB`
``max_lsb@<reference>``        worst (largest) error in quantization steps
``top1@<reference>``           worst top-1 agreement (classifier outputs only)
``vela.cycles_total``          Vela's estimate of the whole inference (Ethos-U builds)
``vela.cycles_npu``            ... of the NPU's part
``vela.inference_time_s``      ... in seconds at the board's Vela clock
``vela.sram_bytes``            SRAM Vela plans for the command stream
``vela.off_chip_flash_bytes``  flash Vela plans for weights and commands
``pmu.<counter>@<fidelity>``   PMU figures of a run (``npu_active_cycles``, ``cpu_cycles``)
                               tagged with the run's fidelity: an ``fvp-cycles`` figure is
                               never compared with an ``fvp-fast`` or a host one
``pte_bytes``                  size of the ``.pte`` program
``planned_memory_bytes``       memory the program's planner asks for
``execute_s@<fidelity>``       wall time of one execution on the board
=============================  =========================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from et_hil.baseline_limits import HIGHER_IS_WORSE, PMU_FIGURES, base_name, higher_is_worse

if TYPE_CHECKING:
    from et_hil.report.record import Record
    from et_hil.report.record_parts import OutputMetricsRecord

__all__ = [
    "HIGHER_IS_WORSE",
    "PMU_FIGURES",
    "SNR_CEILING_DB",
    "base_name",
    "case_name",
    "figures_of",
    "higher_is_worse",
    "number",
]

# SNR above this is float32 rounding noise (or a bit-exact match, inf): the eager
# reference's last bits change with the CPU's vector unit and thread count, and so
# would a 140 dB figure. Every such SNR is this figure, on every machine.
SNR_CEILING_DB = 100.0

_VELA_FIGURES = (
    "cycles_total",
    "cycles_npu",
    "inference_time_s",
    "sram_bytes",
    "off_chip_flash_bytes",
)


def number(value: Any) -> float | None:
    """A JSON value as a float: results files write infinities as strings ('inf')."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _worst(values: Iterable[float | None], higher_is_worse: bool) -> float | None:
    found = [v for v in values if v is not None and not math.isnan(v)]
    if not found:
        return None
    return max(found) if higher_is_worse else min(found)


def _accuracy(record: Record) -> dict[str, float]:
    """The accuracy figures: per reference, the worst over outputs and checks."""
    per_reference: dict[str, list[OutputMetricsRecord]] = {}
    for comparison in record.comparisons or ():
        per_reference.setdefault(comparison.reference, []).extend(comparison.metrics)
    figures: dict[str, float] = {}
    for reference, metrics in sorted(per_reference.items()):
        for metric in ("snr_db", "max_lsb", "top1"):
            value = _worst((getattr(m, metric) for m in metrics), higher_is_worse(metric))
            if value is not None and metric == "snr_db":
                value = min(value, SNR_CEILING_DB)
            if value is not None:
                figures[f"{metric}@{reference}"] = value
    return figures


def figures_of(record: Record) -> dict[str, float]:
    """The figures of one results record (see the module's table), sorted by name.

    A figure a record cannot give (no Vela build, nothing ran, no PMU) is absent.
    """
    figures = _accuracy(record)
    if artifact := record.artifact:
        if vela := artifact.vela:
            for name in _VELA_FIGURES:
                if (value := number(getattr(vela, name))) is not None:
                    figures[f"vela.{name}"] = value
        for name in ("pte_bytes", "planned_memory_bytes"):
            if (value := number(getattr(artifact, name))) is not None:
                figures[name] = value
    fidelity = record.fidelity or "unknown"
    if record.ran and (value := record.seconds("execute_s")) is not None:
        figures[f"execute_s@{fidelity}"] = value
    pmu = record.pmu
    for name in PMU_FIGURES:
        if (value := pmu.get(name)) is not None:
            figures[f"pmu.{name}@{fidelity}"] = value
    return dict(sorted(figures.items()))


def case_name(test: str, board: str | None) -> str:
    """A test's node id without its board: the row a report's matrix gives it.

    ``suites/test_ops.py::test_op[tosa-conv]`` on ``tosa`` -> ``suites/test_ops.py::test_op[conv]``.
    """
    head, bracket, params = test.partition("[")
    if not bracket or not board:
        return test
    params = params[:-1] if params.endswith("]") else params
    if params == board:
        return head
    for cut in (f"{board}-", f"-{board}"):
        if params.startswith(cut) and cut.endswith("-"):
            return f"{head}[{params[len(cut) :]}]"
        if params.endswith(cut) and cut.startswith("-"):
            return f"{head}[{params[: -len(cut)]}]"
    if f"-{board}-" in params:
        return f"{head}[{params.replace(f'-{board}-', '-', 1)}]"
    return test
