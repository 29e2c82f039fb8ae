"""The typed parts of a result record (:class:`et_hil.report.record.Record`).

Each part is written as a JSON object inside the record's line and decoded back
into the same type by :func:`et_hil.report.results.read_records`. Records of
earlier versions, and the trimmed records of the tests, leave fields out: every
field a part gained later has a default, so they still decode. A field that is
``None`` was written as ``null`` (nothing to say, e.g. no Vela build).

Numbers a record writes as strings (``"inf"``, ``"nan"``: strict JSON has no
infinities) decode to floats, because records are decoded in msgspec's lax mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from et_hil.baseline_limits import Action

if TYPE_CHECKING:
    from et_hil.programs.artifact import Artifact
    from et_hil.verdict.compare import Comparison
    from et_hil.verdict.debug import DivergenceReport

ChangeKind = Literal["regression", "warning", "improvement", "new", "missing"]


class VelaTotals(msgspec.Struct, kw_only=True):
    """Vela's estimates over every partition of an Ethos-U program
    (:func:`et_hil.programs.vela.read_vela_reports`'s ``total``)."""

    partitions: int | None = None
    cycles_total: int | float | None = None
    cycles_npu: int | float | None = None
    nn_macs: int | float | None = None
    inference_time_s: float | None = None
    sram_bytes: int | float | None = None
    off_chip_flash_bytes: int | float | None = None
    dram_bytes: int | float | None = None


class ArtifactSummary(msgspec.Struct, kw_only=True):
    """The program a record is about (:meth:`et_hil.programs.artifact.Artifact.summary`).

    Attributes:
        key: the cache key.
        model: the model's name.
        target: the compile target.
        quantization: the quantization configuration, or None (float).
        pte_bytes: the ``.pte``'s size.
        delegation: the delegation summary (partitions, CPU ops, fallbacks), as
            :mod:`et_hil.programs.builder` writes it.
        planned_memory_bytes: what the program's memory planner asks for.
        vela: Vela's totals (Ethos-U targets), else None.
        cache_hit: the program came from the cache.
        obtain_s: seconds spent getting it (lookup or build).
        build_s: seconds its build took (when it was built, here or earlier).
        folder: its cache entry.
    """

    key: str = ""
    model: str | None = None
    target: str | None = None
    quantization: dict[str, Any] | None = None
    pte_bytes: int | None = None
    delegation: dict[str, Any] | None = None
    planned_memory_bytes: int | None = None
    vela: VelaTotals | None = None
    cache_hit: bool | None = None
    obtain_s: float | None = None
    build_s: float | None = None
    folder: str | None = None

    @classmethod
    def of(cls, artifact: Artifact) -> ArtifactSummary:
        """The summary of ``artifact``."""
        return msgspec.convert(artifact.summary(), cls, strict=False)


class OutputMetricsRecord(msgspec.Struct, kw_only=True):
    """One output against one reference (:class:`et_hil.verdict.compare.OutputMetrics`)."""

    index: int = 0
    max_abs: float | None = None
    mean_abs: float | None = None
    max_lsb: float | None = None
    snr_db: float | None = None
    cosine: float | None = None
    top1: float | None = None
    top5: float | None = None
    max_excess: float | None = None
    mean_lsb: float | None = None
    bias_lsb: float | None = None
    within_1lsb: float | None = None


class CheckedLimit(msgspec.Struct, kw_only=True):
    """One limit applied to one metric of one output (:class:`et_hil.verdict.compare.Check`)."""

    output: str = ""
    metric: str = ""
    value: float | str | None = None
    limit: str = ""
    passed: bool | None = None


class ComparisonRecord(msgspec.Struct, kw_only=True):
    """One comparison of a board's outputs with a reference."""

    reference: str
    passed: bool | None = None
    problems: list[str] = msgspec.field(default_factory=list)
    metrics: list[OutputMetricsRecord] = msgspec.field(default_factory=list)
    checks: list[CheckedLimit] = msgspec.field(default_factory=list)
    source: str = ""

    @classmethod
    def of(cls, comparison: Comparison) -> ComparisonRecord:
        """The record of ``comparison``."""
        return cls(
            reference=comparison.reference,
            passed=comparison.passed,
            problems=list(comparison.problems),
            metrics=[
                msgspec.convert(m.as_dict(), OutputMetricsRecord, strict=False)
                for m in comparison.metrics
            ],
            checks=[
                msgspec.convert(dataclasses.asdict(c), CheckedLimit, strict=False)
                for c in comparison.checks
            ],
            source=comparison.source,
        )


class LayerMetricsRecord(msgspec.Struct, kw_only=True):
    """A layer's value against one reference (:class:`et_hil.verdict.debug.LayerMetrics`)."""

    max_abs: float | None = None
    snr_db: float | None = None
    cosine: float | None = None
    max_lsb: float | None = None
    off_share: float | None = None
    bias_lsb: float | None = None


class LayerRecord(msgspec.Struct, kw_only=True):
    """One row of the per-layer table (:class:`et_hil.verdict.debug.LayerRow`)."""

    index: int = 0
    node: str = ""
    module_path: str = ""
    op: str = ""
    where: str = ""
    scale: float | None = None
    vs_fake_quant: LayerMetricsRecord | None = None
    vs_float: LayerMetricsRecord | None = None
    within: bool | None = None
    code: str = ""
    local: LayerMetricsRecord | None = None

    @property
    def name(self) -> str:
        """The module path (else the line of code) and the op, as the table shows it."""
        return f"{self.module_path or self.code or '(top)'} {self.op}"


class DebugRecord(msgspec.Struct, kw_only=True):
    """The per-layer divergence pass of one check
    (:meth:`et_hil.verdict.debug.DivergenceReport.as_dict`), or why it failed.

    Attributes:
        error: why the pass itself failed (the other fields are then empty).
        files: ``divergence.json`` and ``divergence.csv`` in the repro folder.
        timings: seconds of the pass's stages.
        fault: the deliberate fault the check was given (tests of the verdict).
        etdump_gaps: the runtime's own intermediate outputs against the ETRecord
            (ExecuTorch's Inspector), where the board gives them.
    """

    model: str = ""
    board: str = ""
    quantized: bool = False
    limit: str = ""
    summary: str = ""
    first_divergent: LayerRecord | None = None
    partitions_without_taps: int = 0
    partitions_with_taps: int = 0
    fault: dict[str, Any] | None = None
    strategy: str = ""
    strategy_note: str = ""
    reducer: str = ""
    etdump_gaps: list[dict[str, Any]] | None = None
    etdump_note: str = ""
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    rows: list[LayerRecord] = msgspec.field(default_factory=list)
    files: list[str] = msgspec.field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, report: DivergenceReport, files: list[str]) -> DebugRecord:
        """The record of a per-layer table and the files it was written to."""
        return msgspec.convert({**report.as_dict(), "files": files}, cls, strict=False)

    @classmethod
    def failed(cls, error: str) -> DebugRecord:
        """The record of a pass that failed with ``error``."""
        return cls(error=error)


