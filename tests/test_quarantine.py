"""Tests of et_hil.report.quarantine: reading the file (every problem in one error,
naming the file and entry), which tests and boards an entry covers, and expiry."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from et_hil.errors import ConfigError
from et_hil.report.quarantine import QuarantineEntry, find_entry, load_quarantine

ENTRY = """
[[quarantine]]
test = "suites/test_ops.py::test_op_int8*hardswish*"
board = "corstone3?0"
reason = "Vela 5.1 rounds hardswish's table differently"
issue = "https://github.com/org/repo/issues/123"
expires = 2027-01-31
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "quarantine.toml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    """The problems one ConfigError names: one on its line, several as a list."""
    with pytest.raises(ConfigError) as info:
        load_quarantine(path)
    message = str(info.value)
    head, *lines = message.split("\n  - ")
    if not lines:
        prefix = f"quarantine file {path}: "
        assert message.startswith(prefix)
        return [message.removeprefix(prefix)]
    assert head == f"quarantine file {path}: {len(lines)} problems:"
    return lines


def _entry(test: str, board: str = "*", expires: datetime.date | None = None) -> QuarantineEntry:
    return QuarantineEntry(
        test=test,
        board=board,
        reason="r",
        issue="i",
        expires=expires or datetime.date(2027, 1, 31),
        line="q.toml:[[quarantine]] #1",
    )


# ---------------------------------------------------------------- load_quarantine


def test_load_an_entry(tmp_path: Path) -> None:
    path = _write(tmp_path, ENTRY)
    [entry] = load_quarantine(path)
    assert entry == QuarantineEntry(
        test="suites/test_ops.py::test_op_int8*hardswish*",
        board="corstone3?0",
        reason="Vela 5.1 rounds hardswish's table differently",
        issue="https://github.com/org/repo/issues/123",
        expires=datetime.date(2027, 1, 31),
        line=f"{path}:[[quarantine]] #1",
    )
    assert entry.as_dict() == {
        "reason": "Vela 5.1 rounds hardswish's table differently",
        "issue": "https://github.com/org/repo/issues/123",
        "expires": "2027-01-31",
        "entry": f"{path}:[[quarantine]] #1",
    }
    # the record's field: the same, and whether it had expired on the run's day
    assert entry.record(datetime.date(2027, 1, 31)).expired is False
    on_feb_1 = entry.record(datetime.date(2027, 2, 1))
    assert (on_feb_1.expired, on_feb_1.reason, on_feb_1.entry) == (
        True,
        entry.reason,
        entry.line,
    )


def test_board_defaults_to_every_board(tmp_path: Path) -> None:
    text = ENTRY.replace('board = "corstone3?0"\n', "")
    [entry] = load_quarantine(_write(tmp_path, text))
    assert entry.board == "*"
    assert entry.matches("suites/test_ops.py::test_op_int8_hardswish_x", None)


def test_empty_file_has_no_entries(tmp_path: Path) -> None:
    assert load_quarantine(_write(tmp_path, "# nothing quarantined\n")) == []


def test_entries_are_numbered_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path, ENTRY + ENTRY.replace("hardswish", "gelu"))
    entries = load_quarantine(path)
    assert [e.line for e in entries] == [
        f"{path}:[[quarantine]] #1",
        f"{path}:[[quarantine]] #2",
    ]
    assert "gelu" in entries[1].test


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=r"cannot read it \(No such file or directory\)") as info:
        load_quarantine(path)
    assert str(info.value).startswith(f"quarantine file {path}:")


def test_bad_toml_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "[[quarantine]\ntest = \n")
    with pytest.raises(ConfigError) as info:
        load_quarantine(path)
    assert str(info.value).startswith(f"quarantine file {path}: not valid TOML:")


def test_every_problem_in_one_error(tmp_path: Path) -> None:
    text = f"""
title = "known failures"

{ENTRY}

