"""Tests of et_hil.tolerance: building limits from board files and markers."""

from __future__ import annotations

import re

import pytest

from et_hil.tolerance import Tolerance, TolerancePolicy

WHERE = "board file /x/y.toml [tolerance.float]"


def test_tolerance_defaults_check_nothing() -> None:
    tol = Tolerance()
    assert (tol.atol, tol.rtol, tol.max_lsb, tol.min_snr_db, tol.min_cosine, tol.min_top1) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_tolerance_from_mapping_reads_every_field_as_float() -> None:
    tol = Tolerance.from_mapping(
        {"atol": 1, "rtol": 0.5, "max_lsb": 2, "min_snr_db": 20, "min_cosine": 0.99, "min_top1": 1},
        WHERE,
    )
    assert tol == Tolerance(
        atol=1.0, rtol=0.5, max_lsb=2.0, min_snr_db=20.0, min_cosine=0.99, min_top1=1.0
    )
    assert isinstance(tol.atol, float)
    assert isinstance(tol.max_lsb, float)


def test_tolerance_from_mapping_empty() -> None:
    assert Tolerance.from_mapping({}, WHERE) == Tolerance()


def test_tolerance_from_mapping_unknown_field_names_field_and_where() -> None:
    with pytest.raises(ValueError, match=r"unknown tolerance field 'atoll'") as info:
        Tolerance.from_mapping({"atol": 1e-3, "atoll": 1e-3}, WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ":")
    # the known fields are listed, to spot the typo
    for known in ("atol", "rtol", "max_lsb", "min_snr_db", "min_cosine", "min_top1"):
        assert known in message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1e-3", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param([1.0], id="list"),
    ],
)
def test_tolerance_from_mapping_non_number(value) -> None:
    expected = f"{WHERE}: tolerance 'rtol' must be a number, got {value!r}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        Tolerance.from_mapping({"rtol": value}, WHERE)


@pytest.mark.parametrize("field", ["atol", "rtol", "max_lsb", "min_cosine", "min_top1"])
def test_tolerance_from_mapping_negative(field) -> None:
    expected = f"{WHERE}: tolerance '{field}' must be >= 0, got -1"
    with pytest.raises(ValueError, match=re.escape(expected)):
        Tolerance.from_mapping({field: -1}, WHERE)


@pytest.mark.parametrize("field", ["atol", "min_snr_db"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_tolerance_from_mapping_non_finite_rejected(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"tolerance '{field}' must be finite"):
        Tolerance.from_mapping({field: value}, WHERE)


def test_policy_section_keeps_unnamed_limits() -> None:
    # [tolerance.float] with only atol keeps the default rtol (1e-5).
    policy = TolerancePolicy.from_mapping({"float": {"atol": 1e-3}}, WHERE)
    assert policy.float == Tolerance(atol=1e-3, rtol=1e-5)


def test_tolerance_from_mapping_negative_snr_allowed() -> None:
    # an SNR limit in dB may legitimately be negative
    assert Tolerance.from_mapping({"min_snr_db": -3}, WHERE).min_snr_db == -3.0


def test_tolerance_zero_is_allowed() -> None:
    assert Tolerance.from_mapping({"atol": 0}, WHERE).atol == 0.0


def test_tolerance_replace() -> None:
    tol = Tolerance(atol=1e-5, rtol=1e-5).replace(atol=1e-3)
    assert tol == Tolerance(atol=1e-3, rtol=1e-5)
    with pytest.raises(TypeError):
        Tolerance().replace(bogus=1.0)


# ---------------------------------------------------------------- TolerancePolicy


def test_policy_defaults() -> None:
    policy = TolerancePolicy()
    assert policy.float == Tolerance(atol=1e-5, rtol=1e-5)
    # Rounding within 1 LSB, else 10 dB of SNR above the model's own quantization
    # (README, "What a verdict means"); a golden reference exactly; the model's
    # quantization quality only against limits a test or board file sets.
    assert policy.quantized == Tolerance(rounding_lsb=1.0, snr_margin_db=10.0)
    assert policy.golden == Tolerance(max_lsb=0.5)  # the same quantization step
    assert policy.quantized_vs_float == Tolerance()
    assert not policy.quantized_vs_float.checks_anything


def test_policy_from_empty_mapping_is_default() -> None:
    assert TolerancePolicy.from_mapping({}, "board file b.toml") == TolerancePolicy()


def test_policy_unknown_section() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("board file b.toml: unknown tolerance section 'floats'"),
    ) as info:
        TolerancePolicy.from_mapping({"floats": {"atol": 1.0}}, "board file b.toml")
    assert "float, quantized, golden, quantized_vs_float" in str(info.value)


def test_policy_section_must_be_table() -> None:
    with pytest.raises(ValueError, match=re.escape("[tolerance.quantized] must be a table")):
        TolerancePolicy.from_mapping({"quantized": 1}, "board file b.toml")


def test_policy_partial_override_keeps_other_sections() -> None:
    policy = TolerancePolicy.from_mapping({"quantized": {"max_lsb": 2}}, "board file b.toml")
    assert policy.quantized == Tolerance(max_lsb=2.0, rounding_lsb=1.0, snr_margin_db=10.0)
    # sections not mentioned keep their defaults
    assert policy.float == TolerancePolicy().float
    assert policy.quantized_vs_float == TolerancePolicy().quantized_vs_float


def test_policy_field_error_names_the_section() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "board file b.toml [tolerance.quantized_vs_float]: unknown tolerance field 'snr'"
        ),
    ):
        TolerancePolicy.from_mapping({"quantized_vs_float": {"snr": 10}}, "board file b.toml")
