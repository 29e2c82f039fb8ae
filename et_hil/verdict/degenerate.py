"""Degenerate outputs: a reference or a board output that carries no information.

A comparison with a constant tensor says nothing about a board: an int8 model
whose output quantized to one value (a deep network with untrained BatchNorm
statistics gives float outputs around 1e-9, and int8 makes them all zeros) agrees
with any board that also gives zeros, and "SNR 0 dB" says nothing of why. Such a
check fails as ``degenerate`` (:class:`et_hil.errors.FailureClass`), naming the
tensor and its ranges, before any board comparison is judged.

An output is degenerate when, with at least :data:`MIN_ELEMENTS` elements:

* **the float reference** is constant: the model computes nothing that varies
  with the input here, so no board can be told right from wrong;
* **the fake-quant reference** (quantized programs) is constant, or takes at most
  :data:`FEW_VALUES` distinct values, while the float output varies by more than
  that: the quantized model cannot represent this output (its scale is too coarse
  for the float output's spread, or an earlier layer collapsed);
* **the board's output** is constant while the reference varies: the board
  returned nothing usable (all zeros, one repeated value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_ELEMENTS = 8  # a 2-logit output may quantize to one value legitimately
FEW_VALUES = 2  # distinct quantized values that cannot describe a varying output
# The float output "varies" when it takes more distinct values than this.
VARYING_VALUES = 8

Array = npt.NDArray[Any]


def _distinct(x: Array) -> int:
    return int(np.unique(x).size)


def _range(x: Array) -> str:
    return f"[{float(np.min(x)):.4g}, {float(np.max(x)):.4g}]"


def _is_numeric(x: Array) -> bool:
    return x.dtype.kind in "fiu" and x.size >= MIN_ELEMENTS


def degenerate_outputs(
    board: Sequence[Any] | None,
    eager_float: Sequence[Any],
    fake_quant: Sequence[Any] | None = None,
    scales: Sequence[float | None] | None = None,
) -> list[str]:
    """What is degenerate among the outputs, one sentence each (empty: nothing).

    Args:
        board: the board's outputs (``None``: not run yet, references only).
        eager_float: the float model's outputs.
        fake_quant: the fake-quant reference's outputs (quantized programs).
        scales: each output's quantization scale (``None`` where float).
    """
    problems: list[str] = []
    for i, float_out in enumerate(eager_float):
        name = f"out[{i}]"
        ref = np.asarray(float_out)
        if not _is_numeric(ref):
            continue
        if _distinct(ref) == 1:
            problems.append(
                f"{name}: the float model's output is constant ({float(ref.flat[0]):.4g} in all "
                f"{ref.size} elements): the model computes nothing that varies here, so no "
                "board can be told right from wrong. Check the model's weights (untrained "
                "BatchNorm statistics?) and inputs"
            )
            continue
        scale = scales[i] if scales is not None and i < len(scales) else None
        if fake_quant is not None and i < len(fake_quant):
            fq = np.asarray(fake_quant[i])
            values = _distinct(fq)
            if values == 1 or (values <= FEW_VALUES < VARYING_VALUES < _distinct(ref)):
                what = (
                    f"constant ({float(fq.flat[0]):.4g})"
                    if values == 1
                    else f"only {values} distinct values {_range(fq)}"
                )
                step = f" (its scale, one step: {scale:.4g})" if scale else ""
                problems.append(
                    f"{name}: the fake-quant reference is {what} while the float output "
                    f"ranges {_range(ref)} (std {float(np.std(ref)):.4g}){step}: the quantized "
                    "model cannot represent this output. Calibrate with realistic inputs, or "
                    "check for layers whose activations collapse"
                )
                continue
        if board is not None and i < len(board):
            out = np.asarray(board[i])
            judged_by = np.asarray(fake_quant[i]) if fake_quant is not None else ref
            if _is_numeric(out) and _distinct(out) == 1 and _distinct(judged_by) > FEW_VALUES:
                problems.append(
                    f"{name}: the board's output is constant ({float(out.flat[0]):.4g} in all "
                    f"{out.size} elements) while the reference ranges {_range(judged_by)}"
                )
    return problems
