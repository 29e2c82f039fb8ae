"""The plugin's regression duties: baselines, quarantine and shards.

Called from :mod:`et_hil.pytest_plugin.plugin`'s hooks:

- :func:`select_shard` keeps this shard's tests (``--et-shard i/n``);
- :func:`write_plan` notes the tests a run is about to run, for ``et-hil merge``;
- :func:`apply_baseline` fails a test whose figures regressed past their limits;
- :func:`apply_quarantine` turns a known failure into ``xfailed`` until its entry
  expires, and fails the test once it has;
- :func:`summary_lines` says what the run found, for the terminal summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from et_hil.errors import FailureClass
from et_hil.pytest_plugin.fixtures import draft_of
from et_hil.pytest_plugin.options import CONFIG_KEY, RUN_ID_KEY, marker_baseline_limits
from et_hil.pytest_plugin.session import HarnessConfig
from et_hil.pytest_plugin.shard import split
from et_hil.report import baseline as baselines
from et_hil.report.merge import write_planned
from et_hil.report.quarantine import find_entry
from et_hil.report.record import Record, make_record
from et_hil.report.record_parts import BaselineRecord


def _board_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("board") if callspec is not None else None


def select_shard(
    config: pytest.Config,
    items: list[pytest.Item],
    shard: tuple[int, int],
    durations: Mapping[str, float],
) -> None:
    """Keep the items of shard ``shard`` (index from 1, count); deselect the rest."""
    index, count = shard
    assignment = split([item.nodeid for item in items], count, durations)
    kept = [item for item, chosen in zip(items, assignment, strict=True) if chosen == index - 1]
    dropped = [item for item, chosen in zip(items, assignment, strict=True) if chosen != index - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


def write_plan(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    """Write the (test, board) pairs of this run beside its results file.

    Under xdist every worker collects the same tests; the first one writes.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("workerid") != "gw0":
        return
    if config.option.collectonly:  # nothing will run: the last run's plan stays
        return
    pairs = [
        (item.nodeid, _board_of(item) or "")
        for item in items
        if "board" in getattr(item, "fixturenames", ())
    ]
    if not pairs:
        return
    hc = config.stash[CONFIG_KEY]
    write_planned(
        hc.results_path, run_id=config.stash[RUN_ID_KEY], shard=hc.shard_label, tests=pairs
    )


def _limit_overrides(item: pytest.Item, hc: HarnessConfig, board: str | None) -> list[Any]:
    """Board file's ``[baseline]``, then ``et_baseline`` markers, the closest last."""
    overrides: list[Mapping[str, Any]] = []
    if board is not None and board in hc.boards:
        overrides.append(hc.boards[board].baseline_limits)
    for marker in reversed(list(item.iter_markers("et_baseline"))):
        overrides.append(marker_baseline_limits(marker.args, marker.kwargs, where=item.nodeid))
    return overrides


def apply_baseline(item: pytest.Item, report: pytest.TestReport) -> None:
    """Compare the test's figures with ``--et-baseline`` (at the end of its call).

    The changes go into the record; a regression whose limit fails turns a passed
    (or build-only skipped) test into a failure with the table as its message.
    """
    hc = item.config.stash[CONFIG_KEY]
    draft = draft_of(item)
    if hc.baseline is None or (not draft.checks and draft.artifact is None):
        return
    board = draft.board or _board_of(item)
    record = make_record(
        draft,
        run_id="",
        test=item.nodeid,
        outcome="passed",
        message="",
        duration_s=0.0,
        worker="",
        finished_at="",
        versions={},
        board=board,
    )
    overrides = _limit_overrides(item, hc, board)
    changes = hc.baseline.changes_for(record, overrides)
    where = str(hc.baseline.path)
    # The limits over the defaults (board file, then markers), so that offline
    # comparisons (et-hil baseline compare, the report) judge as this run did.
    limits = {k: v for table in overrides for k, v in table.items()}
    if changes is None:
        draft.baseline = BaselineRecord(file=where, entry=False, limits=limits)
        return
    draft.baseline = BaselineRecord(file=where, entry=True, limits=limits, changes=changes)
    regressions = [c for c in changes if c.kind == "regression"]
    fails = bool(regressions) and (report.passed or report.skipped)
    noted = [c for c in changes if c.kind in ("regression", "warning", "improvement")]
    if noted and not fails:  # (a failure prints the table as its message)
        report.sections.append(
            ("et-hil baseline", baselines.table(noted, ("regression", "warning", "improvement")))
        )
    if fails:
        report.outcome = "failed"
        report.longrepr = (
            f"{len(regressions)} figure(s) regressed against baseline {where} "
            f"({item.nodeid} on {board}):\n{baselines.table(changes)}"
        )
        if draft.failure_class is None:
            draft.failure_class = str(FailureClass.REGRESSION)


