"""Edge-case suite: integer and bool inputs, several and nested outputs, channels-last
tensors; float and int8, on every selected board."""

from __future__ import annotations

import pytest
from edge_models import EDGE_CASES, edge_case


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_float(et_check, name):
    model, inputs = edge_case(name)
    result = et_check(model, inputs)
    assert len(result.run.outputs) == len(result.comparisons[0].metrics)


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_int8(et_check, name):
    model, inputs = edge_case(name)
    result = et_check(model, inputs, quantize="int8")
    # Every output was held to a limit (LSB where quantized, float limits elsewhere).
    assert {c.output for c in result.comparisons[0].checks} == {
        f"out[{i}]" for i in range(len(result.run.outputs))
    }
