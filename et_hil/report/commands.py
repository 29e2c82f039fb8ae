"""The ``et-hil merge`` and ``et-hil baseline`` commands (added to :mod:`et_hil.cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from et_hil.errors import ConfigError
from et_hil.report import baseline as baselines
from et_hil.report.junit import write_junit
from et_hil.report.merge import merge_results, write_results
from et_hil.report.record import Record
from et_hil.report.results import read_records


def _records(paths: Sequence[str]) -> list[Record]:
    """The records of results files (a missing or empty one, or a line that is not a
    record, is a ConfigError naming it)."""
    records: list[Record] = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"results file {path} does not exist")
        found = list(read_records(path))
        if not found:
            raise ConfigError(f"results file {path} has no records (did its run finish a test?)")
        records += found
    return records


def _board_limits(args: argparse.Namespace) -> dict[str, Mapping[str, Any]]:
    """Each known board's ``[baseline]`` limits (built-in boards and ``--board-file``)."""
    from et_hil.boards.spec import load_boards

    return {name: spec.baseline_limits for name, spec in load_boards(args.board_file).items()}


def _overrides(record: Record, limits: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The limits a record is judged by: its board file's, then those its pytest run
    applied (board file and ``et_baseline`` markers, kept in the record)."""
    recorded = record.baseline.limits if record.baseline else {}
    return [limits.get(str(record.board), {}), recorded]


def baseline_changes(
    records: Sequence[Record], path: Path, board_files: Sequence[str] = ()
) -> list[baselines.ChangeRow]:
    """The changes of ``records`` against the baseline at ``path`` (as the HTML report
    lists them)."""
    from et_hil.boards.spec import load_boards

    baseline = baselines.Baseline.load(path)
    limits = {name: spec.baseline_limits for name, spec in load_boards(board_files).items()}
    return [
        baselines.ChangeRow(record.test, record.board, str(path), change)
        for record in records
        for change in baseline.changes_for(record, _overrides(record, limits)) or ()
    ]


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge results files into one results file (and JUnit); name what never reported."""
    merged = merge_results(
        [Path(p) for p in args.results],
        expect_shards=args.expect_shards,
        expect_boards=args.expect_board,
    )
    try:
        write_results(merged.lines, Path(args.output))
        if args.junit:
            write_junit(merged.records, Path(args.junit))
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    for name, count in merged.inputs.items():
        print(f"  {count:6d} records  {name}")
    boards = sorted({str(r.board) for r in merged.records})
    print(
        f"merged {len(merged.records)} records ({', '.join(boards) or 'no boards'}) into "
        f"{args.output}" + (f" and {args.junit}" if args.junit else "")
    )
    if merged.duplicates or merged.replaced:
        print(
            f"dropped {merged.duplicates} duplicate record(s); {merged.replaced} record(s) of "
            "another run of the same test and board: the newest kept"
        )
    for line in merged.missing:
        print(f"missing: {line}")
    return 1 if merged.missing and not args.allow_missing else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """``update``: write a baseline from results; ``compare``: print the changes."""
    records = _records(args.results)
    limits = _board_limits(args)
    path = Path(args.baseline)
    if args.action == "update":
        baseline = baselines.Baseline.load(path) if path.exists() else baselines.Baseline()
        counts = baseline.update(records, overrides_for=lambda board: [limits.get(board, {})])
        try:
            baseline.write(path)
        except OSError as exc:
            raise ConfigError(f"baseline {path}: cannot write it ({exc.strerror})") from exc
        print(
            f"wrote {path}: {len(baseline.entries)} entries ({counts['added']} added, "
            f"{counts['changed']} changed, {counts['kept']} kept)"
        )
        return 0
    baseline = baselines.Baseline.load(path)
    regressions = 0
    for record in records:
        changes = baseline.changes_for(record, _overrides(record, limits))
        shown = [c for c in changes or () if c.kind in ("regression", "warning", "improvement")]
        if not shown:
            continue
        regressions += sum(c.kind == "regression" for c in shown)
        print(f"{record.test} on {record.board}:")
        print(
            "  "
            + baselines.table(shown, ("regression", "warning", "improvement")).replace("\n", "\n  ")
        )
    print(f"{regressions} regression(s) against {path} over {len(records)} records")
    return 1 if regressions else 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``merge`` and ``baseline`` to the ``et-hil`` subcommands."""
    merge = sub.add_parser(
        "merge",
        parents=[common],
        help="merge the results of shards, workers, boards and machines into one file",
    )
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="results files (.jsonl)")
    merge.add_argument("-o", "--output", required=True, metavar="FILE", help="merged results")
    merge.add_argument("--junit", metavar="FILE", help="also write a JUnit XML file")
    merge.add_argument(
        "--expect-shards", type=int, metavar="N", help="name the shards of N that never reported"
    )
    merge.add_argument(
        "--expect-board",
        action="append",
        default=[],
        metavar="NAME",
        help="name this board if it never reported (repeatable)",
    )
    merge.add_argument(
        "--allow-missing",
        action="store_true",
        help="exit 0 even when a shard, board or planned test never reported",
    )
    merge.set_defaults(func=cmd_merge)
    baseline = sub.add_parser(
        "baseline", parents=[common], help="write a regression baseline, or compare with one"
    )
    baseline.add_argument(
        "action",
        choices=("update", "compare"),
        help="update: take passed tests' figures into FILE, keeping other entries; "
        "compare: print regressions, warnings and improvements (exit 1 on a regression)",
    )
    baseline.add_argument("results", nargs="+", metavar="RESULTS", help="results files (.jsonl)")
    baseline.add_argument(
        "--baseline", required=True, metavar="FILE", help="the baseline file (JSON Lines)"
    )
    baseline.set_defaults(func=cmd_baseline)
