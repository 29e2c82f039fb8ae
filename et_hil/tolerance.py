"""Tolerances: how close a board's outputs must be to a reference.

A board is judged apart from the model it runs:

* ``float``: a float program against the eager float model.
* ``quantized``: a quantized program against its fake-quant reference (the
  PT2E-converted model run eagerly), in units of the output's quantization scale
  (LSB). Errors within ``rounding_lsb`` are rounding, always allowed; beyond, the
  board's error must stay small against the error quantization itself puts into
  this model's outputs: its SNR against fake-quant at least ``snr_margin_db`` above
  the model's quantization SNR (fake-quant against float). Rounding differences
  and quantization noise enter at the same layers and grow through the same
  network, so the rule holds at any depth, while a wrong layer adds error of its
  own (the measurements behind the numbers are in
  docs/writing-tests/verdicts.md, 'What a verdict means: the mutation campaign').
  Outputs that pass by the rounding allowance alone, yet differ, are confirmed layer
  by layer (:mod:`et_hil.verdict.confirm`): at the outputs a broken layer can stay
  within 1 LSB.
* ``golden``: a quantized program against a bit-exact reference of what the
  board is specified to compute (:mod:`et_hil.verdict.golden`), where one exists.
* ``quantized_vs_float``: the quantized *model* (fake-quant) against the float
  model: quantization quality, the same on every board; no limits by default
  (opt-in: a failure is ``quantization_quality``, not the board's).

Defaults come from the board file (``[tolerance.<part>]``) and are overridden per
test with the ``et_tolerance`` marker or an argument.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from et_hil.validation import Problem, decode


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Limits for one comparison; ``None`` means the metric is reported, not checked.

    Attributes:
        atol: absolute error allowed per element.
        rtol: error allowed per element relative to ``|reference|``.
        max_lsb: error allowed in units of the output quantization scale: a hard cap,
            and errors within it pass the ``snr_margin_db`` rule too (setting it alone
            judges by LSB only).
        min_snr_db: lowest acceptable signal-to-noise ratio, in dB.
        min_cosine: lowest acceptable cosine similarity.
        min_top1: lowest acceptable top-1 agreement (0..1) for classifier-like outputs.
        min_top5: lowest acceptable top-5 agreement (0..1), outputs of 5 classes or more.
        max_mean_lsb: mean absolute error allowed, in LSB.
        max_bias_lsb: mean signed error allowed either way, in LSB (rounding
            differences cancel out; a wrong offset does not).
        rounding_lsb: errors of at most this many LSB are rounding and pass the
            ``snr_margin_db`` rule whatever the SNR (quantized outputs).
        snr_margin_db: how far above the model's own quantization SNR (fake-quant
            against float) the board's SNR against fake-quant must be, for outputs
            with errors beyond ``rounding_lsb``.
    """

    atol: float | None = None
    rtol: float | None = None
    max_lsb: float | None = None
    min_snr_db: float | None = None
    min_cosine: float | None = None
    min_top1: float | None = None
    min_top5: float | None = None
    max_mean_lsb: float | None = None
    max_bias_lsb: float | None = None
    rounding_lsb: float | None = None
    snr_margin_db: float | None = None

    @property
    def checks_anything(self) -> bool:
        """True when some limit is set."""
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    def replace(self, **changes: float | None) -> Tolerance:
        """Return a copy with some limits changed; unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> Tolerance:
        """Build from marker kwargs (or any table of limits), naming ``where`` in errors.

        Raises:
            ValueError: the first problem: an unknown field, or a value that is not
                a finite number (>= 0 but for the dB limits).
        """
        limits, problems = decode(data, ToleranceLimits, where)
        if limits is None:
            raise ValueError(str(problems[0]))
        return cls.from_limits(limits)

    @classmethod
    def from_limits(cls, limits: ToleranceLimits) -> Tolerance:
        """The limits a table gives (those it leaves out: ``None``)."""
        return cls(**limits.given())


# The default limits of a quantized program against its fake-quant reference.
# Calibrated on the real-model suite (see
# docs/writing-tests/verdicts.md, 'What a verdict means: the mutation campaign'):
# correct boards stay within these on every model; single-layer faults do not.
ROUNDING_LSB = 1.0
SNR_MARGIN_DB = 10.0
GOLDEN_LSB = 0.5

# A limit is a number, finite, and >= 0 but for the dB limits, which may be
# negative. Each constraint is its own Meta with its own words, so that a problem
# says which one the value fails (et_hil.validation).
_FLOAT_MAX = sys.float_info.max
_A_NUMBER = msgspec.Meta(extra={"expect": "a number"})
_Limit = Annotated[
    float,
    _A_NUMBER,
    msgspec.Meta(le=_FLOAT_MAX, extra={"expect": "finite"}),
    msgspec.Meta(ge=0, extra={"expect": ">= 0"}),
]
_DbLimit = Annotated[
    float, _A_NUMBER, msgspec.Meta(ge=-_FLOAT_MAX, le=_FLOAT_MAX, extra={"expect": "finite"})
]
_UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


def _about(description: str) -> msgspec.Meta:
    return msgspec.Meta(description=description)


class ToleranceLimits(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A ``[tolerance.<part>]`` table (or an ``et_tolerance`` marker's keywords): the
    limits it names, :class:`Tolerance`'s fields. A limit left out is ``UNSET``, so
    that a board file's table changes only the limits it names."""

    atol: Annotated[_Limit, _about("absolute error allowed per element")] | Unset = _UNSET
    rtol: Annotated[_Limit, _about("error allowed per element relative to |reference|")] | Unset = (
        _UNSET
    )
    max_lsb: Annotated[_Limit, _about("error allowed in LSB: a hard cap")] | Unset = _UNSET
    min_snr_db: Annotated[_DbLimit, _about("lowest acceptable SNR, dB")] | Unset = _UNSET
    min_cosine: Annotated[_Limit, _about("lowest acceptable cosine similarity")] | Unset = _UNSET
    min_top1: Annotated[_Limit, _about("lowest acceptable top-1 agreement (0..1)")] | Unset = _UNSET
    min_top5: Annotated[_Limit, _about("lowest acceptable top-5 agreement (0..1)")] | Unset = _UNSET
    max_mean_lsb: Annotated[_Limit, _about("mean absolute error allowed, LSB")] | Unset = _UNSET
    max_bias_lsb: Annotated[_Limit, _about("mean signed error allowed either way, LSB")] | Unset = (
        _UNSET
    )
    rounding_lsb: Annotated[_Limit, _about("errors within it are rounding, LSB")] | Unset = _UNSET
    snr_margin_db: (
        Annotated[_DbLimit, _about("SNR above the model's quantization SNR, dB")] | Unset
    ) = _UNSET

    def given(self) -> dict[str, float]:
        """The limits the table names."""
        return {
            name: value
            for name, value in msgspec.structs.asdict(self).items()
            if value is not _UNSET
        }

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """A problem in the words tolerances always had: ``[tolerance.float]: tolerance
        'rtol' must be >= 0, got -1``."""
        if problem.kind == "unknown":
            known = ", ".join(sorted(problem.known))
            return f"{problem.table}: unknown tolerance field '{problem.key}' (known: {known})"
        if problem.kind == "invalid":
            return (
                f"{problem.table}: tolerance '{problem.key}' must be {problem.expect}, "
                f"got {problem.value!r}"
            )
        return problem.standard_text()


class ToleranceTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A board file's ``[tolerance]``: the limits of each comparison it changes."""

    float: Annotated[
        ToleranceLimits | None,
        msgspec.Meta(description="a float program against the eager float model"),
    ] = None
    quantized: Annotated[
        ToleranceLimits | None,
        msgspec.Meta(description="a quantized program against its fake-quant reference"),
    ] = None
    golden: Annotated[
        ToleranceLimits | None,
        msgspec.Meta(description="a quantized program against a bit-exact golden reference"),
    ] = None
    quantized_vs_float: Annotated[
        ToleranceLimits | None,
        msgspec.Meta(description="the fake-quant model against the float model (opt-in)"),
    ] = None

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """An unknown part is an unknown tolerance *section*, as it always was."""
        if problem.kind == "unknown":
            known = ", ".join(problem.known)
            return f"{problem.table} unknown tolerance section '{problem.key}' (known: {known})"
        return problem.standard_text()


SECTIONS = tuple(f.name for f in msgspec.structs.fields(ToleranceTable))


@dataclasses.dataclass(frozen=True)
class TolerancePolicy:
    """The tolerances a board applies by default, one per comparison."""

    float: Tolerance = Tolerance(atol=1e-5, rtol=1e-5)
    quantized: Tolerance = Tolerance(rounding_lsb=ROUNDING_LSB, snr_margin_db=SNR_MARGIN_DB)
    # The same quantization step as the golden reference's: a difference under half a
    # step is not another integer but the decimal text a UART carries (seen: 1.5e-4
    # and 3.2e-4 LSB on the virtual serial board) or float32 dequantization.
    golden: Tolerance = Tolerance(max_lsb=GOLDEN_LSB)
    quantized_vs_float: Tolerance = Tolerance()

    @classmethod
    def from_table(cls, table: ToleranceTable) -> TolerancePolicy:
        """The policy of a board file's ``[tolerance]``: a part changes only the limits
        it names; the others, and the parts it leaves out, keep their defaults."""
        default = cls()
        parts = {
            section: dataclasses.replace(getattr(default, section), **limits.given())
            for section in SECTIONS
            if (limits := getattr(table, section)) is not None
        }
        return dataclasses.replace(default, **parts)


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """The limits a check applied: its main comparison, the quantization quality of a
    quantized program (fake-quant against float), the float limits for outputs left
    unquantized, and the limits against a golden reference."""

    main: Tolerance
    vs_float: Tolerance
    fallback: Tolerance
    golden: Tolerance = TolerancePolicy.golden

    def as_dict(self) -> dict[str, dict[str, float | None]]:
        """For ``case.json``."""
        return {k: dataclasses.asdict(getattr(self, k)) for k in _PARTS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Tolerances:
        """From ``case.json`` (a file of an older harness may lack ``golden``)."""
        known = {f.name for f in dataclasses.fields(Tolerance)}
        return cls(
            **{
                k: Tolerance(**{f: v for f, v in data[k].items() if f in known})
                for k in _PARTS
                if k in data
            }
        )


_PARTS = ("main", "vs_float", "fallback", "golden")
