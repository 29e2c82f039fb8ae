"""Serial boards through pytest, as a user runs them: ``--et-board-file`` and
``-n 2``. Two workers on one board take turns; on a pool of two they run at
the same time. Turns are read from the records (each run's lock interval)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import processes_with_env
from tests.serial_double import VirtualBoard, pool_toml

pytestmark = pytest.mark.slow

TESTS = """
import pytest
import tinymodels as m

@pytest.mark.parametrize("seed", range(6))
def test_tiny(et_check, seed):
    result = et_check(m.tiny(seed), m.x(seed), quantize="int8")
    assert result.run.fidelity == "silicon"
"""


@pytest.fixture
def two_boards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VirtualBoard]]:
    tag = uuid.uuid4().hex
    boards = [
        VirtualBoard(tmp_path_factory.mktemp(f"vb{i}"), f"vb{i}", run_delay_s=0.4, tag=tag)
        for i in range(2)
    ]
    for board in boards:  # both start importing at once, then each is waited for
        board.launch()
    for board in boards:
        board.wait_ready()
    yield boards
    for board in boards:
        board.stop()
    # nothing of the boards is left running; a killed process may take a moment to be
    # reaped on a loaded machine, so poll (a process still there after 30 s is a leak)
    deadline = time.monotonic() + 30
    while processes_with_env(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env(tag) == []


def _lock_intervals(pytester: pytest.Pytester) -> list[tuple[str, str, float, float]]:
    path = pytester.path / "et-hil-results" / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["outcome"] for r in rows} == {"passed"}
    return sorted(
        (r["worker"], r["board_facts"]["unit"], *r["board_facts"]["lock_held"]) for r in rows
    )


def _overlaps(intervals: list[tuple[str, str, float, float]]) -> int:
    return sum(
        1
        for i, a in enumerate(intervals)
        for b in intervals[i + 1 :]
        if a[2] < b[3] and b[2] < a[3]
    )


@pytest.mark.timeout(840)  # took 276 s
def test_two_workers_on_one_board_take_turns(
    et_pytester: pytest.Pytester, two_boards: list[VirtualBoard], tmp_path: Path
) -> None:
    board_file = two_boards[0].write_board_file(tmp_path / "vb0.toml")
    et_pytester.makepyfile(TESTS)
    result = et_pytester.runpytest_subprocess(
        f"--et-board-file={board_file}", "--et-board=vb0", "-n", "2"
    )
    result.assert_outcomes(passed=6)
    intervals = _lock_intervals(et_pytester)
    assert {w for w, *_ in intervals} == {"gw0", "gw1"}  # both workers ran tests
    assert _overlaps(intervals) == 0  # ... never on the board at the same time


@pytest.mark.timeout(360)  # took 108 s
def test_two_workers_on_a_pool_of_two_run_in_parallel(
    et_pytester: pytest.Pytester, two_boards: list[VirtualBoard], tmp_path: Path
) -> None:
    lab = tmp_path / "pool.toml"
    lab.write_text(pool_toml(two_boards, "vpool"))
    et_pytester.makepyfile(TESTS)
    result = et_pytester.runpytest_subprocess(
        f"--et-board-file={lab}", "--et-board=vpool", "-n", "2"
    )
    result.assert_outcomes(passed=6)
    intervals = _lock_intervals(et_pytester)
    assert {u for _, u, *_ in intervals} == {"u0", "u1"}
    assert _overlaps(intervals) >= 1
    # each unit still served one run at a time
    for unit in ("u0", "u1"):
        assert _overlaps([i for i in intervals if i[1] == unit]) == 0


@pytest.mark.timeout(540)  # took 164 s
def test_a_lab_file_lists_several_boards(
    et_pytester: pytest.Pytester, two_boards: list[VirtualBoard], tmp_path: Path
) -> None:
    lab = tmp_path / "lab.toml"
    lab.write_text(
        "".join("[[board]]\n" + _as_lab_entry(b.board_toml()) + "\n" for b in two_boards)
    )
    et_pytester.makepyfile(TESTS.replace("range(6)", "range(2)"))
    result = et_pytester.runpytest_subprocess(
        f"--et-board-file={lab}", "--et-board=vb0", "--et-board=vb1", "-n", "2"
    )
    result.assert_outcomes(passed=4)
    _lock_intervals(et_pytester)  # every record passed and held a unit
    path = et_pytester.path / "et-hil-results" / "results.jsonl"
    ports = {json.loads(line)["board_facts"]["port"] for line in path.read_text().splitlines()}
    assert ports == {str(b.link) for b in two_boards}  # both boards of the lab file ran


def _as_lab_entry(board_toml: str) -> str:
    """A board file's tables nested under the lab file's current ``[[board]]``."""
    return board_toml.replace("[serial", "[board.serial")


@pytest.mark.timeout(1200)  # the whole suites in a subprocess (its own timeout: 900 s)
def test_the_suites_pass_on_the_virtual_board(
    two_boards: list[VirtualBoard], tmp_path: Path, shared_cache: Path
) -> None:
    """The acceptance as a user runs it: ``pytest suites --et-board=<its board file>``."""
    board_file = two_boards[0].write_board_file(tmp_path / "vb0.toml")
    results = tmp_path / "results.jsonl"
    suites = Path(__file__).resolve().parent.parent / "suites"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            # the edge-case suite: every kind of program I/O the UART and BundleIO
            # carry (int64 and bool inputs, several and nested outputs, channels-last);
            # the model and operator suites add layers, not board plumbing
            str(suites / "test_edge_cases.py"),
            f"--et-board={board_file}",
            "-n",
            "2",
            f"--et-build-cache={shared_cache}",
            f"--et-results={results}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    ran = [r for r in rows if r["outcome"] == "passed"]
    skipped = [r for r in rows if r["outcome"] == "skipped"]
    # The double runs portable programs: a16w8 needs an Arm target, and int8 cases of
    # ops the portable (XNNPACK) quantizer leaves in float are skipped after their
    # float check. Every other case ran (seen: all 10 edge-case tests; 34 ran and 22
    # skipped when the operator suite was in this run).
    assert len(ran) == len(rows) == 10
    assert all("a16w8" in r["test"] or "leaves" in r["message"] for r in skipped), skipped
    assert all(r["board_facts"]["bundleio"][0]["result"] in ("PASS", "FAIL") for r in ran)


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.timeout(300)  # took 81 s
def test_ctrl_c_mid_run_leaves_nothing_held_or_running(
    two_boards: list[VirtualBoard], tmp_path: Path, shared_cache: Path
) -> None:
    """SIGINT while a run hangs on the board: pytest stops at once (not at the
    300 s run timeout), no process is left (the fixture checks), and the
    finished test's record is on disk."""
    import os
    import signal
    import time

    board = two_boards[0]
    board_file = board.write_board_file(tmp_path / "vb0.toml")
    (tmp_path / "test_hang.py").write_text(
        "import torch\n\n"
        "def test_ok(et_check):\n"
        "    et_check(torch.nn.Linear(4, 2), (torch.ones(1, 4),))\n\n"
        "def test_hangs(et_check):\n"
        "    et_check(torch.nn.Linear(4, 3), (torch.ones(1, 4),))\n"
    )
    (board.folder / "mode").write_text("normal 1\nhang 1\n")  # the second run hangs
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "ET_HIL_TEST_TAG": board.tag}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_hang.py",
            f"--et-board={board_file}",
            f"--et-build-cache={shared_cache}",
            f"--et-results={results}",
            "--et-run-timeout=300",
            f"--basetemp={tmp_path / 'inner'}",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        env=env,
        # not this xdist worker's stdin: that is its channel to the controller
        stdin=subprocess.DEVNULL,
        # Ctrl-C as a terminal gives it. A job a non-interactive shell started in
        # the background (`cmd &`, as CI runners may) inherits SIGINT ignored, and
        # Python keeps an ignored SIGINT ignored: the interrupt would never come.
        preexec_fn=_default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def hanging() -> bool:
        """The second run's UART log shows the board stuck in its inference."""
        logs = (tmp_path / "inner").glob("test_hangs*/**/uart.log")
        return any(b"Starting running 1 inferences" in log.read_bytes() for log in logs)

    deadline = time.monotonic() + 180
    while (board.folder / "mode").exists() or not hanging():
        assert proc.poll() is None, "pytest ended before the hang"
        assert time.monotonic() < deadline, "the runs never started"
        time.sleep(0.2)
    time.sleep(0.5)  # well inside the capture
    proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        # Where did it stick? pytest's faulthandler dumps every thread on SIGABRT.
        proc.send_signal(signal.SIGABRT)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"pytest did not stop 120 s after SIGINT:\n{out.decode()[-6000:]}")
    # Stopped by the signal, not by the 300 s run timeout: the 60 s bound is
    # generous for pytest's teardown on a busy 2-core machine (seen: 2.6 s).
    assert time.monotonic() - interrupted < 60
    assert proc.returncode == 2, out.decode()[-2000:]  # pytest's "interrupted"
    assert b"KeyboardInterrupt" in out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["test"].split("::")[-1] for r in rows if r["outcome"] == "passed"] == ["test_ok[vb0]"]