def apply_quarantine(item: pytest.Item, report: pytest.TestReport) -> None:
    """Apply the test's quarantine entry (``--et-quarantine``) to its setup or call report."""
    hc = item.config.stash[CONFIG_KEY]
    entry = find_entry(hc.quarantine, item.nodeid, _board_of(item))
    if entry is None:
        return
    draft = draft_of(item)
    expired = entry.expired(hc.today)
    draft.quarantine = entry.record(hc.today)
    if expired:
        if report.when == "call" or report.failed:
            text = "" if report.passed or report.skipped else f"\n\n{report.longrepr}"
            report.outcome = "failed"
            report.longrepr = (
                f"quarantine entry {entry.line} expired on {entry.expires} "
                f"({entry.reason}; {entry.issue}): fix the test, or renew the entry "
                f"after review{text}"
            )
            if draft.failure_class is None:
                draft.failure_class = str(FailureClass.QUARANTINE_EXPIRED)
        return
    if report.failed:
        # Keep the true failure for the record; pytest counts it as xfailed.
        report.et_quarantined_failure = str(report.longrepr)[:2000]  # type: ignore[attr-defined]
        report.outcome = "skipped"
        report.wasxfail = f"quarantined until {entry.expires}: {entry.reason} ({entry.issue})"


def summary_lines(records: Sequence[Record], hc: HarnessConfig) -> list[str]:
    """The baseline and quarantine lines of the terminal summary."""
    lines = []
    if hc.baseline is not None:
        kinds: dict[str, list[str]] = {}
        no_entry = 0
        for record in records:
            found = record.baseline
            if not found:
                continue
            no_entry += not found.entry
            for c in found.changes:
                kinds.setdefault(c.kind, []).append(
                    f"  {c.kind:<11} {record.test}: {c.figure} "
                    f"{baselines.fmt(c.baseline)} -> {baselines.fmt(c.now)} "
                    f"({baselines.change_text(c)}, limit {c.limit})"
                )
        counts = ", ".join(
            f"{len(kinds.get(k, []))} {k}s" for k in ("regression", "warning", "improvement")
        )
        lines.append(f"baseline {hc.baseline.path}: {counts}; {no_entry} test(s) without an entry")
        for kind in ("regression", "warning", "improvement"):
            shown = kinds.get(kind, [])
            lines += shown[:20]
            if len(shown) > 20:
                lines.append(f"  ... and {len(shown) - 20} more {kind}s (see the records)")
    quarantined = [(r, r.quarantine) for r in records if r.quarantine]
    if quarantined or any(e.expired(hc.today) for e in hc.quarantine):
        held = sum(1 for r, _ in quarantined if r.quarantined)
        expired = [(r, entry) for r, entry in quarantined if entry.expired]
        passed = [r for r, entry in quarantined if r.outcome == "passed" and not entry.expired]
        lines.append(
            f"quarantine: {held} known failure(s) did not fail the run; "
            f"{len(expired)} expired entr{'y' if len(expired) == 1 else 'ies'} failed"
        )
        lines += [f"  passed while quarantined (drop its entry): {r.test}" for r in passed]
        lines += [f"  expired {e.expires}: {r.test} ({e.entry})" for r, e in expired]
    used = {entry.entry for _, entry in quarantined}
    for entry in hc.quarantine:
        if entry.line not in used and entry.expired(hc.today):
            lines.append(f"quarantine: expired entry {entry.line} matched no test of this run")
    return lines
