"""Operator suite: one quantized program per operator and shape, on every selected board.

Each case must be within 1 LSB of the fake-quant reference (the board default)
unless its tolerance below says otherwise, with the reason.
"""

from __future__ import annotations

import pytest
from ops import CASES, make_case

# Cases that need more than 1 LSB, and why.
LOOSER: dict[str, dict[str, float]] = {}


# The skip below says it for the cases where it is expected; the warning would only repeat it
# (it stays for a test of your own that asks for int8 and gets a float program).
# (A filter's fields are separated by colons: the message's own colon is matched by ".".)
@pytest.mark.filterwarnings(
    r"ignore:model '.*'. quantize='int8' requested, but the .* quantizer found nothing to "
    "quantize:UserWarning"
)
@pytest.mark.parametrize("name", list(CASES))
def test_op_int8(et_check, name):
    module, inputs = make_case(name)
    result = et_check(module, inputs, quantize="int8", tolerance=LOOSER.get(name))
    if not result.artifact.quantized:
        # The target's quantizer has no int8 pattern for this op (the portable
        # target's XNNPACK quantizer leaves relu, pooling, softmax... in float): the
        # program was checked as float above, but there is no int8 case to check.
        pytest.skip(
            f"{result.artifact.metadata['target']} quantizer leaves '{name}' in float "
            "(checked as a float program against eager)"
        )
    fake_quant = result.comparisons[0]
    assert fake_quant.reference == "fake_quant"
    # Every output was held to a limit: LSB where the output is quantized, the
    # float limits where the quantizer left it in float (see the record's checks).
    assert {c.output for c in fake_quant.checks} == {
        f"out[{i}]" for i in range(len(result.run.outputs))
    }


A16W8_CASES = ["conv2d_3x3_padded", "linear_2d", "sigmoid", "softmax_last", "add_4d"]


@pytest.mark.parametrize("name", A16W8_CASES)
def test_op_a16w8(et_check, board, name):
    # int16 activations, int8 weights: an Arm quantizer configuration (TOSA with the
    # int16 extension, Ethos-U). The portable target's quantizer has no such scheme;
    # nor has the Cortex-M targets' (upstream's Cortex-M quantizer takes int16
    # activations for a few elementwise operators only, not for convolutions and
    # linears, so the harness builds these targets int8 only).
    target = board.spec.target
    if target == "portable" or target.startswith("cortex-m"):
        pytest.skip(f"a16w8 needs an Arm target (tosa-int, ethos-u*); {target} quantizes int8 only")
    module, inputs = make_case(name)
    result = et_check(module, inputs, quantize="a16w8")
    # 1 LSB of an int16 scale: far tighter than int8 (seen: 48-83 dB against eager float).
    assert result.comparisons[1].metrics[0].snr_db > 40
