"""Tests of et_hil.report.results (the JSON Lines results file shared by workers) and
of et_hil.report.record (the typed record of one test)."""

from __future__ import annotations

import json
import math
import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from et_hil.report.record import (
    CheckRecord,
    ComparisonRecord,
    Outcome,
    Record,
    RecordDraft,
    make_record,
)
from et_hil.report.results import ResultsWriter, read_records
from et_hil.report.sessions import LiveRun, live_dir, live_runs

WORKERS = 4
RECORDS_PER_WORKER = 50


def test_a_new_run_starts_the_file_afresh_and_calls_back(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ResultsWriter(path, run_id="run1").append({"test": "old"})
    ResultsWriter(path, run_id="run1").append({"test": "old2"})  # same run: appended
    assert [r["test"] for r in read_records(path)] == ["old", "old2"]
    started = []
    ResultsWriter(path, run_id="run2", on_new_run=started.append).append({"test": "new"})
    assert list(read_records(path)) == [{"test": "new"}]
    assert started == [frozenset({"run2"})]


def test_a_new_run_keeps_the_records_of_runs_still_live_and_drops_the_ended(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.jsonl"
    ended, live = LiveRun(path, "ended"), LiveRun(path, "live")
    ended.start()
    live.start()
    ResultsWriter(path, run_id="ended").append({"run_id": "ended", "test": "e"})
    ResultsWriter(path, run_id="live").append({"run_id": "live", "test": "l1"})
    assert [r["test"] for r in read_records(path)] == ["e", "l1"]  # both live: both kept
    ended.end()
    joined = []
    ResultsWriter(path, run_id="new", on_new_run=joined.append).append(
        {"run_id": "new", "test": "n"}
    )
    ResultsWriter(path, run_id="live").append({"run_id": "live", "test": "l2"})
    assert [r["test"] for r in read_records(path)] == ["l1", "n", "l2"]
    assert joined == [frozenset({"live", "new"})]
    live.end()
    assert not live_dir(path).exists()  # the last run to end leaves no folder behind


def test_a_killed_run_is_not_taken_for_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    code = (
        "import sys, time; from et_hil.report.sessions import LiveRun; "
        f"LiveRun({str(path)!r}, 'killed').start(); print('up', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "up"
        assert live_runs(path) == {"killed"}
    finally:
        child.kill()
        child.wait()
    assert live_runs(path) == set()
    assert not (live_dir(path) / "killed").exists()  # its leftover file is gone too


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


def _record(draft: RecordDraft, outcome: Outcome = "failed", board: str | None = "host") -> Record:
    return make_record(
        draft,
        run_id="r1",
        test="t.py::test_x[host]",
        outcome=outcome,
        message="",
        duration_s=1.23456,
        worker="main",
        finished_at="2025-01-01T00:00:00+0000",
        versions={"executorch": "1.5.1", "vela": None},
        board=board,
    )


def _comparison(reference: str, passed: bool, snr_db: float) -> ComparisonRecord:
    metrics = [{"index": 0, "snr_db": snr_db}]
    return ComparisonRecord(
        reference=reference, passed=passed, problems=[], metrics=metrics, checks=[]
    )


def test_record_repeats_the_first_failed_check_and_keeps_every_comparison(tmp_path: Path) -> None:
    passed = CheckRecord(
        artifact={"key": "a"}, ran=True, etdump=None, passed=True,
        comparisons=[_comparison("eager_float", True, math.inf)],
    )  # fmt: skip
    failed = CheckRecord(
        artifact={"key": "b"}, ran=True, passed=False, failure_class="numeric_mismatch",
        repro=str(tmp_path / "case-check2"),
        comparisons=[_comparison("fake_quant", False, 3.0), _comparison("eager_float", True, 30.0)],
    )  # fmt: skip
    draft = RecordDraft(board="host", failure_class="numeric_mismatch", checks=[passed, failed])
    fields = _record(draft).fields()
    assert fields["artifact"] == {"key": "b"}  # the failed check's, not the last built
    assert fields["repro"] == str(tmp_path / "case-check2")
    assert [c["reference"] for c in fields["comparisons"]] == [
        "eager_float", "fake_quant", "eager_float"
    ]  # fmt: skip
    assert fields["duration_s"] == 1.2346  # rounded to 4 places
    # set to None: written as null; never set: left out
    assert fields["checks"][0]["etdump"] is None
    assert "etdump" not in fields  # the main (failed) check never had one
    assert "debug" not in fields
    assert "debug_reports" not in fields
    assert "quantization_note" not in fields["checks"][0]

    path = tmp_path / "results.jsonl"
    ResultsWriter(path).append(_record(draft))
    [line] = read_records(path)
    assert line["checks"][0]["comparisons"][0]["metrics"][0]["snr_db"] == "inf"
    assert line["versions"] == {"executorch": "1.5.1", "vela": None}
    assert line["failure_class"] == "numeric_mismatch"


def test_record_failure_class_and_board_rules() -> None:
    # a failed test nobody classified is the test's own error
    assert _record(RecordDraft(board="tosa")).failure_class == "test_error"
    # a passed test has none, whatever was noted on the way
    assert _record(RecordDraft(failure_class="timeout"), outcome="passed").failure_class is None
    # a skip keeps its cause (an unavailable board)
    skipped = _record(RecordDraft(failure_class="board_unavailable"), outcome="skipped")
    assert skipped.failure_class == "board_unavailable"
    # the draft's board wins; the given one is for tests skipped before the board fixture
    assert _record(RecordDraft(board="tosa"), board="host").board == "tosa"
    assert _record(RecordDraft(), outcome="skipped", board="host").board == "host"
    # only et_build ran: its artifact is the record's, and there are no checks
    only_build = _record(RecordDraft(artifact={"key": "c"}), outcome="passed").fields()
    assert only_build["artifact"] == {"key": "c"}
    assert "checks" not in only_build
    assert "comparisons" not in only_build


def test_a_record_cannot_hold_values_json_cannot() -> None:
    draft = RecordDraft(checks=[CheckRecord(board_facts={"port": object()})])
    with pytest.raises(TypeError, match="cannot hold object values"):
        _record(draft).fields()
