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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from et_hil.errors import ConfigError
from et_hil.report.results import read_records


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
            plan
            for plan in _read_plans(path)
            if plan.get("run_id") != run_id and plan.get("run_id") in live
        ]
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps({"plans": [*others, this]}), encoding="utf-8")
        partial.replace(path)


@dataclasses.dataclass
class Merged:
    """The merged records and what the merge found.

    Attributes:
        records: one per (test, board), sorted by test then board.
        inputs: records read per input file.
        duplicates: records dropped as the same record seen again.
        replaced: older records replaced by a newer run's.
        missing: one line per thing that never reported.
    """

    records: list[dict[str, Any]]
    inputs: dict[str, int]
    duplicates: int = 0
    replaced: int = 0
    missing: list[str] = dataclasses.field(default_factory=list)


def merge_results(
    paths: Sequence[Path],
    *,
    expect_shards: int | None = None,
    expect_boards: Iterable[str] = (),
) -> Merged:
    """Merge results files (see the module's docstring).

    Raises:
        ConfigError: an input file is missing, naming it.
    """
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    inputs: dict[str, int] = {}
    duplicates = replaced = 0
    planned: list[dict[str, Any]] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"results file {path} does not exist: a shard or job that never ran, "
                "or a wrong path (check the artifact download)"
            )
        count = 0
        for record in read_records(path):
            count += 1
            key = (str(record.get("test")), str(record.get("board")))
            old = chosen.get(key)
            if old is None:
                chosen[key] = record
            elif old.get("run_id") == record.get("run_id"):
                duplicates += 1
            else:
                replaced += 1  # one of the two stays: the newer
                if _finished(record) >= _finished(old):
                    chosen[key] = record
        inputs[str(path)] = count
        planned += _read_plans(planned_path(path))
    records = [chosen[key] for key in sorted(chosen)]
    missing = _missing(records, planned, expect_shards, list(expect_boards))
    return Merged(records, inputs, duplicates, replaced, missing)


def _finished(record: Mapping[str, Any]) -> datetime.datetime:
    """When a record's test finished: local time with its offset, compared in UTC
    (machines of a matrix may sit in different time zones)."""
    text = str(record.get("finished_at") or "")
    try:
        when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def _read_plans(path: Path) -> list[dict[str, Any]]:
    """The plans in a ``.planned.json`` (one run's plan, as older runs wrote it, or
    ``{"plans": [...]}`` of the runs that shared a results file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    plans = data.get("plans") if "plans" in data else [data]
    return [p for p in plans or [] if isinstance(p, dict)]


def _missing(
    records: Sequence[Mapping[str, Any]],
    planned: Sequence[Mapping[str, Any]],
    expect_shards: int | None,
    expect_boards: Sequence[str],
) -> list[str]:
    """What never reported: shards, boards, planned tests."""
    missing = []
    shards = {str(r["shard"]) for r in records if r.get("shard")}
    shards |= {str(p["shard"]) for p in planned if p.get("shard")}
    counts = {int(n) for s in shards if (n := s.partition("/")[2]).isdigit()}
    if expect_shards:
        counts.add(expect_shards)
    # Per board: a matrix job is one board's shard, and another board's shard i
    # reporting says nothing of this board's.
    boards = {str(r.get("board")) for r in records}
    reported = {(str(r.get("board")), str(r["shard"])) for r in records if r.get("shard")}
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
    have = {(str(r.get("test")), str(r.get("board"))) for r in records}
    for plan in planned:
        lost = [tuple(t) for t in plan.get("tests", []) if tuple(t) not in have]
        if lost:
            shard = f" of shard {plan['shard']}" if plan.get("shard") else ""
            sample = ", ".join(f"{t} on {b}" for t, b in lost[:3])
            more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
            missing.append(
                f"{len(lost)} planned test(s){shard} (run {plan.get('run_id')}) never "
                f"finished: {sample}{more}"
            )
    return missing


def write_results(records: Iterable[Mapping[str, Any]], path: Path) -> None:
    """Write records as a results file (whole, through a temporary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    partial.replace(path)
