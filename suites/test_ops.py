"""Operator suite: one quantized program per operator and shape, on every selected board.

Each case must be within 1 LSB of the fake-quant reference (the board default)
unless its tolerance below says otherwise, with the reason.
"""

from __future__ import annotations

import pytest
from ops import CASES, make_case

# Cases that need more than 1 LSB, and why.
LOOSER: dict[str, dict[str, float]] = {}


@pytest.mark.parametrize("name", list(CASES))
def test_op_int8(et_check, name):
    module, inputs = make_case(name)
    result = et_check(module, inputs, quantize="int8", tolerance=LOOSER.get(name))
    assert result.comparisons[0].reference == "fake_quant"