class Change(msgspec.Struct, frozen=True):
    """One figure of one test against its baseline (:mod:`et_hil.report.baseline`).

    Attributes:
        figure: the figure's name.
        baseline: its baseline value (None: new figure).
        now: its value in this run (None: missing from this run).
        change: now - baseline, as a fraction of the baseline for relative limits.
        limit: the limit's text.
        kind: regression (fails), warning (a regression whose limit only warns),
            improvement, new or missing.
        action: the limit's action.
    """

    figure: str
    baseline: float | None
    now: float | None
    change: float | None
    limit: str
    kind: ChangeKind = "regression"
    action: Action = "fail"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the results writer turns infinities into strings)."""
        fields: dict[str, Any] = msgspec.to_builtins(self)
        return fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        """A change as a results file holds it (infinities as strings: 'inf').

        Raises:
            msgspec.ValidationError: ``data`` is not a change.
        """
        return msgspec.convert(data, cls, strict=False)


class BaselineRecord(msgspec.Struct, kw_only=True):
    """A test's comparison with ``--et-baseline``.

    Attributes:
        file: the baseline file.
        entry: the baseline had an entry for the test.
        limits: the limits the run applied over the defaults (board file, markers),
            so that offline comparisons judge as the run did.
        changes: the figures worth reporting.
    """

    file: str = ""
    entry: bool = False
    limits: dict[str, Any] = msgspec.field(default_factory=dict)
    changes: list[Change] = msgspec.field(default_factory=list)


class QuarantineRecord(msgspec.Struct, kw_only=True):
    """The quarantine entry that covered a test (:mod:`et_hil.report.quarantine`).

    Attributes:
        reason: why the test is known to fail.
        issue: where the failure is tracked.
        expires: the entry's expiry date (ISO 8601).
        entry: the entry's file and line.
        expired: the entry had expired on the day the run started.
    """

    reason: str = ""
    issue: str = ""
    expires: str = ""
    entry: str = ""
    expired: bool = False
