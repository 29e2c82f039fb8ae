"""One test's result record: a typed structure, made by :func:`make_record` only.

The record is one JSON line of the results file (see :mod:`et_hil.report.results`),
and the same structure is what :func:`et_hil.report.results.read_records` decodes
it back into: the report, merge, baselines, JUnit and the plugin's summary read
attributes of these types (its parts are in :mod:`et_hil.report.record_parts`).
Its field names are read by the benchmarks and the documentation's examples too, so
they do not change. A field that is :data:`msgspec.UNSET` is left out of the line
(e.g. ``debug`` of a check that had no per-layer pass); a field that is None is
written as ``null``. Only ``test`` and ``outcome`` are required to read a line:
records written before a field existed, and the trimmed records of the tests,
decode with its default.

While a test runs, its fixtures note what they learn in a :class:`RecordDraft`
and one :class:`CheckRecord` per ``et_check`` call; when it ends,
:func:`make_record` turns them into the :class:`Record`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from et_hil.errors import FailureClass
from et_hil.report.record_parts import (
    ArtifactSummary,
    BaselineRecord,
    ComparisonRecord,
    DebugRecord,
    QuarantineRecord,
)

if TYPE_CHECKING:
    from et_hil.boards.base import RunResult

__all__ = [
    "CheckRecord",
    "ComparisonRecord",
    "Outcome",
    "Record",
    "RecordDraft",
    "Timings",
    "main_check",
    "make_record",
    "run_timings",
]

Outcome = Literal["passed", "failed", "error", "skipped"]
# A check's timings: seconds per stage (``artifact_s``, ``run_s``, ``compare_s``,
# ``check_s``), the board's (``execute_s``, ``load_s`` and the phases its kind
# measures, e.g. ``fvp_wall_s``), and ``fidelity``, what kind of time they are.
Timings = dict[str, float | str]


def run_timings(run: RunResult) -> Timings:
    """The timings of one board run as a check's record holds them: ``execute_s``,
    ``load_s``, the run's own phases (:attr:`RunResult.timings`) and ``fidelity``."""
    return {
        "execute_s": round(run.execute_s, 6),
        "load_s": round(run.load_s, 6),
        "fidelity": str(run.fidelity),
        **run.timings,
    }


class _Measured(msgspec.Struct, kw_only=True):
    """What a check's record and a test's record both give: typed views of the
    mappings they hold (a field that was never set reads as absent)."""

    timings: Timings | UnsetType | None = UNSET
    board_facts: dict[str, Any] | UnsetType | None = UNSET

    @property
    def fidelity(self) -> str | None:
        """What kind of time the timings are (``host-wall``...), when known."""
        value = (self.timings or {}).get("fidelity")
        return value if isinstance(value, str) else None

    def seconds(self, name: str) -> float | None:
        """The timing ``name`` (``execute_s``...), when it was measured."""
        value = (self.timings or {}).get(name)
        return float(value) if isinstance(value, int | float) else None

    @property
    def pmu(self) -> dict[str, float]:
        """The PMU counters the board read (only the numbers; empty when none)."""
        counters = (self.board_facts or {}).get("pmu")
        if not isinstance(counters, Mapping):
            return {}
        return {
            str(k): float(v)
            for k, v in counters.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }


