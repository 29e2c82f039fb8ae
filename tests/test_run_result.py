"""What a run gives: RunResult's timings and facts apart, and how a check's record
holds them (et_hil.report.record.run_timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from et_hil.boards.base import RunResult
from et_hil.errors import EtHilDeprecationWarning
from et_hil.report.record import run_timings


def test_the_record_holds_the_runs_own_phases_beside_execute_and_load(tmp_path: Path) -> None:
    run = RunResult(
        "fvp0", (), 0.0123456789, 0.5, "fvp-cycles", tmp_path,
        timings={"fvp_wall_s": 12.5}, facts={"attempts": 2, "where": "local"},
    )  # fmt: skip
    assert run_timings(run) == {
        "execute_s": 0.012346,  # rounded to the microsecond
        "load_s": 0.5,
        "fidelity": "fvp-cycles",
        "fvp_wall_s": 12.5,
    }
    assert dict(run.facts) == {"attempts": 2, "where": "local"}


def test_a_run_without_phases_or_facts_has_none(tmp_path: Path) -> None:
    run = RunResult("host", (), 0.001, 0.0, "host-wall", tmp_path)
    assert (dict(run.timings), dict(run.facts)) == ({}, {})
    assert set(run_timings(run)) == {"execute_s", "load_s", "fidelity"}


def test_extra_as_boards_gave_it_is_split_with_a_warning(tmp_path: Path) -> None:
    # A kind of one's own written before the split: durations named *_s were
    # timings, the rest facts (lock_held ends in a list, not in _s).
    with pytest.warns(EtHilDeprecationWarning, match="RunResult\\(extra=...\\) is deprecated"):
        run = RunResult(
            "lamp", (), 0.1, 0.0, "lamp-wall", tmp_path,
            extra={"uart_wall_s": 3, "lock_held": [1.0, 2.0], "attempts": 1, "note_s": "x"},
        )  # fmt: skip
    assert dict(run.timings) == {"uart_wall_s": 3.0}
    assert dict(run.facts) == {"lock_held": [1.0, 2.0], "attempts": 1, "note_s": "x"}
