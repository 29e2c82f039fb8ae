"""Sharding for CI matrices: ``--et-shard i/n`` runs one of n balanced parts of a suite.

Every shard collects the same tests and computes the same split, so each test
lands in exactly one shard with no coordination between CI jobs. The split is
greedy longest-first over recorded durations (the ``duration_s`` of results
records, e.g. last night's merged results): each test, longest first, goes to
the shard with the least time so far. Tests with no recorded duration count as
the median recorded one.

Written here rather than taken from pytest-split: the durations come from the
harness's own results files (no separate ``--store-durations`` run to keep up),
and the records carry the shard's label for ``et-hil merge``'s missing-shard check.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from et_hil.report.results import read_records

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/3"`` -> (2, 3); shards count from 1.

    Raises:
        ValueError: naming the option and the accepted form.
    """
    match = _SHARD.match(value)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(
            f"--et-shard {value!r}: give INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. --et-shard 2/3"
        )
    return int(match[1]), int(match[2])


def recorded_durations(paths: Iterable[Path]) -> dict[str, float]:
    """Each test's duration in results files (the last record of a test wins)."""
    durations: dict[str, float] = {}
    for path in paths:
        for record in read_records(path):
            if record.duration_s is not None:
                durations[record.test] = record.duration_s
    return durations


def split(tests: Sequence[str], count: int, durations: Mapping[str, float]) -> list[int]:
    """The shard (0-based) of each test, balanced by ``durations``.

    Deterministic: the same tests and durations give the same split in every job.
    """
    known = [durations[t] for t in tests if t in durations]
    default = statistics.median(known) if known else 1.0
    weight = {t: durations.get(t, default) for t in tests}
    load = [0.0] * count
    shard_of: dict[str, int] = {}
    # Longest first; ties broken by name so every job orders them alike.
    for test in sorted(set(tests), key=lambda t: (-weight[t], t)):
        chosen = min(range(count), key=lambda i: (load[i], i))
        shard_of[test] = chosen
        load[chosen] += weight[test]
    return [shard_of[t] for t in tests]
