"""How a runtime worker ends: by itself when asked after its work, killed while it loads.

The module is tests/echo_worker.py (the workers' protocol, no torch), so each case
takes a fraction of a second.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from et_hil.processes.runtime_worker import RuntimeWorker


def _worker(tmp_path: Path) -> RuntimeWorker:
    return RuntimeWorker(tmp_path / "worker.log", "tests.echo_worker", "echo")


def _process(worker: RuntimeWorker) -> subprocess.Popen[bytes]:
    proc = worker._proc  # the child itself: how it ended is the point of these tests
    assert proc is not None
    return proc


def test_a_worker_that_answered_exits_by_itself_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ET_HIL_ECHO_WORKER_LOAD_S", "0")
    # a teardown longer than the 3 s grace: a worker that ran it would be killed
    monkeypatch.setenv("ET_HIL_ECHO_WORKER_TEARDOWN_S", "10")
    worker = _worker(tmp_path)
    worker.start()
    assert worker.request({"op": "run", "n": 1}, timeout_s=30)["echo"] == {"op": "run", "n": 1}
    proc = _process(worker)
    worker.stop()
    # exit status 0: the child ended itself at once (os._exit after its last reply,
    # skipping the teardown), it was not killed after the grace period
    assert proc.returncode == 0
    assert not worker.alive


def test_a_worker_still_loading_is_killed_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ET_HIL_ECHO_WORKER_LOAD_S", "60")  # far past the 3 s grace
    worker = _worker(tmp_path)
    worker.start()
    proc = _process(worker)
    started = time.monotonic()
    worker.stop()
    took = time.monotonic() - started
    # killed by a signal (a negative status), without asking: it reads no request
    # before its load ends. Asking first would wait out the 3 s grace; a kill and a
    # reap take milliseconds (2 s leaves room for a loaded machine).
    assert proc.returncode in (-signal.SIGTERM, -signal.SIGKILL)
    assert took < 2.0
    assert not worker.alive


def test_what_a_worker_printed_last_is_in_its_log_after_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stdout buffered, as without PYTHONUNBUFFERED (the worker's own default is "1"):
    # the worker ends with os._exit, which flushes no Python buffer by itself
    monkeypatch.setenv("PYTHONUNBUFFERED", "")
    worker = _worker(tmp_path)
    worker.start()
    worker.request({"op": "run", "say": "the last line of the run"}, timeout_s=30)
    proc = _process(worker)
    worker.stop()
    assert proc.returncode == 0
    assert "the last line of the run" in worker.log_path.read_text()
