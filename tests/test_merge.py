"""Tests of et_hil.report.merge and et_hil.report.junit: one record per test and board
from shards and retries, what never reported named, and JUnit XML as CI reads it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from msgspec import UNSET

from et_hil.errors import ConfigError
from et_hil.report.junit import junit_xml, write_junit
from et_hil.report.merge import (
    merge_results,
    planned_path,
    write_planned,
    write_results,
)
from et_hil.report.results import read_records
from et_hil.report.sessions import LiveRun
from tests.report_records import typed

# Node ids, boards, run ids and times as in a real run of
# `pytest suites --et-board=host --et-board=tosa` (records trimmed to what merge and JUnit read).
RELU_HOST = "suites/test_ops.py::test_op_int8[host-relu]"
CONV_TOSA = "suites/test_ops.py::test_op_int8[tosa-conv2d_3x3_padded]"
EMBED_TOSA = "suites/test_edge_cases.py::test_edge_int8[tosa-embedding_int64_ids]"
VERSIONS = {"et-hil": "0.1.0", "executorch": "1.5.1", "tosa-tools": "2026.5.0"}


def rec(
    test: str,
    board: str,
    *,
    run_id: str = "1063bc6da9e2",
    finished_at: str = "2026-12-02T10:40:21+0000",
    outcome: str = "passed",
    shard: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "test": test,
        "board": board,
        "run_id": run_id,
        "finished_at": finished_at,
        "outcome": outcome,
        "message": "",
        "failure_class": None,
        "duration_s": 1.0,
        "versions": VERSIONS,
        **fields,
    }
    if shard is not None:
        record["shard"] = shard
    return record


def results(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ---------------------------------------------------------------- merge_results


def test_one_record_per_test_and_board_sorted(tmp_path: Path) -> None:
    a = results(tmp_path / "a.jsonl", rec(RELU_HOST, "host"), rec(CONV_TOSA, "tosa"))
    b = results(tmp_path / "b.jsonl", rec(EMBED_TOSA, "tosa"), rec(CONV_TOSA, "host"))
    merged = merge_results([a, b])
    assert [(r.test, r.board) for r in merged.records] == [
        (EMBED_TOSA, "tosa"),  # test_edge_cases.py before test_ops.py
        (RELU_HOST, "host"),  # [host-relu] before [tosa-conv2d...]
        (CONV_TOSA, "host"),  # one test: by board
        (CONV_TOSA, "tosa"),
    ]
    assert merged.inputs == {str(a): 2, str(b): 2}
    assert (merged.duplicates, merged.replaced, merged.missing) == (0, 0, [])


def test_the_same_run_given_twice_is_dropped(tmp_path: Path) -> None:
    # e.g. a worker's file and the run's file, or one artifact downloaded twice
    a = results(tmp_path / "a.jsonl", rec(RELU_HOST, "host"), rec(CONV_TOSA, "tosa"))
    b = results(tmp_path / "b.jsonl", rec(RELU_HOST, "host"))
    merged = merge_results([a, b, a])
    assert len(merged.records) == 2
    assert (merged.duplicates, merged.replaced) == (3, 0)  # 1 from b, 2 from a again


@pytest.mark.parametrize("newer_first", [False, True])
def test_a_newer_run_replaces_the_older(tmp_path: Path, newer_first: bool) -> None:
    failed = rec(
        CONV_TOSA,
        "tosa",
        run_id="aaaaaaaaaaaa",
        finished_at="2026-12-02T10:40:21+0000",
        outcome="failed",
    )
    retried = rec(CONV_TOSA, "tosa", run_id="bbbbbbbbbbbb", finished_at="2026-12-02T11:05:00+0000")
    old = results(tmp_path / "old.jsonl", failed)
    new = results(tmp_path / "new.jsonl", retried)
    merged = merge_results([new, old] if newer_first else [old, new])
    [record] = merged.records
    assert (record.run_id, record.outcome) == ("bbbbbbbbbbbb", "passed")
    assert (merged.duplicates, merged.replaced) == (0, 1)


def test_newer_across_time_zones(tmp_path: Path) -> None:
    older = rec(CONV_TOSA, "tosa", run_id="aaaaaaaaaaaa", finished_at="2026-12-02T11:00:00+0100")
    newer = rec(CONV_TOSA, "tosa", run_id="bbbbbbbbbbbb", finished_at="2026-12-02T10:30:00+0000")
    merged = merge_results(
        [results(tmp_path / "a.jsonl", older), results(tmp_path / "b.jsonl", newer)]
    )
    assert merged.records[0].run_id == "bbbbbbbbbbbb"


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    a = results(tmp_path / "a.jsonl", rec(RELU_HOST, "host"))
    gone = tmp_path / "shard-2.jsonl"
    with pytest.raises(ConfigError) as info:
        merge_results([a, gone])
    assert str(info.value).startswith(f"results file {gone} does not exist")


def test_a_shard_that_never_reported_is_named_from_the_labels(tmp_path: Path) -> None:
    one = results(tmp_path / "1.jsonl", rec(RELU_HOST, "host", shard="1/3"))
    three = results(tmp_path / "3.jsonl", rec(RELU_HOST + "x", "host", shard="3/3"))
    merged = merge_results([one, three])
    assert merged.missing == ["board host: shard(s) 2/3 never reported a record"]


def test_another_boards_shard_does_not_hide_a_missing_one(tmp_path: Path) -> None:
    # A matrix job is one board's shard: tosa's shard 2 died, host's reported.
    a = results(
        tmp_path / "a.jsonl",
        rec(RELU_HOST, "host", shard="1/2"),
        rec(RELU_HOST + "x", "host", shard="2/2"),
        rec(CONV_TOSA, "tosa", shard="1/2"),
    )
    assert merge_results([a]).missing == ["board tosa: shard(s) 2/2 never reported a record"]


def test_expected_shards_are_named_even_without_labels(tmp_path: Path) -> None:
    # An unsharded run given where four shards were expected: none of them reported.
    a = results(tmp_path / "a.jsonl", rec(RELU_HOST, "host"))
    merged = merge_results([a], expect_shards=4)
    assert merged.missing == ["board host: shard(s) 1/4, 2/4, 3/4, 4/4 never reported a record"]
    both = results(
        tmp_path / "b.jsonl",
        rec(RELU_HOST, "host", shard="1/2"),
        rec(RELU_HOST + "x", "host", shard="2/2"),
    )
    assert merge_results([both], expect_shards=2).missing == []


def test_an_expected_board_that_never_reported_is_named(tmp_path: Path) -> None:
    a = results(tmp_path / "a.jsonl", rec(RELU_HOST, "host"), rec(CONV_TOSA, "tosa"))
    merged = merge_results([a], expect_boards=["host", "corstone320", "tosa"])
    assert merged.missing == ["board corstone320 never reported a record"]


def test_planned_path_is_beside_the_results(tmp_path: Path) -> None:
    assert planned_path(tmp_path / "shard-1.jsonl") == tmp_path / "shard-1.planned.json"


def test_plans_of_sessions_sharing_a_results_file_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ended, live = LiveRun(path, "ended"), LiveRun(path, "live")
    ended.start()
    live.start()
    write_planned(path, run_id="ended", shard=None, tests=[("t::old", "host")])
    ended.end()
    write_planned(path, run_id="live", shard=None, tests=[("t::a", "host")])
    write_planned(path, run_id="new", shard=None, tests=[("t::b", "tosa")])
    live.end()
    results(path, rec("t::a", "host"))  # the run of t::b was killed before its record
    assert merge_results([path]).missing == [
        "1 planned test(s) (run new) never finished: t::b on tosa"
    ]


def test_planned_tests_that_never_finished_are_named(tmp_path: Path) -> None:
    path = tmp_path / "shard-1.jsonl"
    planned = [(f"suites/test_ops.py::test_op_int8[host-op{i}]", "host") for i in range(6)]
    write_planned(path, run_id="1063bc6da9e2", shard="1/2", tests=planned)
    # the run was killed after its first two tests
    results(path, *(rec(t, b, shard="1/2") for t, b in planned[:2]))
    other = results(tmp_path / "shard-2.jsonl", rec(RELU_HOST, "host", shard="2/2"))
    merged = merge_results([path, other])
    assert merged.missing == [
        "4 planned test(s) of shard 1/2 (run 1063bc6da9e2) never finished: "
        "suites/test_ops.py::test_op_int8[host-op2] on host, "
        "suites/test_ops.py::test_op_int8[host-op3] on host, "
        "suites/test_ops.py::test_op_int8[host-op4] on host and 1 more"
    ]


def test_a_planned_shard_with_no_record_is_named_twice(tmp_path: Path) -> None:
    # Shard 2/2 collected its tests, then crashed before the first record.
    one = results(tmp_path / "shard-1.jsonl", rec(RELU_HOST, "host", shard="1/2"))
    two = tmp_path / "shard-2.jsonl"
    write_planned(two, run_id="cccccccccccc", shard="2/2", tests=[(RELU_HOST + "x", "host")])
    two.write_text("")
    merged = merge_results([one, two])
    assert merged.missing == [
        "board host: shard(s) 2/2 never reported a record",
        f"1 planned test(s) of shard 2/2 (run cccccccccccc) never finished: {RELU_HOST}x on host",
    ]


def test_a_planned_test_finished_by_another_file_is_not_missing(tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    write_planned(first, run_id="aaaaaaaaaaaa", shard=None, tests=[(CONV_TOSA, "tosa")])
    first.write_text("")
    retry = results(tmp_path / "retry.jsonl", rec(CONV_TOSA, "tosa", run_id="bbbbbbbbbbbb"))
    assert merge_results([first, retry]).missing == []


def test_unsharded_plan_is_named_without_a_shard(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_planned(path, run_id="aaaaaaaaaaaa", shard=None, tests=[(CONV_TOSA, "tosa")])
    results(path, rec(RELU_HOST, "host"))
    assert merge_results([path]).missing == [
        f"1 planned test(s) (run aaaaaaaaaaaa) never finished: {CONV_TOSA} on tosa"
    ]


def test_write_results_writes_each_line_as_it_was_read(tmp_path: Path) -> None:
    # A field this version does not know (a newer writer's) survives a merge.
    newer = rec(CONV_TOSA, "tosa", shard="1/2", written_by_a_newer_et_hil={"x": [1, 2]})
    given = results(tmp_path / "shard.jsonl", rec(RELU_HOST, "host"), newer)
    path = tmp_path / "out" / "merged.jsonl"
    write_results(merge_results([given]).lines, path)
    assert sorted(path.read_text().splitlines()) == sorted(given.read_text().splitlines())
    assert [r.shard for r in read_records(path)] == [UNSET, "1/2"]
    assert not path.with_name(path.name + ".partial").exists()


def test_a_line_that_is_not_a_record_stops_the_merge_naming_it(tmp_path: Path) -> None:
    given = results(tmp_path / "shard.jsonl", rec(RELU_HOST, "host"), {"test": RELU_HOST})
    with pytest.raises(ConfigError, match=rf"results file {given}, line 2: not a result record"):
        merge_results([given])


# ---------------------------------------------------------------- junit_xml


QUARANTINE = {
    "reason": "Vela 5.1 rounds hardswish's table differently",
    "issue": "https://x.test/123",
    "expires": "2027-01-31",
    "entry": "quarantine.toml:[[quarantine]] #1",
    "expired": False,
}
MIXED = [
    rec(RELU_HOST, "host", duration_s=0.0057, shard="1/2"),
    rec(
        CONV_TOSA,
        "tosa",
        outcome="failed",
        duration_s=4.7018,
        message="snr_db 12.3 dB < 30 dB on out[0]\nsecond line of detail",
        failure_class="accuracy",
        shard="2/2",
    ),
    rec(EMBED_TOSA, "tosa", outcome="error", duration_s=2.0, message="FVP did not start"),
    rec(
        "suites/test_ops.py::test_op_a16w8[host-conv2d_3x3_padded]",
        "host",
        outcome="skipped",
        duration_s=0.001,
        message="Skipped: a16w8 needs an Arm target",
    ),
    rec(
        "suites/test_ops.py::test_op_int8[corstone320-hardswish]",
        "corstone320",
        outcome="failed",
        duration_s=3.0,
        message="max_lsb 4 > 1",
        quarantine=QUARANTINE,
    ),
    rec(
        "suites/test_ops.py::test_op_int8[corstone320-gelu]",
        "corstone320",
        outcome="failed",
        duration_s=1.0,
        message="quarantine entry expired",
        quarantine={**QUARANTINE, "expired": True},
    ),
]


def _suite(records: list[dict[str, Any]]) -> ET.Element:
    root = ET.fromstring(junit_xml(typed(records)))
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    return suite


def _case(suite: ET.Element, name: str) -> ET.Element:
    [case] = [c for c in suite.findall("testcase") if c.get("name") == name]
    return case


def test_junit_counts() -> None:
    suite = _suite(MIXED)
    # 6 tests: failed conv and the expired gelu are failures; embed is an error;
    # the a16w8 skip and the quarantined hardswish are skipped.
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6",
        "failures": "2",
        "errors": "1",
        "skipped": "2",
    }
    assert suite.get("name") == "et-hil"
    # 0.0057 + 4.7018 + 2.0 + 0.001 + 3.0 + 1.0 = 10.7085
    assert suite.get("time") == "10.709"
    assert len(suite.findall("testcase")) == 6


def test_junit_names_as_pytest_does() -> None:
    case = _case(_suite(MIXED), "test_op_int8[tosa-conv2d_3x3_padded]")
    assert case.get("classname") == "suites.test_ops"
    assert case.get("time") == "4.702"
    record = rec("suites/sub/test_x.py::TestThing::test_it[host]", "host")
    [case] = _suite([record]).findall("testcase")
    assert (case.get("classname"), case.get("name")) == (
        "suites.sub.test_x.TestThing",
        "test_it[host]",
    )


def test_junit_failure_and_error_elements() -> None:
    suite = _suite(MIXED)
    [failure] = _case(suite, "test_op_int8[tosa-conv2d_3x3_padded]").findall("failure")
    assert failure.get("message") == "snr_db 12.3 dB < 30 dB on out[0]"  # the first line
    assert failure.text == "snr_db 12.3 dB < 30 dB on out[0]\nsecond line of detail"
    [error] = _case(suite, "test_edge_int8[tosa-embedding_int64_ids]").findall("error")
    assert error.get("message") == "FVP did not start"
    [skipped] = _case(suite, "test_op_a16w8[host-conv2d_3x3_padded]").findall("skipped")
    assert skipped.get("type") == "pytest.skip"
    passed = _case(suite, "test_op_int8[host-relu]")
    assert [child.tag for child in passed] == ["properties"]


def test_quarantined_failure_is_an_xfail_skip() -> None:
    suite = _suite(MIXED)
    case = _case(suite, "test_op_int8[corstone320-hardswish]")
    assert case.find("failure") is None
    [skipped] = case.findall("skipped")
    assert skipped.get("type") == "pytest.xfail"
    assert skipped.get("message") == (
        "quarantined until 2027-01-31: Vela 5.1 rounds hardswish's table differently"
    )
    assert skipped.text == "max_lsb 4 > 1"  # the true failure is kept
    # an expired entry no longer hides the failure
    expired = _case(suite, "test_op_int8[corstone320-gelu]")
    assert expired.find("skipped") is None
    assert expired.find("failure") is not None


def test_junit_properties() -> None:
    suite = _suite(MIXED)

    def props(name: str) -> dict[str, str | None]:
        case = _case(suite, name)
        return {p.get("name"): p.get("value") for p in case.iter("property")}  # type: ignore[misc]

    assert props("test_op_int8[host-relu]") == {
        "et_board": "host",
        "et_failure_class": "none",
        "et_versions": "et-hil=0.1.0,executorch=1.5.1,tosa-tools=2026.5.0",
        "et_shard": "1/2",
    }
    conv = props("test_op_int8[tosa-conv2d_3x3_padded]")
    assert (conv["et_board"], conv["et_shard"], conv["et_failure_class"]) == (
        "tosa",
        "2/2",
        "accuracy",
    )
    assert "et_shard" not in props("test_edge_int8[tosa-embedding_int64_ids]")  # unsharded


def test_junit_of_no_records_is_an_empty_suite() -> None:
    suite = _suite([])
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("0", "0", "0.000")


def test_write_junit(tmp_path: Path) -> None:
    path = tmp_path / "ci" / "junit.xml"
    write_junit(typed(MIXED), path)
    assert ET.parse(path).getroot().find("testsuite").get("tests") == "6"  # type: ignore[union-attr]
    assert not path.with_name(path.name + ".partial").exists()


def test_junit_with_control_characters_still_parses() -> None:
    record = rec(RELU_HOST, "host", outcome="failed", message="\x1b[31mE  assert 1 == 2\x1b[0m")
    suite = _suite([record])
    assert suite.get("failures") == "1"
