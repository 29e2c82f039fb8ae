"""Tests of et_hil.verdict.compare: metrics against hand-worked values, then verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from et_hil.tolerance import Tolerance
from et_hil.verdict.compare import (
    Check,
    Comparison,
    compare_outputs,
    cosine_similarity,
    format_table,
    output_metrics,
    snr_db,
    topk_agreement,
)

# The running example of this file:
#   reference [1, 2, 3, 4], actual [1, 2, 3, 5]
#   diff = [0, 0, 0, 1]: max_abs = 1, mean_abs = 1/4 = 0.25
#   noise = 0 + 0 + 0 + 1^2 = 1, signal = 1 + 4 + 9 + 16 = 30
#   SNR = 10 * log10(30 / 1) = 14.7712 dB
#   cosine = (1*1 + 2*2 + 3*3 + 5*4) / (sqrt(1+4+9+25) * sqrt(1+4+9+16))
#          = 34 / sqrt(39 * 30) = 34 / sqrt(1170) = 0.993999
REF = np.array([1.0, 2.0, 3.0, 4.0])
ACT = np.array([1.0, 2.0, 3.0, 5.0])
SNR_EXAMPLE = 14.771212547196624
COSINE_EXAMPLE = 0.9939990885479664

# A 3x6 classifier-like example for top-k agreement.
#   row 0: reference argmax 1; actual argmax 1                       -> top1 hit, top5 hit
#   row 1: reference argmax 4; actual ranks 5 (0.8), 4 (0.2), 0,1,2  -> top1 miss, top5 hit
#   row 2: reference argmax 0; actual ranks 1,2,3,4,5 then 0 (0.0)   -> top1 miss, top5 miss
#   top1 = 1/3, top5 = 2/3
TOPK_REF = np.array(
    [
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.8, 0.2],
        [0.5, 0.0, 0.0, 0.0, 0.0, 0.1],
    ]
)
TOPK_ACT = np.array(
    [
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.2, 0.8],
        [0.0, 0.6, 0.5, 0.4, 0.3, 0.2],
    ]
)


def _compare(actual, reference, tolerance, **kwargs) -> Comparison:
    return compare_outputs(
        [np.asarray(a) for a in actual],
        [np.asarray(r) for r in reference],
        tolerance,
        reference_name="eager_float",
        **kwargs,
    )


def _only_check(comparison: Comparison, metric: str) -> Check:
    found = [c for c in comparison.checks if c.metric == metric]
    assert len(found) == 1, comparison.checks
    return found[0]


# ---------------------------------------------------------------- snr_db


def test_snr_db_hand_worked() -> None:
    # noise = 1, signal = 30: 10*log10(30) = 14.771 dB
    assert snr_db(ACT, REF) == pytest.approx(SNR_EXAMPLE)
    assert snr_db(ACT, REF) == pytest.approx(14.7712, abs=1e-4)


def test_snr_db_halved_noise_amplitude_adds_6_db() -> None:
    # actual [1, 2, 3, 4.5]: noise = 0.5^2 = 0.25, SNR = 10*log10(30/0.25) = 10*log10(120)
    assert snr_db(np.array([1.0, 2.0, 3.0, 4.5]), REF) == pytest.approx(10 * math.log10(120))


def test_snr_db_equal_arrays_is_inf() -> None:
    # noise = 0 -> inf, regardless of the signal
    assert snr_db(REF.copy(), REF) == math.inf
    assert snr_db(np.zeros(3), np.zeros(3)) == math.inf


def test_snr_db_zero_reference_nonzero_actual_is_minus_inf() -> None:
    # signal = 0, noise = 1 + 0 + 4 = 5 > 0 -> -inf
    assert snr_db(np.array([1.0, 0.0, -2.0]), np.zeros(3)) == -math.inf


def test_snr_db_ignores_shape_and_integer_dtype() -> None:
    # Same numbers as the running example, as 2x2 int8: still 10*log10(30)
    ref = REF.astype(np.int8).reshape(2, 2)
    act = ACT.astype(np.int8).reshape(2, 2)
    assert snr_db(act, ref) == pytest.approx(SNR_EXAMPLE)


# ---------------------------------------------------------------- cosine


@pytest.mark.parametrize(
    ("actual", "reference", "expected"),
    [
        # 34 / sqrt(39 * 30) (the running example)
        pytest.param(ACT, REF, COSINE_EXAMPLE, id="running-example"),
        # [1, 0] . [1, 1] = 1; |a| = 1, |r| = sqrt(2): 1/sqrt(2)
        pytest.param([1.0, 0.0], [1.0, 1.0], 1 / math.sqrt(2), id="45-degrees"),
        # dot = 0
        pytest.param([1.0, 0.0], [0.0, 1.0], 0.0, id="orthogonal"),
        # a = -r: dot = -|r|^2
        pytest.param([-1.0, -2.0], [1.0, 2.0], -1.0, id="opposite"),
        # a = 3r: scale does not matter
        pytest.param([3.0, 6.0, 9.0], [1.0, 2.0, 3.0], 1.0, id="scaled-copy"),
        # both all zeros: defined as 1.0
        pytest.param([0.0, 0.0], [0.0, 0.0], 1.0, id="both-zero"),
        # one all zeros: norm product 0 but not both zero -> 0.0
        pytest.param([0.0, 0.0], [1.0, 2.0], 0.0, id="actual-zero"),
        pytest.param([1.0, 2.0], [0.0, 0.0], 0.0, id="reference-zero"),
    ],
)
def test_cosine_similarity(actual, reference, expected) -> None:
    got = cosine_similarity(np.asarray(actual), np.asarray(reference))
    assert got == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- top-k


def test_topk_agreement_top1_hand_worked() -> None:
    # only row 0 has the same argmax: 1/3
    assert topk_agreement(TOPK_ACT, TOPK_REF, 1) == pytest.approx(1 / 3)


def test_topk_agreement_top5_hand_worked() -> None:
    # rows 0 and 1 have the reference argmax among the actual top 5; row 2 ranks it 6th
    assert topk_agreement(TOPK_ACT, TOPK_REF, 5) == pytest.approx(2 / 3)


def test_topk_agreement_all_classes_always_hits() -> None:
    # k = number of classes: every class is in the top k
    assert topk_agreement(TOPK_ACT, TOPK_REF, 6) == 1.0


# ---------------------------------------------------------------- output_metrics


def test_output_metrics_hand_worked() -> None:
    # diff = [0, 0, 0, 1]; scale 0.5 -> max_lsb = 1 / 0.5 = 2 LSB
    # rtol 0.1: excess = diff - 0.1*|ref| = [-0.1, -0.2, -0.3, 1 - 0.4] -> max 0.6
    m = output_metrics(3, ACT, REF, scale=0.5, rtol=0.1)
    assert m.index == 3
    assert m.max_abs == pytest.approx(1.0)
    assert m.mean_abs == pytest.approx(0.25)
    assert m.max_lsb == pytest.approx(2.0)
    assert m.snr_db == pytest.approx(SNR_EXAMPLE)
    assert m.cosine == pytest.approx(COSINE_EXAMPLE)
    assert m.max_excess == pytest.approx(0.6)
    # 1-D output: not classifier-like
    assert m.top1 is None
    assert m.top5 is None


def test_output_metrics_without_scale_or_rtol() -> None:
    # no scale: no LSB metric; rtol 0: max_excess equals max_abs
    m = output_metrics(0, ACT, REF)
    assert m.max_lsb is None
    assert m.max_excess == pytest.approx(m.max_abs)


def test_output_metrics_classifier_like_gets_topk() -> None:
    m = output_metrics(0, TOPK_ACT, TOPK_REF)
    assert m.top1 == pytest.approx(1 / 3)
    assert m.top5 == pytest.approx(2 / 3)


def test_output_metrics_fewer_than_five_classes_has_no_top5() -> None:
    # [2, 4] float: top1 is computed (row 0 argmax 3 vs 3, row 1 argmax 0 vs 1 -> 1/2),
    # top5 is not (fewer than 5 classes)
    ref = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    act = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    m = output_metrics(0, act, ref)
    assert m.top1 == pytest.approx(0.5)
    assert m.top5 is None


def test_output_metrics_as_dict_turns_infinities_into_strings() -> None:
    d = output_metrics(0, REF.copy(), REF).as_dict()
    assert d["snr_db"] == "inf"
    assert d["max_abs"] == 0.0
    assert d["cosine"] == pytest.approx(1.0)


# ---------------------------------------------------------------- compare_outputs: limits


def test_compare_float_passes_within_atol() -> None:
    # every element off by 1e-6 <= atol 1e-5
    reference = np.linspace(-1, 1, 16, dtype=np.float32)
    actual = reference + np.float32(1e-6)
    comparison = _compare([actual], [reference], Tolerance(atol=1e-5))
    assert comparison.passed
    assert comparison.problems == ()
    assert comparison.failures() == []
    assert [c.metric for c in comparison.checks] == ["max_abs_err"]
    assert comparison.reference == "eager_float"
    assert len(comparison.metrics) == 1


def test_compare_atol_failure_names_metric_value_and_limit() -> None:
    # diff = [0, 0, 0, 0.5]: max_abs 0.5 > atol 0.1
    comparison = _compare([[1.0, 2.0, 3.0, 4.5]], [REF], Tolerance(atol=0.1))
    assert not comparison.passed
    [failure] = comparison.failures()
    assert failure.output == "out[0]"
    assert failure.metric == "max_abs_err"
    assert failure.value == pytest.approx(0.5)
    assert failure.limit == "0.1"
    assert failure.passed is False


def test_compare_rtol_allows_error_proportional_to_reference() -> None:
    # reference [100, 200], actual [100.5, 200.5]: diff 0.5 everywhere
    #   atol 0.1 alone: 0.5 > 0.1 -> fail
    #   atol 0.1 + rtol 0.01: excess = 0.5 - [1, 2] = [-0.5, -1.5], max -0.5 <= 0.1 -> pass
    reference = [np.array([100.0, 200.0])]
    actual = [np.array([100.5, 200.5])]
    strict = _compare(actual, reference, Tolerance(atol=0.1))
    relaxed = _compare(actual, reference, Tolerance(atol=0.1, rtol=0.01))
    assert not strict.passed
    assert relaxed.passed
    check = _only_check(relaxed, "max_abs_err")
    # the reported value stays the plain max |a - r|; the limit shows the rtol term
    assert check.value == pytest.approx(0.5)
    assert check.limit == "0.1 + 0.01*|ref|"
    assert relaxed.metrics[0].max_excess == pytest.approx(-0.5)


def test_compare_rtol_too_small_still_fails() -> None:
    # rtol 0.001: excess = 0.5 - [0.1, 0.2] = [0.4, 0.3], max 0.4 > atol 0.1
    comparison = _compare([[100.5, 200.5]], [[100.0, 200.0]], Tolerance(atol=0.1, rtol=0.001))
    assert not comparison.passed
    assert comparison.metrics[0].max_excess == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("actual", "expected_lsb", "passed"),
    [
        # identical: 0 LSB
        pytest.param([0.0, 0.5, 1.0], 0.0, True, id="0-lsb"),
        # diff 0.5 / scale 0.5 = exactly 1 LSB: allowed
        pytest.param([0.0, 1.0, 1.0], 1.0, True, id="exactly-1-lsb"),
        # diff 0.75 / scale 0.5 = 1.5 LSB: over the limit
        pytest.param([0.0, 1.25, 1.0], 1.5, False, id="1.5-lsb"),
        # diff 1.0 / 0.5 = 2 LSB
        pytest.param([0.0, 0.5, 2.0], 2.0, False, id="2-lsb"),
    ],
)
def test_compare_quantized_max_lsb(actual, expected_lsb, passed) -> None:
    reference = [0.0, 0.5, 1.0]
    comparison = _compare([actual], [reference], Tolerance(max_lsb=1.0), scales=[0.5])
    check = _only_check(comparison, "max_err_lsb")
    assert check.value == pytest.approx(expected_lsb)
    assert check.limit == "1"
    assert check.passed is passed
    assert comparison.passed is passed


def test_compare_one_float32_step_just_over_one_lsb_passes() -> None:
    # float32(0.6) - float32(0.5) = 0.10000002384 in float64: with scale 0.1 one
    # quantization step measures 1.00000024 LSB. The check allows max_lsb + 1e-4.
    reference = np.float32([0.5])
    actual = np.float32([0.6])
    comparison = _compare([actual], [reference], Tolerance(max_lsb=1.0), scales=[0.1])
    check = _only_check(comparison, "max_err_lsb")
    assert check.value > 1.0
    assert check.passed


@pytest.mark.parametrize(
    ("diff", "passed"),
    [
        pytest.param(1.0 + 1e-7, True, id="1+1e-7-lsb-passes"),
        # seen on the genuine runner: one int8 step dequantized in float32 (-127 vs -126)
        pytest.param(1.0000075, True, id="1.0000075-lsb-passes"),
        pytest.param(1.0 + 1e-3, False, id="1+1e-3-lsb-fails"),
    ],
)
def test_compare_max_lsb_epsilon(diff, passed) -> None:
    # scale 1: the error in LSB is the difference itself; the slack is 1e-4 (float32
    # dequantization noise, see et_hil/verdict/compare.py)
    comparison = _compare([[diff]], [[0.0]], Tolerance(max_lsb=1.0), scales=[1.0])
    assert comparison.passed is passed


def test_output_without_scale_is_unchecked_and_fails_without_a_fallback() -> None:
    # scales [0.5, None]: out[0] gets an LSB check; out[1] has no scale and no
    # fallback, so nothing can be checked: that must fail, not pass silently.
    comparison = _compare(
        [[0.0], [50.0]], [[0.0], [0.0]], Tolerance(max_lsb=1.0), scales=[0.5, None]
    )
    assert [(c.output, c.metric) for c in comparison.checks] == [
        ("out[0]", "max_err_lsb"),
        ("out[1]", "unchecked"),
    ]
    assert comparison.metrics[1].max_lsb is None
    assert not comparison.passed


def test_output_without_scale_falls_back_to_float_limits() -> None:
    # out[1] is float in the program (the quantizer left it): held to atol 0.01.
    comparison = compare_outputs(
        [np.array([0.0], np.float32), np.array([50.0], np.float32)],
        [np.array([0.0], np.float32), np.array([0.0], np.float32)],
        Tolerance(max_lsb=1.0),
        reference_name="fake_quant",
        scales=[0.5, None],
        fallback=Tolerance(atol=0.01, rtol=0.0),
    )
    assert [(c.output, c.metric, c.passed) for c in comparison.checks] == [
        ("out[0]", "max_err_lsb", True),
        ("out[1]", "max_abs_err", False),  # |50 - 0| = 50 > 0.01
    ]


def test_compare_scales_shorter_than_outputs() -> None:
    # a missing scale means "not quantized", not an IndexError
    comparison = _compare([[0.0], [3.0]], [[0.0], [0.0]], Tolerance(max_lsb=1.0), scales=[1.0])
    assert [(c.output, c.metric) for c in comparison.checks] == [
        ("out[0]", "max_err_lsb"),
        ("out[1]", "unchecked"),
    ]


@pytest.mark.parametrize(
    ("min_snr", "passed"),
    [
        pytest.param(10.0, True, id="10dB-passes"),
        pytest.param(14.77, True, id="just-under-passes"),
        pytest.param(14.78, False, id="just-over-fails"),
        pytest.param(20.0, False, id="20dB-fails"),
    ],
)
def test_compare_min_snr_db(min_snr, passed) -> None:
    # running example: SNR = 10*log10(30) = 14.771 dB
    comparison = _compare([ACT], [REF], Tolerance(min_snr_db=min_snr))
    check = _only_check(comparison, "snr_db")
    assert check.value == pytest.approx(SNR_EXAMPLE)
    assert check.limit == f">= {min_snr:g}"
    assert check.passed is passed
    assert comparison.passed is passed


def test_compare_min_cosine_and_top1() -> None:
    # running example cosine 0.994 >= 0.99; top-k example top1 = 1/3 < 0.5
    comparison = _compare(
        [ACT, TOPK_ACT], [REF, TOPK_REF], Tolerance(min_cosine=0.99, min_top1=0.5)
    )
    by_metric = {(c.output, c.metric): c for c in comparison.checks}
    assert by_metric["out[0]", "cosine"].passed
    assert by_metric["out[0]", "cosine"].value == pytest.approx(COSINE_EXAMPLE)
    # the 1-D output gets no top1 check
    assert ("out[0]", "top1") not in by_metric
    top1 = by_metric["out[1]", "top1"]
    assert top1.value == pytest.approx(1 / 3)
    assert top1.limit == ">= 0.5"
    assert not top1.passed
    assert not comparison.passed


def test_compare_empty_tolerance_reports_metrics_and_fails_unchecked() -> None:
    comparison = _compare([ACT], [REF], Tolerance())
    assert [c.metric for c in comparison.checks] == ["unchecked"]
    assert comparison.metrics[0].snr_db == pytest.approx(SNR_EXAMPLE)
    assert not comparison.passed


# ---------------------------------------------------------------- compare_outputs: structure


def test_compare_output_count_mismatch() -> None:
    comparison = _compare([REF], [REF, REF], Tolerance(atol=1.0))
    assert comparison.problems == ("output count: board gave 1, reference has 2",)
    assert comparison.metrics == ()
    assert comparison.checks == ()
    assert not comparison.passed


def test_compare_shape_mismatch() -> None:
    comparison = _compare([REF.reshape(2, 2)], [REF], Tolerance(atol=1.0))
    assert comparison.problems == ("out[0] shape: board gave [2, 2], reference [4]",)
    assert comparison.metrics == ()
    assert not comparison.passed


def test_compare_dtype_mismatch() -> None:
    comparison = _compare([REF.astype(np.float32)], [REF.astype(np.float64)], Tolerance(atol=1.0))
    assert comparison.problems == ("out[0] dtype: board gave float32, reference float64",)
    assert not comparison.passed


def test_compare_structural_problem_in_one_output_keeps_checking_others() -> None:
    # out[0] has the wrong shape; out[1] is still compared (and passes)
    comparison = _compare([REF.reshape(2, 2), ACT], [REF, ACT], Tolerance(atol=0.0))
    assert len(comparison.problems) == 1
    assert comparison.problems[0].startswith("out[0] shape")
    assert [m.index for m in comparison.metrics] == [1]
    assert all(c.passed for c in comparison.checks)
    # a problem alone is enough to fail
    assert not comparison.passed


@pytest.mark.parametrize(
    ("actual", "message"),
    [
        pytest.param(
            [np.nan, 2.0, 3.0, 4.0],
            "out[0]: 1 NaN and 0 Inf values where the reference is finite",
            id="nan",
        ),
        pytest.param(
            [1.0, np.inf, -np.inf, 4.0],
            "out[0]: 0 NaN and 2 Inf values where the reference is finite",
            id="inf",
        ),
        pytest.param(
            [np.nan, np.inf, 3.0, 4.0],
            "out[0]: 1 NaN and 1 Inf values where the reference is finite",
            id="nan-and-inf",
        ),
    ],
)
def test_compare_non_finite_actual_is_a_problem(actual, message) -> None:
    # even with no limits at all, NaN/Inf where the reference is finite fails the comparison
    comparison = _compare([actual], [REF], Tolerance())
    assert comparison.problems == (message,)
    assert comparison.metrics == ()
    assert not comparison.passed


def test_compare_bool_outputs_count_mismatched_elements() -> None:
    # [T, F, T, F] vs [T, T, F, F]: elements 1 and 2 differ -> 2 mismatches
    reference = np.array([True, False, True, False])
    actual = np.array([True, True, False, False])
    comparison = _compare([actual], [reference], Tolerance(atol=100.0))
    [check] = comparison.checks
    assert check.metric == "mismatched_elements"
    assert check.value == 2
    assert check.limit == "0"
    assert not check.passed
    assert not comparison.passed
    # bool outputs get no float metrics
    assert comparison.metrics == ()


def test_compare_bool_outputs_identical_pass() -> None:
    reference = np.array([[True, False], [False, True]])
    comparison = _compare([reference.copy()], [reference], Tolerance())
    [check] = comparison.checks
    assert check.value == 0
    assert check.passed
    assert comparison.passed


# ---------------------------------------------------------------- format_table


def test_format_table_header_and_fail_row() -> None:
    passing = _compare([ACT], [REF], Tolerance(min_snr_db=10.0))
    failing = compare_outputs(
        [ACT], [REF], Tolerance(atol=0.1), reference_name="fake_quant", scales=None
    )
    table = format_table([passing, failing])
    lines = table.splitlines()
    header = lines[0].split()
    assert header == ["reference", "output", "metric", "value", "limit"]
    assert set(lines[1]) <= {"-", " "}
    rows = lines[2:]
    assert len(rows) == 2
    ok_row = next(r for r in rows if r.startswith("eager_float"))
    fail_row = next(r for r in rows if r.startswith("fake_quant"))
    assert ok_row.split() == ["eager_float", "out[0]", "snr_db", "14.7712", ">=", "10", "ok"]
    assert fail_row.split() == ["fake_quant", "out[0]", "max_abs_err", "1", "0.1", "FAIL"]
    # no trailing spaces on any line
    assert all(line == line.rstrip() for line in lines)


def test_format_table_only_failed_and_problems() -> None:
    passing = _compare([ACT], [REF], Tolerance(min_snr_db=10.0))
    failing = _compare([ACT], [REF], Tolerance(atol=0.1))
    broken = _compare([REF], [REF, REF], Tolerance())
    table = format_table([passing, failing, broken], only_failed=True)
    assert "FAIL" in table
    assert " ok" not in table
    assert "snr_db" not in table
    assert "max_abs_err" in table
    assert "structure" in table
    assert "output count: board gave 1, reference has 2" in table


def test_format_table_infinite_and_integer_values() -> None:
    # equal arrays: SNR inf; bool mismatch count is an int
    equal = _compare([REF], [REF], Tolerance(min_snr_db=10.0))
    flags = _compare([np.array([True])], [np.array([False])], Tolerance())
    table = format_table([equal, flags])
    assert "inf" in table.split()
    snr_row = next(line for line in table.splitlines() if "snr_db" in line)
    assert snr_row.split()[3] == "inf"
    bool_row = next(line for line in table.splitlines() if "mismatched_elements" in line)
    assert bool_row.split()[3:] == ["1", "0", "FAIL"]


def test_matching_non_finite_values_agree() -> None:
    # Masked logits: -inf in both; only the finite elements are measured.
    actual = np.array([-np.inf, 1.0, 2.0], dtype=np.float32)
    reference = np.array([-np.inf, 1.0, 2.0], dtype=np.float32)
    comparison = compare_outputs(
        [actual], [reference], Tolerance(atol=1e-5, min_snr_db=10), reference_name="x"
    )
    assert comparison.passed
    assert comparison.metrics[0].snr_db == math.inf


def test_differing_non_finite_values_are_a_problem() -> None:
    actual = np.array([np.inf, 1.0], dtype=np.float32)
    reference = np.array([-np.inf, 1.0], dtype=np.float32)
    comparison = compare_outputs([actual], [reference], Tolerance(atol=1e-5), reference_name="x")
    assert not comparison.passed
    assert "non-finite reference values differ" in comparison.problems[0]
