"""The verdict on a quantized program, with hand-worked numbers: the rounding
allowance, the margin over the model's own quantization noise, the distribution
metrics, degenerate outputs, and which failure class a check gets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from et_hil.tolerance import Tolerance
from et_hil.verdict.compare import compare_outputs, output_metrics
from et_hil.verdict.degenerate import degenerate_outputs

DEFAULT = Tolerance(rounding_lsb=1.0, snr_margin_db=10.0)


def test_distribution_metrics_in_lsb():
    # scale 0.5: errors of 0, +1, -1, +2 LSB (0, 0.5, -0.5, 1.0)
    reference = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    actual = reference + np.array([[0.0, 0.5, -0.5, 1.0]], dtype=np.float32)
    m = output_metrics(0, actual, reference, scale=0.5)
    assert m.max_lsb == pytest.approx(2.0)
    assert m.mean_lsb == pytest.approx((0 + 1 + 1 + 2) / 4)
    assert m.bias_lsb == pytest.approx((0 + 1 - 1 + 2) / 4)
    assert m.within_1lsb == pytest.approx(3 / 4)


def _logits(errors_lsb: list[float], scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    reference = np.array([[2.0, -1.0, 0.5, 3.0, -2.5, 1.5, 0.0, -0.5]], dtype=np.float32)
    return reference + np.array([errors_lsb], dtype=np.float32) * scale, reference


def test_errors_within_one_lsb_pass_whatever_the_snr():
    actual, reference = _logits([1, -1, 0, 0, 1, 0, 0, 0])
    # a model with no quantization noise at all (SNR inf) still allows rounding
    c = compare_outputs(
        [actual], [reference], DEFAULT, reference_name="fake_quant", scales=[0.1],
        quantization_snr=[math.inf],
    )  # fmt: skip
    assert c.passed, c.checks


def test_beyond_rounding_the_board_must_stay_10_db_under_the_quantization_noise():
    # Reference energy: 4+1+0.25+9+6.25+2.25+0+0.25 = 23.0 (float units).
    # A 2-LSB error (0.2) on one element: noise 0.04, SNR = 10*log10(23/0.04) = 27.6 dB.
    actual, reference = _logits([2, 0, 0, 0, 0, 0, 0, 0])
    snr = 10 * math.log10(23.0 / 0.04)

    def judged(quantization_snr: float) -> bool:
        return compare_outputs(
            [actual], [reference], DEFAULT, reference_name="fake_quant", scales=[0.1],
            quantization_snr=[quantization_snr],
        ).passed  # fmt: skip

    # the model's int8 version is 17 dB from float: the board's extra error is
    # 10.6 dB below that -> within the margin
    assert judged(17.0)
    # a model quantized more finely (20 dB): the same error is only 7.6 dB below
    assert not judged(20.0)
    check = compare_outputs(
        [actual], [reference], DEFAULT, reference_name="fake_quant", scales=[0.1],
        quantization_snr=[20.0],
    ).failures()[0]  # fmt: skip
    assert check.metric == "snr_above_quantization_db"
    assert check.value == pytest.approx(snr - 20.0)
    assert check.limit == ">= 10 (or max error <= 1 LSB)"


def test_a_max_lsb_the_test_sets_is_the_whole_rule():
    actual, reference = _logits([3, 0, 0, 0, 0, 0, 0, 0])
    capped = Tolerance(max_lsb=3.0, rounding_lsb=1.0, snr_margin_db=10.0)
    c = compare_outputs(
        [actual], [reference], capped, reference_name="fake_quant", scales=[0.1],
        quantization_snr=[60.0],
    )  # fmt: skip
    assert c.passed  # within the cap, whatever the margin says
    tighter = compare_outputs(
        [actual], [reference], capped.replace(max_lsb=2.0), reference_name="fake_quant",
        scales=[0.1], quantization_snr=[0.0],
    )  # fmt: skip
    assert [f.metric for f in tighter.failures()] == ["max_err_lsb"]


def test_bias_and_mean_limits():
    actual, reference = _logits([1, 1, 1, 1, 1, 1, 1, 0])  # a wrong offset: +7/8 LSB
    tol = Tolerance(max_bias_lsb=0.5, max_mean_lsb=1.0)
    c = compare_outputs([actual], [reference], tol, reference_name="fake_quant", scales=[0.1])
    assert [f.metric for f in c.failures()] == ["bias_lsb"]
    assert c.failures()[0].value == pytest.approx(7 / 8, abs=1e-5)


def test_an_unjudged_comparison_reports_metrics_and_passes():
    actual, reference = _logits([30, -20, 0, 0, 0, 0, 0, 0])
    c = compare_outputs(
        [actual], [reference], Tolerance(), reference_name="eager_float", judged=False
    )
    assert c.passed
    assert not c.checks
    assert c.metrics[0].max_abs == pytest.approx(3.0, rel=1e-5)


# ------------------------------------------------------------------ degenerate


def test_a_constant_float_output_is_degenerate():
    problems = degenerate_outputs(None, [np.full((1, 10), 1e-9, dtype=np.float32)])
    assert len(problems) == 1
    assert "float model's output is constant (1e-09 in all 10 elements)" in problems[0]


def test_a_fake_quant_output_that_collapsed_is_degenerate_with_its_ranges():
    # the float output varies around 1e-9; int8 makes it one value (the zero point)
    rng = np.random.default_rng(0)
    eager = (rng.standard_normal((1, 16)) * 1e-9).astype(np.float32)
    fake_quant = np.zeros((1, 16), dtype=np.float32)
    (problem,) = degenerate_outputs(None, [eager], [fake_quant], [0.0039])
    assert problem.startswith("out[0]: the fake-quant reference is constant (0)")
    assert f"ranges [{eager.min():.4g}, {eager.max():.4g}]" in problem
    assert "one step: 0.0039" in problem


def test_few_quantized_values_of_a_varying_output_are_degenerate():
    eager = np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32)
    two_values = np.where(eager > 0, 0.5, -0.5).astype(np.float32)
    (problem,) = degenerate_outputs(None, [eager], [two_values], [0.5])
    assert "only 2 distinct values [-0.5, 0.5]" in problem


def test_a_board_output_stuck_at_one_value_is_degenerate():
    eager = np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32)
    (problem,) = degenerate_outputs([np.zeros_like(eager)], [eager], [eager], [0.01])
    assert problem.startswith("out[0]: the board's output is constant (0 in all 32 elements)")


@pytest.mark.parametrize(
    "outputs",
    [
        # two logits may quantize to one value legitimately: too small to judge
        [np.array([[0.5, 0.5001]], dtype=np.float32)],
        # integer outputs (argmax) and booleans are left to the comparison
        [np.zeros((1, 16), dtype=np.bool_)],
    ],
)
def test_small_and_non_numeric_outputs_are_not_judged_degenerate(outputs):
    assert degenerate_outputs(outputs, outputs, outputs) == []


def test_a_healthy_output_is_not_degenerate():
    rng = np.random.default_rng(1)
    eager = rng.standard_normal((1, 1000)).astype(np.float32)
    scale = float(np.abs(eager).max() / 127)
    fake_quant = np.round(eager / scale) * scale
    assert degenerate_outputs([fake_quant], [eager], [fake_quant], [scale]) == []


def test_a_float_output_of_a_quantized_program_gets_the_margin_rule_too():
    # Wav2Letter on host leaves its last layer's output in float (no scale), after
    # quantized layers whose rounding it carries: a rounding flip there gave 0.044
    # max abs error against fake-quant, far above the float atol. By hand:
    reference = np.array([[2.0, -1.0, 0.5, 3.0, -2.5, 1.5, 0.0, -0.5]], dtype=np.float32)
    actual = reference.copy()
    actual[0, 0] += 0.01  # noise 1e-4 against energy 23.0: SNR 53.6 dB
    float_limits = Tolerance(atol=1e-5, rtol=1e-4)

    def judged(quantization_snr: float) -> list[str]:
        c = compare_outputs(
            [actual], [reference], DEFAULT, reference_name="fake_quant", scales=[None],
            fallback=float_limits, quantization_snr=[quantization_snr],
        )  # fmt: skip
        return [f.metric for f in c.failures()]

    assert judged(40.0) == []  # 13.6 dB above the model's quantization noise
    assert judged(50.0) == ["snr_above_quantization_db"]  # only 3.6 dB above
