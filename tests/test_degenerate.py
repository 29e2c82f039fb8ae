"""A model made degenerate on purpose fails as ``degenerate``, naming the constant
output and the ranges, and starts no per-layer pass (issue: real networks)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

COLLAPSING = """
import torch
from torch import nn


class Collapsing(nn.Module):
    # One channel of the shared activation is huge (1000), the others tiny (~1e-3):
    # int8 quantization of that tensor (range 0..1000, a step of ~3.9) rounds the tiny
    # ones to zero, and the head reads only those. The float output varies with the
    # input; the fake-quant one is the head's zero bias everywhere.
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)
        with torch.no_grad():
            self.conv.weight[0].zero_()
            self.conv.bias[0] = 1000.0
            self.conv.weight[1:] *= 1e-3
            self.conv.bias[1:] = 0.0
            self.head.weight[:, 0] = 0.0
            self.head.weight[:, 1:] *= 1e3
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_collapsing(et_check):
    et_check(Collapsing().eval(), (torch.randn(1, 3, 8, 8),), quantize="int8")
"""


@pytest.mark.parametrize("board", ["host", "tosa"])
@pytest.mark.timeout(180)  # took 49 s (tosa)
def test_a_collapsed_int8_model_fails_as_degenerate(et_pytester, board):
    et_pytester.makepyfile(test_collapsing=COLLAPSING)
    result = et_pytester.runpytest(f"--et-board={board}")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "degenerate outputs: there is nothing to judge the board by" in text
    assert "out[0]: the fake-quant reference is constant (0) while the float output ranges" in text
    assert "per-layer table: not made (a degenerate output has no layer to blame" in text
    record = json.loads((et_pytester.path / "et-hil-results" / "results.jsonl").read_text())
    assert record["failure_class"] == "degenerate"
    assert "debug" not in record["checks"][0]  # no per-layer pass was made
