"""Tests of et_hil.pytest_plugin.shard: the --et-shard option, a split that puts every test in
exactly one shard the same way in every job, balanced by recorded durations."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from et_hil.errors import ConfigError
from et_hil.pytest_plugin.shard import parse_shard, recorded_durations, split


def _shards(tests: list[str], count: int, durations: dict[str, float]) -> dict[str, int]:
    return dict(zip(tests, split(tests, count, durations), strict=True))


def _loads(tests: list[str], count: int, durations: dict[str, float]) -> list[float]:
    loads = [0.0] * count
    for test, shard in zip(tests, split(tests, count, durations), strict=True):
        loads[shard] += durations[test]
    return loads


# ---------------------------------------------------------------- parse_shard


@pytest.mark.parametrize(
    ("text", "expected"), [("1/1", (1, 1)), ("2/3", (2, 3)), ("3/3", (3, 3)), (" 2 / 3 ", (2, 3))]
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "2", "2/", "/3", "a/b", "-1/3", "1.5/3", ""])
def test_bad_shard_names_the_option_and_the_form(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_shard(text)
    assert str(info.value) == (
        f"--et-shard {text!r}: give INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. --et-shard 2/3"
    )


# ---------------------------------------------------------------- split


def test_split_longest_first_onto_the_least_loaded_shard() -> None:
    # Longest first, each onto the shard with the least time so far (ties: lowest):
    #   a 10 -> 0 (10, 0)   b 7 -> 1 (10, 7)   c 5 -> 1 (10, 12)
    #   d 3  -> 0 (13, 12)  e 2 -> 1 (13, 14)  f 1 -> 0 (14, 14)
    durations = {"a": 10.0, "b": 7.0, "c": 5.0, "d": 3.0, "e": 2.0, "f": 1.0}
    tests = ["f", "e", "d", "c", "b", "a"]  # the order of collection does not matter
    assert _shards(tests, 2, durations) == {"a": 0, "b": 1, "c": 1, "d": 0, "e": 1, "f": 0}
    assert _loads(tests, 2, durations) == [14.0, 14.0]


def test_without_durations_tests_go_round_by_name() -> None:
    # All weigh 1: by name a, b, c, d, e onto shards 0, 1, 0, 1, 0.
    assert split(["e", "d", "c", "b", "a"], 2, {}) == [0, 1, 0, 1, 0]


def test_unknown_duration_counts_as_the_median() -> None:
    # Known x 10, y 4, z 6: median 6, so zz (unknown) weighs 6, ties z and follows it
    # by name. One shard per test, so each shard is a test's place in the order:
    #   x 10, z 6, zz 6, y 4 -> 0, 1, 2, 3
    # (The mean, 6.67, would put zz before z; the default 1.0 would put it last.)
    durations = {"x": 10.0, "y": 4.0, "z": 6.0}
    assert _shards(["zz", "x", "y", "z"], 4, durations) == {"x": 0, "z": 1, "zz": 2, "y": 3}


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    # Known a 1, b 2, c 3, d 10: median (2 + 3) / 2 = 2.5 for both unknowns aa and zz:
    #   d 10, c 3, aa 2.5, zz 2.5, b 2, a 1 -> shards 0 .. 5
    # (Weighing 3, aa would come before c; weighing 2, b would come before zz.)
    durations = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 10.0}
    assert _shards(["a", "b", "c", "d", "aa", "zz"], 6, durations) == {
        "d": 0,
        "c": 1,
        "aa": 2,
        "zz": 3,
        "b": 4,
        "a": 5,
    }


def test_durations_of_tests_not_collected_are_ignored() -> None:
    # Only a and b are collected: 'gone' neither weighs nor moves the median.
    durations = {"a": 5.0, "b": 1.0, "gone": 1000.0}
    assert split(["a", "b"], 2, durations) == [0, 1]


def test_one_shard_takes_everything_and_extra_shards_stay_empty() -> None:
    assert split(["a", "b", "c"], 1, {"a": 3.0}) == [0, 0, 0]
    assert sorted(split(["a", "b"], 4, {})) == [0, 1]
    assert split([], 3, {}) == []


def test_a_test_collected_twice_lands_in_one_shard() -> None:
    assignment = split(["a", "b", "a"], 2, {"a": 2.0, "b": 1.0})
    assert assignment[0] == assignment[2]


# The suites' shape: ~100 node ids, a few long ones, many short, some unrecorded.
SUITE = [f"suites/test_ops.py::test_op_int8[tosa-op{i:03d}]" for i in range(97)]
_rng = random.Random(1234)
SUITE_DURATIONS = {t: round(_rng.lognormvariate(0.5, 1.2), 3) for t in SUITE[:90]}


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_every_test_is_in_exactly_one_shard(count: int) -> None:
    assignment = split(SUITE, count, SUITE_DURATIONS)
    assert len(assignment) == len(SUITE)
    assert set(assignment) == set(range(count))  # 97 tests: no shard left empty
    # What each job (index 1..count) keeps: disjoint, and together the whole suite.
    kept = [
        [t for t, s in zip(SUITE, assignment, strict=True) if s == i - 1]
        for i in range(1, count + 1)
    ]
    together = [t for part in kept for t in part]
    assert sorted(together) == sorted(SUITE)
    assert len(together) == len(set(together))


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_split_is_the_same_in_every_job(count: int) -> None:
    expected = _shards(SUITE, count, SUITE_DURATIONS)
    for seed in range(5):
        tests = list(SUITE)
        random.Random(seed).shuffle(tests)
        durations = dict(reversed(list(SUITE_DURATIONS.items())))
        assert _shards(tests, count, durations) == expected


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_shards_are_balanced_within_the_longest_test(count: int) -> None:
    # Greedy onto the least loaded shard: the spread never exceeds the longest test.
    known = sorted(SUITE_DURATIONS.values())
    median = (known[44] + known[45]) / 2  # 90 recorded durations
    weights = {t: SUITE_DURATIONS.get(t, median) for t in SUITE}
    loads = _loads(SUITE, count, weights)
    assert max(loads) - min(loads) <= max(weights.values())
    # ... and it is the same split as with the 7 unrecorded tests left to the median.
    assert split(SUITE, count, weights) == split(SUITE, count, SUITE_DURATIONS)


# ---------------------------------------------------------------- recorded_durations


def _results(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_recorded_durations_last_record_wins(tmp_path: Path) -> None:
    last_night = _results(
        tmp_path / "a.jsonl",
        [
            {"test": "t1", "board": "host", "outcome": "passed", "duration_s": 3.5},
            {"test": "t2", "board": "host", "outcome": "passed", "duration_s": 2},
        ],
    )
    retry = _results(
        tmp_path / "b.jsonl",
        [{"test": "t1", "board": "host", "outcome": "failed", "duration_s": 4.25}],
    )
    assert recorded_durations([last_night, retry]) == {"t1": 4.25, "t2": 2.0}
    assert recorded_durations([retry, last_night]) == {"t1": 3.5, "t2": 2.0}


def test_recorded_durations_skip_records_without_one(tmp_path: Path) -> None:
    path = _results(
        tmp_path / "r.jsonl",
        [
            {"test": "t1", "outcome": "passed", "duration_s": 1.5},
            {"test": "t2", "outcome": "passed", "duration_s": None},
            {"test": "t3", "outcome": "skipped"},
            '{"test": "t4", "outcome": "passed", "duration_s": 3',  # a torn last line
        ],
    )
    assert recorded_durations([path]) == {"t1": 1.5}


@pytest.mark.parametrize(
    "line",
    [{"duration_s": 9.0, "outcome": "passed"}, {"test": 7, "outcome": "passed"}],
    ids=["no test", "a number for a test"],
)
def test_recorded_durations_of_a_file_that_is_not_results_name_it(
    tmp_path: Path, line: dict[str, object]
) -> None:
    path = _results(tmp_path / "r.jsonl", [{"test": "t1", "outcome": "passed"}, line])
    with pytest.raises(ConfigError, match=rf"results file {path}, line 2: not a result record"):
        recorded_durations([path])


def test_recorded_durations_of_no_or_missing_files(tmp_path: Path) -> None:
    assert recorded_durations([]) == {}
    assert recorded_durations([tmp_path / "never-written.jsonl"]) == {}