class CheckRecord(_Measured, kw_only=True):
    """One ``et_check`` call, filled in stage by stage (a stage not reached stays unset).

    Attributes:
        artifact: the program (:class:`~et_hil.report.record_parts.ArtifactSummary`).
        delegation: the artifact's delegation summary (ops delegated, ops left to the CPU).
        vela: Vela's reports (Ethos-U targets: per partition, and ``total``), else None.
        quantization_note: why the program was not quantized although asked to be.
        full_delegation: why a full-delegation requirement did not apply.
        ran: False when nothing ran (``--et-build-only``).
        run_dir: the run's folder.
        timings: seconds per stage and the board's timings, with their
            ``fidelity`` (:data:`Timings`).
        etdump: the ETDump file, if the board left one.
        board_facts: what the board reports about the run
            (:attr:`et_hil.boards.base.RunResult.facts`, e.g. ``where`` an FVP ran).
        comparisons: the verdicts against each reference.
        passed: every comparison passed.
        failure_class: why the check failed (:class:`et_hil.errors.FailureClass`).
        repro: the repro folder a failure left (None: none could be left).
        debug: the per-layer divergence pass (:mod:`et_hil.verdict.debug`).
        size: which size of a dynamic-shape program ran (``example``, ``smallest``,
            ``largest``), with ``input_shapes``.
        input_shapes: the shape of each input that ran (dynamic-shape programs).
        degenerate: what carries nothing to judge by, per output
            (:mod:`et_hil.verdict.degenerate`).
        golden: the golden reference: what computed it, or why there is none
            (:mod:`et_hil.verdict.golden`).
    """

    artifact: ArtifactSummary | UnsetType = UNSET
    delegation: dict[str, Any] | UnsetType | None = UNSET
    vela: dict[str, Any] | UnsetType | None = UNSET
    quantization_note: str | UnsetType = UNSET
    full_delegation: str | UnsetType = UNSET
    ran: bool | UnsetType | None = UNSET
    run_dir: str | UnsetType | None = UNSET
    etdump: str | UnsetType | None = UNSET
    comparisons: list[ComparisonRecord] | UnsetType = UNSET
    passed: bool | UnsetType = UNSET
    failure_class: str | UnsetType | None = UNSET
    repro: str | UnsetType | None = UNSET
    debug: DebugRecord | UnsetType = UNSET
    size: str | UnsetType = UNSET
    input_shapes: list[list[int]] | UnsetType = UNSET
    degenerate: list[str] | UnsetType = UNSET
    golden: str | UnsetType = UNSET


# The check fields a record's top level repeats from its main check.
_MAIN_CHECK_FIELDS = (
    "artifact",
    "delegation",
    "vela",
    "ran",
    "run_dir",
    "timings",
    "etdump",
    "board_facts",
    "repro",
    "quantization_note",
    "full_delegation",
    "debug",
    "degenerate",
    "golden",
)


class RecordDraft(msgspec.Struct, kw_only=True):
    """What a test's fixtures learn while it runs, before :func:`make_record`.

    Attributes:
        board: the board the test ran on (set by the ``board`` fixture).
        failure_class: why the test failed, as far as known (first cause wins).
        artifact: the summary of the last program built (``et_build``/``et_check``).
        checks: one per ``et_check`` call, in call order.
        debug_reports: the tables of ``et_debug`` calls.
        baseline: the comparison with the baseline (``--et-baseline``): its file and changes.
        quarantine: the quarantine entry covering the test, if any.
        quarantined_failure: the failure text a quarantine turned into ``xfailed``.
    """

    board: str | None = None
    failure_class: str | None = None
    artifact: ArtifactSummary | None = None
    checks: list[CheckRecord] = msgspec.field(default_factory=list)
    debug_reports: list[DebugRecord] = msgspec.field(default_factory=list)
    baseline: BaselineRecord | None = None
    quarantine: QuarantineRecord | None = None
    quarantined_failure: str | None = None


