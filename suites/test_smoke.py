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
    fake_quant, eager_float = result.comparisons
    assert fake_quant.reference == "fake_quant"
    assert eager_float.metrics[0].snr_db > 10
