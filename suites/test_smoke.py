"""Smoke suite: five small models, float and int8, on every selected board."""

from __future__ import annotations

import pytest
import torch
from models import SMOKE_MODELS, example_input


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)  # the same weights on every run: the cache key stays put
    return SMOKE_MODELS[name]().eval()


@pytest.mark.parametrize("name", list(SMOKE_MODELS))
def test_float(et_check, name):
    result = et_check(_model(name), example_input(name))
    # Float programs run the same math as eager PyTorch; rounding differences of a
    # few float32 ULPs give SNRs above 100 dB on host (seen: 118-141 dB), so 80 dB
    # leaves room while still catching any real difference.
    assert result.comparisons[0].metrics[0].snr_db > 80


@pytest.mark.parametrize("name", list(SMOKE_MODELS))
def test_int8(et_check, name):
    result = et_check(_model(name), example_input(name), quantize="int8")
    # The board agrees with the fake-quant reference (et_check judged that), and the
    # int8 model itself is close to float: these small models keep more than 20 dB
    # (seen: 34.8-43.7 dB on host and tosa).
    assert result.comparison("fake_quant").passed
    assert result.comparison("quantization").metrics[0].snr_db > 20