class Record(_Measured, kw_only=True):
    """One test's record: one line of the results file.

    The top level repeats the fields of the test's main check (the first that
    failed or never finished, else the last; see :data:`_MAIN_CHECK_FIELDS`),
    and ``comparisons`` holds those of every check in order. Only ``test`` and
    ``outcome`` are required (see the module's docstring); the other fields
    :func:`make_record` always fills have the defaults of a record that says
    nothing about them.

    Attributes:
        run_id: the run's id (shared by every worker).
        test: pytest's node id.
        board: the board the test ran on.
        outcome: the test's outcome over setup, call and teardown.
        message: the failure or skip text ('' when passed).
        failure_class: why the test did not pass (:class:`et_hil.errors.FailureClass`).
        duration_s: setup + call + teardown seconds (None: not recorded).
        worker: the xdist worker id, or ``main``.
        finished_at: local time, ISO 8601.
        versions: tool versions (:func:`et_hil.versions.tool_versions`).
        checks: every ``et_check`` call (the other fields are those of
            :class:`CheckRecord`, for the main check).
        debug_reports: the tables of ``et_debug`` calls.
        shard: ``i/n`` when the run was one shard of a split suite.
        baseline: the comparison with the baseline (``--et-baseline``).
        quarantine: the quarantine entry that covered the test.
    """

    run_id: str = ""
    test: str
    board: str | None = None
    outcome: Outcome
    message: str = ""
    failure_class: str | None = None
    duration_s: float | None = None
    worker: str = ""
    finished_at: str = ""
    versions: dict[str, str | None] = msgspec.field(default_factory=dict)
    artifact: ArtifactSummary | UnsetType = UNSET
    delegation: dict[str, Any] | UnsetType | None = UNSET
    vela: dict[str, Any] | UnsetType | None = UNSET
    ran: bool | UnsetType | None = UNSET
    run_dir: str | UnsetType | None = UNSET
    etdump: str | UnsetType | None = UNSET
    repro: str | UnsetType | None = UNSET
    quantization_note: str | UnsetType = UNSET
    full_delegation: str | UnsetType = UNSET
    debug: DebugRecord | UnsetType = UNSET
    degenerate: list[str] | UnsetType = UNSET
    golden: str | UnsetType = UNSET
    comparisons: list[ComparisonRecord] | UnsetType = UNSET
    checks: list[CheckRecord] | UnsetType = UNSET
    debug_reports: list[DebugRecord] | UnsetType = UNSET
    shard: str | UnsetType | None = UNSET
    baseline: BaselineRecord | UnsetType | None = UNSET
    quarantine: QuarantineRecord | UnsetType | None = UNSET

    @property
    def quarantined(self) -> bool:
        """A failure its (unexpired) quarantine entry keeps from failing the run."""
        entry = self.quarantine
        if not entry:
            return False
        return not entry.expired and self.outcome in ("failed", "error")

    def fields(self) -> dict[str, Any]:
        """The record as plain JSON-ready values (unset fields left out).

        Non-finite floats stay floats here; the results writer makes them strings.
        """
        return msgspec.to_builtins(self, enc_hook=_plain)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """Values msgspec has no encoding for: paths become strings (as in ``_json_safe``)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a result record cannot hold {type(value).__name__} values: {value!r}")


def main_check(checks: Sequence[CheckRecord]) -> CheckRecord:
    """The check a record is about: the first that failed (or never finished), else the last."""
    for check in checks:
        if check.failure_class or check.passed is not True:
            return check
    return checks[-1]


def make_record(
    draft: RecordDraft,
    *,
    run_id: str,
    test: str,
    outcome: Outcome,
    message: str,
    duration_s: float,
    worker: str,
    finished_at: str,
    versions: Mapping[str, str | None],
    board: str | None = None,
    shard: str | None = None,
) -> Record:
    """The record of one finished test.

    Args:
        draft: what the fixtures noted during the test.
        run_id: the run's id (shared by every worker).
        test: pytest's node id.
        outcome: the test's outcome over setup, call and teardown.
        message: the failure or skip text ('' when passed).
        duration_s: setup + call + teardown seconds.
        worker: the xdist worker id, or ``main``.
        finished_at: local time, ISO 8601.
        versions: tool versions (:func:`et_hil.versions.tool_versions`).
        board: the board when the draft has none (the test was skipped before
            its ``board`` fixture ran).
        shard: ``i/n`` when the run was one shard of a split suite.
    """
    failure_class = draft.failure_class
    if outcome == "passed":
        failure_class = None
    elif outcome in ("failed", "error") and failure_class is None:
        failure_class = str(FailureClass.TEST_ERROR)  # an assertion or error of the test itself
    record = Record(
        run_id=run_id,
        test=test,
        board=draft.board if draft.board is not None else board,
        outcome=outcome,
        message=message,
        failure_class=failure_class,
        duration_s=round(duration_s, 4),
        worker=worker,
        finished_at=finished_at,
        versions=dict(versions),
        artifact=UNSET if draft.artifact is None else draft.artifact,
        debug_reports=list(draft.debug_reports) or UNSET,
        shard=UNSET if shard is None else shard,
        baseline=UNSET if draft.baseline is None else draft.baseline,
        quarantine=UNSET if draft.quarantine is None else draft.quarantine,
    )
    if draft.checks:
        main = main_check(draft.checks)
        for name in _MAIN_CHECK_FIELDS:
            if (value := getattr(main, name)) is not UNSET:
                setattr(record, name, value)
        record.checks = list(draft.checks)
        record.comparisons = [
            c for check in draft.checks if check.comparisons for c in check.comparisons
        ]
    return record
