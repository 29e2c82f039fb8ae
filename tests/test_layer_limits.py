"""A quantized layer's local verdict in the per-layer table (``quantized_layer_within``):
hand-worked errors, from the mutation campaign's measurements on the real networks. Fast:
the slow end-to-end tables are in ``test_debug.py``."""

from __future__ import annotations

import dataclasses

import pytest

from et_hil.verdict.debug import LayerMetrics, quantized_layer_within


def _local_error(off: int, size: int, sign: int = 1) -> LayerMetrics:
    """A layer's local error with ``off`` of its ``size`` elements one step off, all in
    the direction ``sign`` (the other metrics do not enter the verdict)."""
    return LayerMetrics(
        max_abs=0.0, snr_db=40.0, cosine=1.0, max_lsb=1.0 if off else 0.0,
        off_share=off / size, bias_lsb=sign * off / size,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("off", "size", "within"),
    [
        # the worst correct layer the mutation campaign measured: 1.6% off (1 of 64)
        (1, 64, True),
        (16, 1000, True),  # 1.6% of a larger tensor: bias 0.016
        # a requantize fault on tosa: 44% of the elements +1 (the positive activations),
        # bias +0.44, as measured at MobileNetV1's early layer: inside the old 0.5 limits
        (8110, 18432, False),
        # a 10-logit output with 3 flips the same way: bias 0.3 by chance, too few to judge
        (3, 10, True),
        (16, 40, False),  # 16 of 40 one way: bias 0.4, enough elements to call it an offset
        (600, 1000, False),  # more than half the elements off
    ],
)
def test_a_layer_off_one_way_diverges_once_enough_elements_are_off(
    off: int, size: int, within: bool
) -> None:
    assert quantized_layer_within(_local_error(off, size), size) is within
    assert quantized_layer_within(_local_error(off, size, sign=-1), size) is within


def test_a_layer_beyond_its_lsb_limit_diverges_however_few_elements() -> None:
    error = dataclasses.replace(_local_error(1, 1000), max_lsb=2.0)
    assert not quantized_layer_within(error, 1000)
    assert quantized_layer_within(error, 1000, max_lsb=2.0)