[[quarantine]]
test = "suites/a.py::t"
reason = "flaky"
owner = "me"
issue = "https://x.test/1"
expires = 2027-01-31

[[quarantine]]
test = "suites/b.py::t"
issue = ""
expires = 2027-01-31

[[quarantine]]
test = "suites/c.py::t"
reason = "flaky"
issue = "https://x.test/3"
expires = "2027-01-31"

[[quarantine]]
test = "suites/d.py::t"
reason = "flaky"
issue = "https://x.test/4"
expires = 2027-01-31T12:00:00

[[quarantine]]
test = "suites/e.py::t"
board = 320
reason = "flaky"
issue = "https://x.test/5"
expires = 2027-01-31

[[quarantine]]
test = ["suites/f.py::t"]
reason = "flaky"
issue = "https://x.test/6"
expires = 2027-01-31
"""
    problems = _problems(_write(tmp_path, text))
    assert problems == [
        "unknown table or key 'title' (entries are [[quarantine]])",
        # entry #1 (ENTRY) is good and is not named
        "[[quarantine]] #2: unknown field(s) owner (fields: board, expires, issue, reason, test)",
        "[[quarantine]] #3: missing reason, issue: every entry says what, why, "
        "where it is tracked and until when",
        "[[quarantine]] #4: expires = '2027-01-31' is not a date "
        "(write it as 2027-01-31, unquoted)",
        "[[quarantine]] #5: expires = datetime.datetime(2027, 1, 31, 12, 0) is not a date "
        "(write it as 2027-01-31, unquoted)",
        "[[quarantine]] #6: board must be a string",
        "[[quarantine]] #7: test must be a string",
    ]


def test_an_entry_that_is_not_a_table(tmp_path: Path) -> None:
    assert _problems(_write(tmp_path, "quarantine = [1]\n")) == [
        "[[quarantine]] #1: is not a table"
    ]


def test_quarantine_key_that_is_not_a_list_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_quarantine(_write(tmp_path, "quarantine = 3\n"))


# ---------------------------------------------------------------- matching


def test_globs_in_test_and_board(tmp_path: Path) -> None:
    [entry] = load_quarantine(_write(tmp_path, ENTRY))
    # '*' spans anything, '?' one character
    assert entry.matches("suites/test_ops.py::test_op_int8[corstone320-hardswish]", "corstone320")
    assert entry.matches("suites/test_ops.py::test_op_int8[corstone300-hardswish]", "corstone300")
    assert not entry.matches("suites/test_ops.py::test_op_int8[tosa-hardswish]", "tosa")
    assert not entry.matches("suites/test_ops.py::test_op_int8[corstone320-relu]", "corstone320")
    assert not entry.matches("suites/test_ops.py::test_op_int8[x-hardswish]", None)


def test_matching_is_case_sensitive() -> None:
    assert not _entry("suites/A.py::t").matches("suites/a.py::t", "host")


def test_find_entry_takes_the_first_that_covers() -> None:
    first = _entry("suites/a.py::*", board="host")
    second = _entry("suites/*")
    assert find_entry([first, second], "suites/a.py::t", "host") is first
    assert find_entry([first, second], "suites/a.py::t", "tosa") is second
    assert find_entry([first, second], "other/a.py::t", "host") is None


def test_a_parametrized_node_id_matches_itself() -> None:
    node = "suites/test_ops.py::test_op_int8[corstone320-hardswish]"
    assert _entry(node).matches(node, "corstone320")
    assert _entry("suites/test_ops.py::test_op_int8[*-hardswish]").matches(node, "corstone320")


# ---------------------------------------------------------------- expiry


def test_an_entry_expires_after_its_last_day() -> None:
    entry = _entry("t", expires=datetime.date(2027, 1, 31))
    assert not entry.expired(datetime.date(2027, 1, 30))
    assert not entry.expired(datetime.date(2027, 1, 31))  # its last day
    assert entry.expired(datetime.date(2027, 2, 1))
