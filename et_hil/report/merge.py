"""Merging results: the shards, workers, boards and machines of a matrix into one file.

Every input is a results file (JSON Lines, :mod:`et_hil.report.results`). A test
on a board appears once in the output: the same record given twice (the same
run) is dropped; a record from another run (a retried shard) replaces the older
one by ``finished_at``. What never reported is named: shards of an ``i/n`` split
with no record, boards expected but absent, and tests a shard planned (its
``.planned.json``, written at collection) but never finished.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from et_hil.errors import ConfigError
from et_hil.report.record import Record
from et_hil.report.results import RecordLine, record_lines


def planned_path(results: Path) -> Path:
    """Where a run writes the tests it collected, beside its results file."""
    results = Path(results)
    return results.with_name(results.stem + ".planned.json")


def write_planned(
    results: Path, *, run_id: str, shard: str | None, tests: Sequence[tuple[str, str]]
) -> None:
    """Write the (test, board) pairs a run is about to run, for ``et-hil merge``.

    The plans of other runs still live on the same results file stay beside it
    (two sessions in one folder share the file; see :mod:`et_hil.report.sessions`).
    """
    import filelock

    from et_hil.report.sessions import live_runs

    path = planned_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    this = {"run_id": run_id, "shard": shard, "tests": [list(t) for t in tests]}
    with filelock.FileLock(str(results) + ".lock"):
        live = live_runs(Path(results))
        others = [
            msgspec.to_builtins(plan)
            for plan in _read_plans(path)
            if plan.run_id != run_id and plan.run_id in live
        ]
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps({"plans": [*others, this]}), encoding="utf-8")
        partial.replace(path)


class Plan(msgspec.Struct, kw_only=True):
    """The tests one run was about to run (its ``.planned.json``, written at collection).

    Attributes:
        run_id: the run.
        shard: its ``i/n`` shard, if it was one.
        tests: (test, board) pairs.
    """

    run_id: str | None = None
    shard: str | None = None
    tests: list[tuple[str, str]] = msgspec.field(default_factory=list)


class _Plans(msgspec.Struct):
    plans: list[Plan]


@dataclasses.dataclass
class Merged:
    """The merged records and what the merge found.

    Attributes:
        lines: one record per (test, board), sorted by test then board, with its
            line as its results file holds it.
        inputs: records read per input file.
        duplicates: records dropped as the same record seen again.
        replaced: older records replaced by a newer run's.
        missing: one line per thing that never reported.
    """

    lines: list[RecordLine]
    inputs: dict[str, int]
    duplicates: int = 0
    replaced: int = 0
    missing: list[str] = dataclasses.field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        """The merged records, in order."""
        return [line.record for line in self.lines]


def merge_results(
    paths: Sequence[Path],
    *,
    expect_shards: int | None = None,
    expect_boards: Iterable[str] = (),
) -> Merged:
    """Merge results files (see the module's docstring).

    Raises:
        ConfigError: an input file is missing, or a line of one is not a record,
            naming it.
    """
    chosen: dict[tuple[str, str], RecordLine] = {}
    inputs: dict[str, int] = {}
    duplicates = replaced = 0
    planned: list[Plan] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"results file {path} does not exist: a shard or job that never ran, "
                "or a wrong path (check the artifact download)"
            )
        count = 0
        for line in record_lines(path):
            count += 1
            record = line.record
            key = (record.test, str(record.board))
            old = chosen.get(key)
            if old is None:
                chosen[key] = line
            elif old.record.run_id == record.run_id:
                duplicates += 1
            else:
                replaced += 1  # one of the two stays: the newer
                if _finished(record) >= _finished(old.record):
                    chosen[key] = line
        inputs[str(path)] = count
        planned += _read_plans(planned_path(path))
    lines = [chosen[key] for key in sorted(chosen)]
    missing = _missing([line.record for line in lines], planned, expect_shards, list(expect_boards))
    return Merged(lines, inputs, duplicates, replaced, missing)


def _finished(record: Record) -> datetime.datetime:
    """When a record's test finished: local time with its offset, compared in UTC
    (machines of a matrix may sit in different time zones)."""
    text = record.finished_at
    try:
        when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def _read_plans(path: Path) -> list[Plan]:
    """The plans in a ``.planned.json`` (``{"plans": [...]}`` of the runs that shared
    a results file, or one run's plan, as older runs wrote it); none when it is
    missing or unreadable (a plan only adds to what the merge names)."""
    try:
        text = path.read_bytes()
    except OSError:
        return []
    try:
        return msgspec.json.decode(text, type=_Plans).plans
    except msgspec.DecodeError:
        pass
    try:
        return [msgspec.json.decode(text, type=Plan)]
    except msgspec.DecodeError:
        return []


def _missing(
    records: Sequence[Record],
    planned: Sequence[Plan],
    expect_shards: int | None,
    expect_boards: Sequence[str],
) -> list[str]:
    """What never reported: shards, boards, planned tests."""
    missing = []
    shards = {r.shard for r in records if r.shard}
    shards |= {p.shard for p in planned if p.shard}
    counts = {int(n) for s in shards if (n := s.partition("/")[2]).isdigit()}
    if expect_shards:
        counts.add(expect_shards)
    # Per board: a matrix job is one board's shard, and another board's shard i
    # reporting says nothing of this board's.
    boards = {str(r.board) for r in records}
    reported = {(str(r.board), r.shard) for r in records if r.shard}
    sharded_boards = {board for board, _ in reported} | set(expect_boards)
    if expect_shards:
        sharded_boards |= boards
    for board in sorted(sharded_boards if counts else ()):
        for count in sorted(counts):
            absent = [
                f"{i}/{count}"
                for i in range(1, count + 1)
                if (board, f"{i}/{count}") not in reported
            ]
            if absent:
                missing.append(
                    f"board {board}: shard(s) {', '.join(absent)} never reported a record"
                )
    for board in expect_boards:
        if board not in boards:
            missing.append(f"board {board} never reported a record")
    have = {(r.test, str(r.board)) for r in records}
    for plan in planned:
        lost = [t for t in plan.tests if t not in have]
        if lost:
            shard = f" of shard {plan.shard}" if plan.shard else ""
            sample = ", ".join(f"{t} on {b}" for t, b in lost[:3])
            more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
            missing.append(
                f"{len(lost)} planned test(s){shard} (run {plan.run_id}) never "
                f"finished: {sample}{more}"
            )
    return missing


def write_results(lines: Iterable[RecordLine], path: Path) -> None:
    """Write records as a results file, each line as it was read (whole, through a
    temporary file): a merge drops and orders records, it never rewrites one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line.text + "\n")
    partial.replace(path)
