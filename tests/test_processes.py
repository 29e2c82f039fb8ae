"""Tests of et_hil.processes: nothing a child starts outlives its use."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import pytest

from et_hil import processes


def _alive(pid: int) -> bool:
    """Running (a killed orphan may stay a zombie until init reaps it: not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_output_and_status_are_captured() -> None:
    finished = processes.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 30)
    assert (finished.returncode, finished.timed_out) == (3, False)
    assert sorted(finished.output.split()) == [b"err", b"out"]


def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    log_path = tmp_path / "log"
    with log_path.open("wb") as log:
        finished = processes.run(["sh", "-c", "pwd; echo err >&2"], 30, log=log, cwd=tmp_path)
    assert finished.returncode == 0
    assert finished.output == b""
    assert log_path.read_text().split() == [str(tmp_path), "err"]


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    # The grandchild's output goes elsewhere: only the group kill can end it.
    script = f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}; sleep 60"
    started = time.monotonic()
    finished = processes.run(["sh", "-c", script], 0.5)
    assert finished.timed_out
    assert finished.returncode is None
    assert time.monotonic() - started < 10
    assert _gone(int(pid_file.read_text()))


def test_grandchildren_left_behind_are_killed_when_the_child_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    finished = processes.run(["sh", "-c", f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}"], 30)
    assert (finished.returncode, finished.timed_out) == (0, False)
    assert _gone(int(pid_file.read_text()))


def test_keyboard_interrupt_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            processes.run(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"], 60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _gone(int(pid_file.read_text()))


def test_a_missing_program_raises_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        processes.run(["/nonexistent/fvp"], 5)
