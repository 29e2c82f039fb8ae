"""Tests of et_hil.tolerance: building limits from board files and markers."""

from __future__ import annotations

import dataclasses
import re

import msgspec
import pytest

from et_hil.tolerance import Tolerance, ToleranceLimits, TolerancePolicy, ToleranceTable
from et_hil.validation import field_problems

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


def _policy(table: dict[str, object]) -> TolerancePolicy:
    """The policy of a ``[tolerance]`` table as a board file gives it."""
    return TolerancePolicy.from_table(msgspec.convert(table, ToleranceTable, strict=True))


def _problems(table: dict[str, object]) -> list[str]:
    return field_problems(table, ToleranceTable, "[tolerance]")


def test_policy_section_keeps_unnamed_limits() -> None:
    # [tolerance.float] with only atol keeps the default rtol (1e-5).
    policy = _policy({"float": {"atol": 1e-3}})
    assert policy.float == Tolerance(atol=1e-3, rtol=1e-5)


def test_the_table_type_declares_every_limit() -> None:
    # one declaration per limit: the board file's type and the value it becomes agree
    fields = [f.name for f in msgspec.structs.fields(ToleranceLimits)]
    assert fields == [f.name for f in dataclasses.fields(Tolerance)]


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
    # (docs/writing-tests/verdicts.md, 'What a verdict means: the mutation campaign');
    # a golden reference exactly; the model's quantization quality only against
    # limits a test or board file sets.
    assert policy.quantized == Tolerance(rounding_lsb=1.0, snr_margin_db=10.0)
    assert policy.golden == Tolerance(max_lsb=0.5)  # the same quantization step
    assert policy.quantized_vs_float == Tolerance()
    assert not policy.quantized_vs_float.checks_anything


def test_policy_from_an_empty_table_is_default() -> None:
    assert _policy({}) == TolerancePolicy()


def test_policy_unknown_section() -> None:
    assert _problems({"floats": {"atol": 1.0}}) == [
        "[tolerance] unknown tolerance section 'floats' (known: float, quantized, golden, "
        "quantized_vs_float)"
    ]


def test_policy_section_must_be_table() -> None:
    assert _problems({"quantized": 1}) == ["[tolerance.quantized] must be a table"]


def test_policy_partial_override_keeps_other_sections() -> None:
    policy = _policy({"quantized": {"max_lsb": 2}})
    assert policy.quantized == Tolerance(max_lsb=2.0, rounding_lsb=1.0, snr_margin_db=10.0)
    # sections not mentioned keep their defaults
    assert policy.float == TolerancePolicy().float
    assert policy.quantized_vs_float == TolerancePolicy().quantized_vs_float


def test_policy_field_error_names_the_section() -> None:
    [problem] = _problems({"quantized_vs_float": {"snr": 10}})
    assert problem.startswith("[tolerance.quantized_vs_float]: unknown tolerance field 'snr'")


def test_a_section_lists_every_problem_in_the_words_of_tolerances() -> None:
    # each limit's constraints have their own words: a number, then finite, then >= 0
    assert _problems({"golden": {"atol": "x", "rtol": float("inf"), "max_lsb": -1}}) == [
        "[tolerance.golden]: tolerance 'atol' must be a number, got 'x'",
        "[tolerance.golden]: tolerance 'rtol' must be finite, got inf",
        "[tolerance.golden]: tolerance 'max_lsb' must be >= 0, got -1",
    ]
