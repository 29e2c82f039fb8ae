"""Two pytest sessions started in one folder share the default results file: every
record of both, both summaries and every repro folder a failure named survive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

WAIT = """
import pathlib
import time

FLAGS = pathlib.Path("flags")


def signal(name):
    FLAGS.mkdir(exist_ok=True)
    (FLAGS / name).touch()


def wait_for(name):
    deadline = time.monotonic() + 300
    while not (FLAGS / name).exists():
        assert time.monotonic() < deadline, f"the other session never signalled {name}"
        time.sleep(0.05)
"""

SESSION_A = """
import tinymodels as m
from flags import signal, wait_for


def test_a1_mismatch(et_check):
    et_check(m.tiny(), m.x(), reference=m.tiny(scale=1.5))


def test_a2_waits_for_b(board):
    signal("a1")  # a1's record is on disk: it is written at a1's teardown
    wait_for("b2")


def test_a3_passes(et_check):
    et_check(m.tiny(), m.x())
"""

SESSION_B = """
import tinymodels as m
from flags import signal, wait_for


def test_b1_waits_for_a(board):
    wait_for("a1")


def test_b2_mismatch(et_check):
    et_check(m.tiny(seed=1), m.x(), reference=m.tiny(seed=1, scale=1.5))


def test_b3_signals(board):
    signal("b2")


def test_b4_passes(et_check):
    et_check(m.tiny(), m.x())
"""


def _repro_folders(output: str) -> list[Path]:
    # Each folder once: on CI (the CI variable set) pytest's short summary repeats a
    # failure's whole message, so its "repro:" line is printed twice.
    named = re.findall(r"^repro: (\S+)$", output, flags=re.MULTILINE)
    return [Path(p) for p in dict.fromkeys(named)]


@pytest.mark.slow
def test_two_sessions_in_one_folder_keep_every_record_and_repro_folder(et_pytester):
    et_pytester.makepyfile(flags=WAIT, test_a=SESSION_A, test_b=SESSION_B)
    sessions = {
        name: et_pytester.popen(
            [sys.executable, "-m", "pytest", "--et-debug=off", f"test_{name}.py"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for name in ("a", "b")
    }
    outputs = {}
    for name, process in sessions.items():
        out, _ = process.communicate(timeout=600)
        outputs[name] = out.decode()
        assert process.returncode == 1, outputs[name]  # one mismatch each

    results = et_pytester.path / "et-hil-results" / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    by_run: dict[str, set[str]] = {}
    for record in records:
        by_run.setdefault(record["run_id"], set()).add(record["test"].split("::")[1][:-6])
    assert sorted(by_run.values(), key=len) == [
        {"test_a1_mismatch", "test_a2_waits_for_b", "test_a3_passes"},
        {"test_b1_waits_for_a", "test_b2_mismatch", "test_b3_signals", "test_b4_passes"},
    ]
    for name, count in (("a", 3), ("b", 4)):
        assert "et-hil summary" in outputs[name]
        assert re.search(rf"records: \S*results\.jsonl \({count} tests\)", outputs[name])
    named = _repro_folders(outputs["a"]) + _repro_folders(outputs["b"])
    assert len(named) == 2
    for folder in named:
        assert (folder / "case.json").is_file(), f"{folder} was deleted"

    # Once both have ended, the next run starts the file afresh and drops their folders.
    et_pytester.runpytest_subprocess("--et-debug=off", "test_a.py", "-k", "a3").assert_outcomes(
        passed=1
    )
    [only] = [json.loads(line) for line in results.read_text().splitlines()]
    assert only["run_id"] not in by_run
    assert not any(folder.exists() for folder in named)
    assert not (et_pytester.path / "et-hil-results" / "results.jsonl.live").exists()
