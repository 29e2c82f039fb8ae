"""When a check confirms its outputs layer by layer, and what the confirmation says
(:mod:`et_hil.verdict.confirm`). Hand-made comparisons and tables; fast. The end to
end cases (a real network's fault within 1 LSB at the outputs, failed by its layer)
are in ``test_plugin.py`` and ``test_mutation.py``."""

from __future__ import annotations

import numpy as np

from et_hil.tolerance import TolerancePolicy, Tolerances
from et_hil.verdict.compare import compare_outputs
from et_hil.verdict.confirm import layers_comparison, needs_confirmation, not_confirmed
from et_hil.verdict.debug import DivergenceReport, LayerMetrics, LayerRow

POLICY = TolerancePolicy()
TOLERANCES = Tolerances(
    main=POLICY.quantized, vs_float=POLICY.quantized_vs_float, fallback=POLICY.float
)
SCALE = 0.05
# 12 logits of a keyword spotter, on the int8 grid of SCALE
REFERENCE = np.arange(-6, 6, dtype=np.float32).reshape(1, 12) * SCALE * 3


def _fake_quant(board: np.ndarray, *, scale: float | None = SCALE):
    return compare_outputs(
        [board], [REFERENCE], POLICY.quantized, reference_name="fake_quant",
        scales=[scale], fallback=POLICY.float, quantization_snr=[30.0],
    )  # fmt: skip


def _golden(board: np.ndarray, golden: np.ndarray):
    return compare_outputs(
        [board], [golden], POLICY.golden, reference_name="golden", scales=[SCALE]
    )


def _one_step_off() -> np.ndarray:
    board = REFERENCE.copy()
    board[0, 3] += SCALE  # one logit a step up: what rounding or a broken layer can do
    return board


def test_outputs_equal_to_fake_quant_need_no_confirmation() -> None:
    assert needs_confirmation([_fake_quant(REFERENCE.copy())], TOLERANCES) is None


def test_outputs_a_step_off_within_rounding_are_confirmed() -> None:
    comparison = _fake_quant(_one_step_off())
    assert comparison.passed  # the rounding allowance passes 1 LSB at the outputs
    reason = needs_confirmation([comparison], TOLERANCES)
    assert reason == "out[0] differs from fake-quant by up to 1 LSB, within the rounding allowance"


def test_failed_outputs_need_no_confirmation() -> None:
    board = REFERENCE.copy()
    board[0, :6] += 3 * SCALE  # 3 LSB on half the logits: failed at the outputs already
    comparison = _fake_quant(board)
    assert not comparison.passed
    assert needs_confirmation([comparison], TOLERANCES) is None


def test_outputs_equal_to_a_golden_reference_need_no_confirmation() -> None:
    """The board computes what it is specified to (the TOSA reference of its graph):
    its step off fake-quant is the specification's rounding."""
    board = _one_step_off()
    assert needs_confirmation([_fake_quant(board), _golden(board, board)], TOLERANCES) is None
    # a golden reference the board does not match vouches for nothing
    comparisons = [_fake_quant(board), _golden(board, REFERENCE)]
    assert needs_confirmation(comparisons, TOLERANCES) is not None


def test_a_float_output_beyond_the_float_limits_is_confirmed() -> None:
    """An output the quantizer left in float (a log-softmax, say) passes by its SNR
    margin; beyond the float limits (1e-5) it is confirmed too."""
    board = REFERENCE.copy()
    board[0, 3] += 1e-3
    comparison = _fake_quant(board, scale=None)
    assert comparison.passed
    assert "out[0] differs from fake-quant by up to 0.001" in str(
        needs_confirmation([comparison], TOLERANCES)
    )
    assert needs_confirmation([_fake_quant(REFERENCE + 1e-7, scale=None)], TOLERANCES) is None


def _row(index: int, within: bool | None, local: LayerMetrics | None) -> LayerRow:
    return LayerRow(
        index=index, node=f"quantize_per_tensor_{index}", module_path=f"net.{index}",
        op="aten.relu", where="CPU", scale=SCALE, vs_fake_quant=local, vs_float=None,
        within=within, local=local,
    )  # fmt: skip


def _report(*rows: LayerRow) -> DivergenceReport:
    return DivergenceReport(
        model="autoencoder_ad", board="host", quantized=True, limit="1 LSB", rows=list(rows),
        partitions_without_taps=0, partitions_with_taps=0, timings={},
    )  # fmt: skip


ROUNDING = LayerMetrics(max_abs=SCALE, snr_db=45.0, cosine=1.0, max_lsb=1.0, off_share=0.01,
                        bias_lsb=0.0)  # fmt: skip
# a requantization one step off behind a ReLU: the positive half of the elements +1
OFFSET = LayerMetrics(max_abs=SCALE, snr_db=25.0, cosine=0.99, max_lsb=1.0, off_share=0.48,
                      bias_lsb=0.48)  # fmt: skip


def test_a_layer_diverging_on_its_own_fails_the_check_and_is_named() -> None:
    report = _report(_row(0, True, ROUNDING), _row(1, False, OFFSET), _row(2, False, OFFSET))
    comparison = layers_comparison(report, "out[0] differs")
    assert not comparison.passed
    [check] = comparison.failures()
    assert check.output == "#1 net.1 aten.relu"  # the first divergent layer, not a later one
    assert check.value == "1 LSB, 48% off, bias +0.48"
    assert check.limit == "1 LSB"
    assert comparison.source.startswith("per-layer pass (out[0] differs)")


def test_no_layer_diverging_confirms_the_outputs_as_rounding() -> None:
    comparison = layers_comparison(_report(_row(0, True, ROUNDING), _row(1, True, ROUNDING)), "")
    assert comparison.passed
    [check] = comparison.checks
    assert (check.output, check.metric, check.value) == ("2 layers", "layers_diverging", 0)


def test_a_pass_that_measured_nothing_confirms_nothing_and_fails_nothing() -> None:
    """No layer measured (the board returned none): the outputs' own verdict stands and
    the comparison says it was not confirmed."""
    comparison = layers_comparison(_report(_row(0, None, None)), "out[0] differs")
    assert comparison.passed
    assert comparison.checks == ()
    assert comparison.source == (
        "not confirmed (out[0] differs): the per-layer pass measured no layer"
    )
    assert not_confirmed("r", "BuildError: x").source == "not confirmed (r): BuildError: x"


def test_a_repro_folder_knows_its_case_failed_by_the_per_layer_table() -> None:
    """A repro folder saves the failed rows of the check's table (``format_table``); its
    rerun judges outputs only, so it must tell a failure of the ``layers`` row (and say
    so) from one at the outputs."""
    from et_hil.report.repro import _failed_by_layers
    from et_hil.verdict.compare import format_table

    by_layers = layers_comparison(_report(_row(0, False, OFFSET)), "out[0] differs")
    assert _failed_by_layers(format_table([by_layers], only_failed=True))
    board = REFERENCE.copy()
    board[0, :6] += 3 * SCALE
    at_outputs = _fake_quant(board)
    assert not at_outputs.passed
    assert not _failed_by_layers(format_table([at_outputs], only_failed=True))
