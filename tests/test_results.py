"""Tests of harness.report.results: the JSON Lines results file shared by workers."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path
from typing import Any

from harness.report.results import ResultsWriter, read_records

WORKERS = 4
RECORDS_PER_WORKER = 50


def test_a_new_run_starts_the_file_afresh_and_calls_back(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ResultsWriter(path, run_id="run1").append({"test": "old"})
    ResultsWriter(path, run_id="run1").append({"test": "old2"})  # same run: appended
    assert [r["test"] for r in read_records(path)] == ["old", "old2"]
    started = []
    ResultsWriter(path, run_id="run2", on_new_run=lambda: started.append(1)).append({"test": "new"})
    assert list(read_records(path)) == [{"test": "new"}]
    assert started == [1]


def test_a_torn_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append({"n": 1})
    with path.open("a", encoding="utf-8") as f:
        f.write('{"n": 2, "outc')  # a worker killed mid-write
    writer.append({"n": 3})
    assert list(read_records(path)) == [{"n": 1}, {"n": 3}]


def test_append_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    records = [
        {"test": "a", "outcome": "passed", "board": "host", "timings": {"run_s": 0.25}},
        {"test": "b", "outcome": "failed", "failure_class": "numeric_mismatch", "checks": []},
        {"test": "c", "nested": {"list": [1, 2.5, None, True, "x"]}},
    ]
    for record in records:
        writer.append(record)
    assert list(read_records(path)) == records
    # one line per record
    assert len(path.read_text().splitlines()) == 3


def test_append_creates_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "results.jsonl"
    ResultsWriter(path).append({"n": 1})
    assert list(read_records(path)) == [{"n": 1}]


def test_infinities_nan_paths_and_tuples_become_json(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append(
        {
            "snr_db": math.inf,
            "worst": -math.inf,
            "bad": math.nan,
            "metrics": [{"snr_db": math.inf, "max_abs": 0.0}],
            "shape": (1, 3),
            "artifact": Path("/cache/entries/ab/abc"),
            3: "int key",
        }
    )
    # strict JSON: no Infinity/NaN literals on disk
    line = path.read_text().strip()
    json.loads(line, parse_constant=_reject_constant)
    [record] = read_records(path)
    assert record == {
        "snr_db": "inf",
        "worst": "-inf",
        "bad": "nan",
        "metrics": [{"snr_db": "inf", "max_abs": 0.0}],
        "shape": [1, 3],
        "artifact": "/cache/entries/ab/abc",
        "3": "int key",
    }


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {name} in the results file")


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append({"n": 1})
    writer.append({"n": 2})
    # a worker killed mid-write leaves half a line
    with path.open("a", encoding="utf-8") as f:
        f.write('{"n": 3, "outc')
    assert list(read_records(path)) == [{"n": 1}, {"n": 2}]


def test_read_records_missing_file(tmp_path: Path) -> None:
    assert list(read_records(tmp_path / "absent.jsonl")) == []


def _append_worker(path: str, worker: int) -> None:
    writer = ResultsWriter(Path(path))
    # a long payload makes an unlocked, interleaved write visible as a broken line
    padding = f"w{worker}-" * 2000
    for i in range(RECORDS_PER_WORKER):
        writer.append({"worker": worker, "i": i, "padding": padding})


def test_concurrent_appends_from_processes(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_append_worker, args=(str(path), w)) for w in range(WORKERS)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == WORKERS * RECORDS_PER_WORKER
    records = [json.loads(line) for line in lines]  # every line is whole, valid JSON
    assert all(r["padding"] == f"w{r['worker']}-" * 2000 for r in records)
    assert sorted((r["worker"], r["i"]) for r in records) == [
        (w, i) for w in range(WORKERS) for i in range(RECORDS_PER_WORKER)
    ]
    # each worker's records are in its own order
    for w in range(WORKERS):
        assert [r["i"] for r in records if r["worker"] == w] == list(range(RECORDS_PER_WORKER))
    assert len(list(read_records(path))) == WORKERS * RECORDS_PER_WORKER
