"""Tests of et_hil.report.results (the JSON Lines results file shared by workers) and
of et_hil.report.record (the typed record of one test)."""

from __future__ import annotations

import json
import math
import multiprocessing
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from et_hil.errors import ConfigError
from et_hil.report.record import (
    CheckRecord,
    ComparisonRecord,
    Outcome,
    Record,
    RecordDraft,
    make_record,
)
from et_hil.report.record_parts import ArtifactSummary, OutputMetricsRecord
from et_hil.report.results import ResultsWriter, read_records, record_lines, record_of
from et_hil.report.sessions import LiveRun, live_dir, live_runs

WORKERS = 4
RECORDS_PER_WORKER = 50


def rec(test: str, **fields: Any) -> dict[str, Any]:
    """The least a line must hold to be a record: the test and its outcome."""
    return {"test": test, "outcome": "passed", **fields}


def names_in(path: Path) -> list[str]:
    return [r.test for r in read_records(path)]


def test_a_new_run_starts_the_file_afresh_and_calls_back(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ResultsWriter(path, run_id="run1").append(rec("old"))
    ResultsWriter(path, run_id="run1").append(rec("old2"))  # same run: appended
    assert names_in(path) == ["old", "old2"]
    started = []
    ResultsWriter(path, run_id="run2", on_new_run=started.append).append(rec("new"))
    assert names_in(path) == ["new"]
    assert started == [frozenset({"run2"})]


def test_a_new_run_keeps_the_records_of_runs_still_live_and_drops_the_ended(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.jsonl"
    ended, live = LiveRun(path, "ended"), LiveRun(path, "live")
    ended.start()
    live.start()
    ResultsWriter(path, run_id="ended").append(rec("e", run_id="ended"))
    ResultsWriter(path, run_id="live").append(rec("l1", run_id="live"))
    assert names_in(path) == ["e", "l1"]  # both live: both kept
    ended.end()
    joined = []
    ResultsWriter(path, run_id="new", on_new_run=joined.append).append(rec("n", run_id="new"))
    ResultsWriter(path, run_id="live").append(rec("l2", run_id="live"))
    assert names_in(path) == ["l1", "n", "l2"]
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
        child.communicate()  # waits, and closes its stdout pipe
    assert live_runs(path) == set()
    assert not (live_dir(path) / "killed").exists()  # its leftover file is gone too


def test_a_torn_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append(rec("1"))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"test": "2", "outc')  # a worker killed mid-write
    writer.append(rec("3"))
    assert names_in(path) == ["1", "3"]
    assert [line.number for line in record_lines(path)] == [1, 3]


def test_append_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    records = [
        rec("a", board="host", timings={"run_s": 0.25, "fidelity": "host-wall"}),
        rec("b", outcome="failed", failure_class="numeric_mismatch", checks=[]),
        rec("c", board_facts={"list": [1, 2.5, None, True, "x"]}),
    ]
    for record in records:
        writer.append(record)
    read = list(read_records(path))
    assert [r.test for r in read] == ["a", "b", "c"]
    assert (read[0].board, read[0].seconds("run_s"), read[0].fidelity) == (
        "host",
        0.25,
        "host-wall",
    )
    assert (read[1].outcome, read[1].failure_class, read[1].checks) == (
        "failed", "numeric_mismatch", []
    )  # fmt: skip
    assert read[2].board_facts == {"list": [1, 2.5, None, True, "x"]}
    # one line per record, each as written
    assert [line.text for line in record_lines(path)] == path.read_text().splitlines()
    assert len(path.read_text().splitlines()) == 3


def test_append_creates_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "results.jsonl"
    ResultsWriter(path).append(rec("1"))
    assert names_in(path) == ["1"]


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
    assert json.loads(line, parse_constant=_reject_constant) == {
        "snr_db": "inf",
        "worst": "-inf",
        "bad": "nan",
        "metrics": [{"snr_db": "inf", "max_abs": 0.0}],
        "shape": [1, 3],
        "artifact": "/cache/entries/ab/abc",
        "3": "int key",
    }


def test_infinities_written_as_strings_read_back_as_floats(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    metrics = [{"snr_db": math.inf, "max_abs": 0.0}, {"snr_db": -math.inf, "cosine": math.nan}]
    ResultsWriter(path).append(rec("t", comparisons=[{"reference": "r", "metrics": metrics}]))
    [record] = read_records(path)
    assert isinstance(record.comparisons, list)
    first, second = record.comparisons[0].metrics
    assert (first.snr_db, first.max_abs, second.snr_db) == (math.inf, 0.0, -math.inf)
    assert second.cosine is not None
    assert math.isnan(second.cosine)


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {name} in the results file")


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append(rec("1"))
    writer.append(rec("2", duration_s=1.5))
    # a worker killed mid-write leaves half a line (here cut inside a number)
    with path.open("a", encoding="utf-8") as f:
        f.write('{"duration_s": 1.')
    assert names_in(path) == ["1", "2"]


def test_read_records_missing_file(tmp_path: Path) -> None:
    assert list(read_records(tmp_path / "absent.jsonl")) == []


def _append_worker(path: str, worker: int) -> None:
    writer = ResultsWriter(Path(path))
    # a long payload makes an unlocked, interleaved write visible as a broken line
    padding = f"w{worker}-" * 2000
    for i in range(RECORDS_PER_WORKER):
        writer.append(rec(f"{worker}-{i}", worker=str(worker), message=padding))


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
    records = list(read_records(path))  # every line is whole: a record
    assert all(r.message == f"w{r.worker}-" * 2000 for r in records)
    order = [tuple(map(int, r.test.split("-"))) for r in records]
    assert sorted(order) == [(w, i) for w in range(WORKERS) for i in range(RECORDS_PER_WORKER)]
    # each worker's records are in its own order
    for w in range(WORKERS):
        assert [i for worker, i in order if worker == w] == list(range(RECORDS_PER_WORKER))


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
    metrics = [OutputMetricsRecord(index=0, snr_db=snr_db)]
    return ComparisonRecord(
        reference=reference, passed=passed, problems=[], metrics=metrics, checks=[]
    )


def test_record_repeats_the_first_failed_check_and_keeps_every_comparison(tmp_path: Path) -> None:
    passed = CheckRecord(
        artifact=ArtifactSummary(key="a"), ran=True, etdump=None, passed=True,
        comparisons=[_comparison("eager_float", True, math.inf)],
    )  # fmt: skip
    failed = CheckRecord(
        artifact=ArtifactSummary(key="b"), ran=True, passed=False,
        failure_class="numeric_mismatch",
        repro=str(tmp_path / "case-check2"),
        comparisons=[_comparison("fake_quant", False, 3.0), _comparison("eager_float", True, 30.0)],
    )  # fmt: skip
    draft = RecordDraft(board="host", failure_class="numeric_mismatch", checks=[passed, failed])
    fields = _record(draft).fields()
    assert fields["artifact"]["key"] == "b"  # the failed check's, not the last built
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
    assert '"snr_db": "inf"' in path.read_text()  # strict JSON on disk
    [line] = read_records(path)
    assert line == _record(draft)  # read back as the structure that was written
    assert line.checks
    assert line.checks[0].comparisons
    assert line.checks[0].comparisons[0].metrics[0].snr_db == math.inf
    assert line.versions == {"executorch": "1.5.1", "vela": None}
    assert line.failure_class == "numeric_mismatch"


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
    only_build = _record(RecordDraft(artifact=ArtifactSummary(key="c")), outcome="passed").fields()
    assert only_build["artifact"]["key"] == "c"
    assert "checks" not in only_build
    assert "comparisons" not in only_build


def test_a_record_cannot_hold_values_json_cannot() -> None:
    draft = RecordDraft(checks=[CheckRecord(board_facts={"port": object()})])
    with pytest.raises(TypeError, match="cannot hold object values"):
        _record(draft).fields()


# ---------------------------------------------------------------- reading typed records

DATA = Path(__file__).resolve().parent / "data" / "report"


@pytest.mark.parametrize("name", ["host_tosa.jsonl", "build_only_corstone320.jsonl"])
def test_the_committed_results_files_read_as_typed_records(name: str) -> None:
    # Written by et-hil 0.1.0 (see tests/data/report/README.txt), before some fields
    # existed: every line decodes, with the defaults of what it lacks.
    lines = list(record_lines(DATA / name))
    assert len(lines) == len((DATA / name).read_text().splitlines())
    records = [line.record for line in lines]
    assert all(r.outcome in ("passed", "skipped", "failed", "error") for r in records)
    built = [r for r in records if r.artifact]
    assert built
    assert all(r.artifact and r.artifact.pte_bytes for r in built)
    assert all(r.shard is msgspec.UNSET for r in records)  # shards came later


def test_a_ran_record_reads_its_timings_and_metrics() -> None:
    record = next(r for r in read_records(DATA / "host_tosa.jsonl") if r.board == "tosa" and r.ran)
    assert record.fidelity == "tosa-reference"
    assert record.seconds("execute_s") is not None
    assert record.seconds("execute_s") > 0
    assert record.comparisons
    assert record.comparisons[0].metrics[0].snr_db is not None


def test_a_vela_build_reads_its_estimates() -> None:
    record = next(r for r in read_records(DATA / "build_only_corstone320.jsonl") if r.vela)
    assert record.ran is False
    assert record.artifact
    assert record.artifact.vela
    assert record.artifact.vela.cycles_total


def test_a_line_of_the_wrong_type_names_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    good = json.dumps(rec("a"))
    path.write_text(f"{good}\n\n" + json.dumps(rec("b", duration_s="slow")) + "\n")
    with pytest.raises(ConfigError) as info:
        list(read_records(path))
    message = str(info.value)
    assert message.startswith(f"results file {path}, line 3: not a result record: ")
    assert "`$.duration_s`" in message
    assert "mend or delete a line edited by hand" in message


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"test": "t", "board": "host", "figures": {"pte_bytes": 1.0}}', "field `outcome`"),
        ('{"test": "t", "outcome": "flaky"}', "Invalid enum value 'flaky'"),
        ("[1, 2]", "Expected `object`, got `array`"),
        ("test,outcome", "not JSON"),
    ],
    ids=["a baseline entry", "an unknown outcome", "not an object", "csv"],
)
def test_what_is_not_a_record_is_refused_with_why(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=rf"line 1: not a result record: .*{re.escape(why)}"):
        list(read_records(path))


def test_infinity_literals_are_read(tmp_path: Path) -> None:
    # Python's json writes them; a hand-made record may hold them.
    path = tmp_path / "results.jsonl"
    path.write_text(
        '{"test": "t", "outcome": "passed", "comparisons": '
        '[{"reference": "r", "metrics": [{"snr_db": Infinity}]}]}\n'
    )
    [record] = read_records(path)
    assert record.comparisons
    assert record.comparisons[0].metrics[0].snr_db == math.inf


def test_record_of_fields_is_what_reading_the_line_gives(tmp_path: Path) -> None:
    fields = rec("t", board="host", timings={"execute_s": math.inf, "fidelity": "host-wall"})
    path = tmp_path / "results.jsonl"
    ResultsWriter(path).append(fields)
    assert list(read_records(path)) == [record_of(fields)]
    with pytest.raises(ConfigError, match="not a result record"):
        record_of({"test": "t"})
