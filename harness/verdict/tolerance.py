"""Tolerances: how close a board's outputs must be to a reference.

Three comparisons are made, each with its own limits:

* ``float``: a float program against the eager float model.
* ``quantized``: a quantized program against its fake-quant reference
  (the PT2E-converted model run in eager mode), in units of the output's
  quantization scale (LSB).
* ``quantized_vs_float``: a quantized program against the eager float model;
  quantization error is expected, so only signal quality is checked.

Defaults come from the board file (by board kind and dtype) and are overridden
per test with the ``et_tolerance`` marker or an argument.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Limits for one comparison; ``None`` means the metric is reported, not checked.

    Attributes:
        atol: absolute error allowed per element.
        rtol: error allowed per element relative to ``|reference|``.
        max_lsb: error allowed in units of the output quantization scale.
        min_snr_db: lowest acceptable signal-to-noise ratio, in dB.
        min_cosine: lowest acceptable cosine similarity.
        min_top1: lowest acceptable top-1 agreement (0..1) for classifier-like outputs.
    """

    atol: float | None = None
    rtol: float | None = None
    max_lsb: float | None = None
    min_snr_db: float | None = None
    min_cosine: float | None = None
    min_top1: float | None = None

    def replace(self, **changes: float | None) -> Tolerance:
        """Return a copy with some limits changed; unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> Tolerance:
        """Build from a TOML table or marker kwargs, naming ``where`` in errors.

        Raises:
            ValueError: unknown field or a value that is not a finite non-negative number.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, float] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"{where}: unknown tolerance field '{key}' (known: {', '.join(sorted(known))})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: tolerance '{key}' must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{where}: tolerance '{key}' must be finite, got {value!r}")
            if key != "min_snr_db" and value < 0:
                raise ValueError(f"{where}: tolerance '{key}' must be >= 0, got {value!r}")
            values[key] = float(value)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class TolerancePolicy:
    """The three tolerances a board applies by default."""

    float: Tolerance = Tolerance(atol=1e-5, rtol=1e-5)
    quantized: Tolerance = Tolerance(max_lsb=1.0)
    quantized_vs_float: Tolerance = Tolerance(min_snr_db=10.0)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> TolerancePolicy:
        """Build from the ``[tolerance]`` table of a board file; absent parts keep defaults.

        Raises:
            ValueError: unknown section or field, naming ``where``.
        """
        default = cls()
        parts: dict[str, Tolerance] = {}
        # A section changes only the limits it names; the others keep their defaults.
        for section, table in data.items():
            if section not in ("float", "quantized", "quantized_vs_float"):
                raise ValueError(
                    f"{where}: unknown tolerance section '{section}' "
                    "(known: float, quantized, quantized_vs_float)"
                )
            if not isinstance(table, Mapping):
                raise ValueError(f"{where}: [tolerance.{section}] must be a table")
            given = Tolerance.from_mapping(table, f"{where} [tolerance.{section}]")
            parts[section] = dataclasses.replace(
                getattr(default, section), **{k: getattr(given, k) for k in table}
            )
        return dataclasses.replace(default, **parts)


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """The limits a check applied: its main comparison, the float comparison of a
    quantized program, and the float limits for outputs left unquantized."""

    main: Tolerance
    vs_float: Tolerance
    fallback: Tolerance

    def as_dict(self) -> dict[str, dict[str, float | None]]:
        """For ``case.json``."""
        return {k: dataclasses.asdict(getattr(self, k)) for k in ("main", "vs_float", "fallback")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Tolerances:
        """From ``case.json``."""
        return cls(**{k: Tolerance(**data[k]) for k in ("main", "vs_float", "fallback")})
