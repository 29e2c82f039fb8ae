"""Benchmark: ``et-hil report`` over 10,000 records (and a trend of several such runs).

    python benchmarks/report_timing.py [--records 10000] [--boards 4] [--runs 3]

The records are real ones (tests/data/report/, from runs of ``pytest suites``)
varied into many tests on several boards: each copy gets its own test id, its SNR
moved a little, and about 3% of them fail (some with a log on disk, some
quarantined, some with changes against a baseline). Prints the seconds of each
stage in-process, then of the whole command as a user runs it (``et-hil report``
in a fresh process, Python start-up included). A benchmark, not a test: numbers go
to closing notes and the README.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from et_hil.report import html, plots
from et_hil.report.baseline import recorded_changes
from et_hil.report.results import record_lines

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "report"
BOARDS = ("host", "tosa", "corstone320", "corstone300", "serial-u55", "qemu-m55")


def _templates() -> list[dict[str, Any]]:
    """The real records that ran or were built (skipped ones add no figures)."""
    found = []
    for path in sorted(DATA.glob("*.jsonl")):
        found += [
            json.loads(line.text)  # templates to vary: plain JSON
            for line in record_lines(path)
            if line.record.comparisons or line.record.vela
        ]
    return found


def _vary(template: dict[str, Any], test: str, board: str, rng: random.Random) -> dict[str, Any]:
    record = copy.deepcopy(template)
    record.update(test=test, board=board)
    for comparison in record.get("comparisons") or ():
        for metric in comparison.get("metrics") or ():
            if isinstance(metric.get("snr_db"), float):
                metric["snr_db"] += rng.uniform(-8, 8)  # a spread, as real suites have
    return record


def make_records(
    count: int, boards: Sequence[str], seed: int, logs: Path, stamp: str
) -> Iterator[dict[str, Any]]:
    """``count`` records: ``count // len(boards)`` tests on each board."""
    rng = random.Random(seed)
    templates = _templates()
    for i in range(count // len(boards)):
        template = templates[i % len(templates)]
        head, _, params = str(template["test"]).partition("[")
        params = params.rstrip("]").partition("-")[2] or "case"
        for board in boards:
            record = _vary(template, f"{head}[{board}-{params}_{i:05}]", board, rng)
            record["finished_at"] = stamp
            if rng.random() < 0.03:
                record.update(
                    outcome=rng.choice(("failed", "error")),
                    failure_class=rng.choice(("numeric_mismatch", "crash", "timeout")),
                    message=f"case {i} on {board}: outside tolerance\n" + "detail line\n" * 20,
                )
                if rng.random() < 0.3:  # a log left on disk, read by the report
                    run_dir = logs / f"{board}-{i}"
                    run_dir.mkdir(parents=True, exist_ok=True)
                    (run_dir / "fvp.log").write_text("runner output line\n" * 2000)
                    record["run_dir"] = str(run_dir)
                if rng.random() < 0.2:
                    record["quarantine"] = {"reason": "known", "issue": "#1", "expires": "2027"}
            if rng.random() < 0.02:
                change = rng.uniform(-0.1, 0.1)
                record["baseline"] = {
                    "file": "baseline.json",
                    "changes": [
                        {
                            "figure": "pte_bytes",
                            "baseline": 1000,
                            "now": 1000 * (1 + change),
                            "change": change,
                            "limit": "+2%",
                            "kind": "regression" if change > 0.02 else "improvement",
                            "action": "fail",
                        }
                    ],
                }
            yield record


def _write(path: Path, records: Iterator[dict[str, Any]]) -> int:
    count = 0
    with path.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            count += 1
    return count


def _timed(what: str, since: float) -> float:
    now = time.perf_counter()
    print(f"  {what:<34} {now - since:6.2f} s")
    return now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="records per run")
    parser.add_argument("--boards", type=int, default=4, help=f"boards (of {len(BOARDS)})")
    parser.add_argument("--runs", type=int, default=3, help="results files for the trend")
    args = parser.parse_args()
    boards = BOARDS[: args.boards]
    with tempfile.TemporaryDirectory(prefix="et-hil-report-bench-") as tmp:
        folder = Path(tmp)
        files = []
        for n in range(args.runs):
            path = folder / f"run{n}.jsonl"
            stamp = f"2026-12-{n + 1:02}T12:00:00+0000"
            written = _write(path, make_records(args.records, boards, n, folder / "logs", stamp))
            files.append(path)
        size = files[-1].stat().st_size / 1e6
        print(f"{written} records per run ({len(boards)} boards), {size:.1f} MB per file")

        print("in-process, current run only:")
        start = time.perf_counter()
        import matplotlib.pyplot  # noqa: F401  (a fixed cost, timed on its own)

        start = _timed("import matplotlib", start)
        runs = html.load_runs(files[-1:])
        t = _timed("load_runs", start)
        records = html.latest_records(runs[-1].records)
        body = html._matrix(records) + html._failures(records)  # the page's two big parts
        t = _timed("matrix + failures", t)
        points = plots.points_of(records)
        t = _timed("figures of each record", t)
        plots.accuracy_plots(points)
        t = _timed("accuracy plots", t)
        plots.vela_plot(points)
        t = _timed("vela plot", t)
        plots.baseline_plot(recorded_changes(records))
        t = _timed("baseline plot", t)
        out = folder / "report.html"
        html.write_report(runs, out)
        _timed("write_report (all of it)", t)
        print(
            f"  page: {out.stat().st_size / 1e6:.1f} MB, matrix+failures {len(body) / 1e6:.1f} MB"
        )

        for given in (files[-1:], files):
            command = ["et-hil", "report", *map(str, given), "-o", str(out)]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            print(f"et-hil report, {len(given)} file(s) x {written} records: {seconds:.2f} s")
            print(f"  {done.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
