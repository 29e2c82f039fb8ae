"""Serial boards in a labgrid lab, through a real ``labgrid-coordinator`` and real
``labgrid-exporter`` processes serving the virtual boards over ser2net
(tests/labgrid_lab). What labgrid itself recorded (the coordinator's log of
acquisitions, ``labgrid-client places``) is the evidence, beside our records.

CI (.ci/run) starts a lab as the docs say (docs/developing.md) and names it in
``ET_HIL_LAB_DIR``: the suites run through that one. The tests that break a lab
(an exporter killed, the coordinator restarted, pytest killed) each use their own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import processes_with_env
from tests.labgrid_lab import BIN, Lab

# 360 s: the first test on each worker starts the module's lab (72 s here); the longest
# without a limit of its own took 119 s.
pytestmark = [pytest.mark.slow, pytest.mark.labgrid, pytest.mark.timeout(360)]

ONE_TEST = """
import torch

def test_linear(et_check):
    torch.manual_seed(0)
    et_check(torch.nn.Linear(4, 3), (torch.ones(1, 4),))
"""


def _lab_tools_problem() -> str | None:
    if not (BIN / "labgrid-coordinator").exists():
        return "labgrid is not installed in this environment (make install)"
    if shutil.which("ser2net") is None:
        return "ser2net is not installed (apt-get install ser2net)"
    if not os.access("/dev", os.W_OK):
        return "the lab's exporters serve ports under /dev, which this user cannot write"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A private lab: two places, each its own exporter and virtual board."""
    problem = _lab_tools_problem()
    if problem:
        if os.environ.get("ET_HIL_REQUIRE_LABGRID"):
            pytest.fail(f"ET_HIL_REQUIRE_LABGRID is set: {problem}")
        pytest.skip(problem)
    lab = Lab(tmp_path_factory.mktemp("lab"), tag=f"lab{uuid.uuid4().hex[:8]}")
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
    deadline = time.monotonic() + 30
    while processes_with_env(lab.tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env(lab.tag) == [], "lab processes left running"


@pytest.fixture
def fresh(lab: Lab) -> Lab:
    """The lab as a test expects it: every exporter up, boards well, nothing acquired."""
    for place in lab.places:
        if place not in lab.exporters or lab.exporters[place].poll() is not None:
            lab.exporters.pop(place, None)
            lab.start_exporter(place)
        lab.boards[place].ready()
    lab.wait_for_resources()
    assert wait_until_released(lab, 10), lab.acquired()
    return lab


def wait_until_released(lab: Lab, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(lab.acquired().values()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def acquisitions(coordinator_log: Path) -> dict[str, list[tuple[str, str]]]:
    """Per place, the coordinator's own acquire/release lines, in order."""
    events: dict[str, list[tuple[str, str]]] = {}
    for line in coordinator_log.read_text(errors="replace").splitlines():
        m = re.match(r"^(\S+): place (acquired by (\S+)|released)$", line)
        if m:
            events.setdefault(m.group(1), []).append(
                ("acquired", m.group(3)) if m.group(3) else ("released", "")
            )
    return events


def run_pytest(
    cwd: Path,
    *args: str,
    tag: str,
    cache: Path,
    timeout_s: float = 600,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *args,
            f"--et-build-cache={cache}",
            f"--et-results={cwd / 'results.jsonl'}",
            f"--basetemp={cwd / 'inner'}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=cwd,
        env={**os.environ, "ET_HIL_TEST_TAG": tag},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_nothing_left(tag: str) -> None:
    """No place agent (nor anything else the inner pytest started) still runs."""
    deadline = time.monotonic() + 30
    while processes_with_env(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env(tag) == []


# ----------------------------------------------------------------- acceptance


def _ci_lab() -> tuple[Path, Path] | None:
    """The lab .ci/run started as the docs say: its folder and board file."""
    folder = os.environ.get("ET_HIL_LAB_DIR")
    if not folder:
        return None
    described = json.loads((Path(folder) / "lab.json").read_text())
    return Path(folder), Path(described["board_file"])


@pytest.mark.timeout(1200)
def test_the_suites_pass_on_two_places_never_two_runs_on_one(
    tmp_path: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``pytest suites --et-board=<lab board file> -n 2``: every case passes or is
    skipped as on the plain virtual board, both places are used, and labgrid's
    own acquisition log shows each place acquired and released in strict turns."""
    ci = _ci_lab()
    private: Lab | None = None
    if ci is None:
        problem = _lab_tools_problem()
        if problem:
            pytest.skip(problem)
        private = Lab(tmp_path_factory.mktemp("lab"), tag=f"lab{uuid.uuid4().hex[:8]}").start()
        folder, board_file = private.folder, private.write_board_file()
    else:
        folder, board_file = ci
    log = folder / "coordinator.log"
    before = {p: len(e) for p, e in acquisitions(log).items()}
    tag = uuid.uuid4().hex
    suites = Path(__file__).resolve().parent.parent / "suites"
    try:
        proc = run_pytest(
            tmp_path,
            # the smoke suite: enough runs for both places to take turns (the lab
            # changes how a board is reached, not what runs on it)
            str(suites / "test_smoke.py"),
            f"--et-board={board_file}",
            "-n",
            "2",
            tag=tag,
            cache=shared_cache,
            timeout_s=1100,
        )
    finally:
        if private is not None:
            private.stop()
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = records(tmp_path / "results.jsonl")
    ran = [r for r in rows if r["outcome"] == "passed"]
    # every test of the smoke suite ran (seen: 10 of 10)
    assert len(ran) >= 9
    facts = [r["board_facts"] for r in ran]
    places = {f["labgrid_place"] for f in facts}
    assert places == {"vboard0", "vboard1"}
    # every run its own reservation, and each names its exporter host
    assert len({f["labgrid_reservation"] for f in facts}) == len(ran)
    assert all(f["labgrid_exporter"] == "127.0.0.1" for f in facts)
    assert len({f["labgrid_owner"] for f in facts}) == 2  # one per xdist worker
    # beside the place: the firmware the place runs (the lab's address-mode image)
    image = board_file.parent / "runner.bin"
    assert {f["firmware_sha256"] for f in facts} == {hashlib.sha256(image.read_bytes()).hexdigest()}
    # labgrid's own record: per place, acquired and released alternate, so no
    # two holders at once; and it saw every one of our runs.
    events = acquisitions(log)
    ours = 0
    for place, place_events in events.items():
        new = place_events[before.get(place, 0) :]
        kinds = [kind for kind, _ in new]
        assert kinds == ["acquired", "released"] * (len(kinds) // 2), (place, new)
        ours += len(kinds) // 2
    # (a case skipped after its float run ran too: at least one turn per passed case)
    assert ours >= len(ran)
    text = log.read_text(errors="replace")
    for f in facts:
        assert f"{f['labgrid_owner']}/{f['labgrid_reservation']}) is now acquired" in text
    assert_nothing_left(tag)


# ----------------------------------------------------------------- waiting and holders


@pytest.mark.timeout(540)  # took 163 s
def test_a_place_another_client_holds_makes_the_run_wait_then_name_the_holder(
    fresh: Lab, tmp_path: Path, shared_cache: Path
) -> None:
    """An engineer holds vboard1 (``labgrid-client acquire``): a run for that place
    waits in labgrid's queue, then fails as an infrastructure error naming them."""
    board_file = fresh.write_board_file(tmp_path / "b.toml", place="vboard1", timeout_s=3)
    (tmp_path / "test_one.py").write_text(ONE_TEST)
    env = {**os.environ, "LG_USERNAME": "alice"}
    subprocess.run(
        [str(BIN / "labgrid-client"), "-x", fresh.address, "-p", "vboard1", "acquire"],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tag = uuid.uuid4().hex
    try:
        started = time.monotonic()
        proc = run_pytest(tmp_path, "test_one.py", f"--et-board={board_file}", tag=tag,
                          cache=shared_cache)  # fmt: skip
        took = time.monotonic() - started
        # `et-hil units` asks the coordinator: one row per place of the board
        units = subprocess.run(
            [str(BIN / "et-hil"), "units", f"--board-file={board_file}"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    finally:
        subprocess.run(
            [str(BIN / "labgrid-client"), "-x", fresh.address, "-p", "vboard1", "release"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:]
    (row,) = records(tmp_path / "results.jsonl")
    assert row["failure_class"] == "infrastructure_error"
    assert "came free within 3 s" in row["message"]
    assert "vboard1 acquired by " in row["message"]
    assert "/alice" in row["message"]
    assert took < 120  # waited its 3 s, not the default 30 minutes
    (row_line,) = [line for line in units.splitlines() if " vboard1 " in line]
    assert re.search(r"acquired by \S+/alice", row_line), units
    assert fresh.acquired()["vboard1"] is None
    assert_nothing_left(tag)


def test_with_one_place_taken_two_workers_share_the_other(
    fresh: Lab, tmp_path: Path, shared_cache: Path
) -> None:
    """The pool has one free place: both workers wait their turns on it and pass."""
    board_file = fresh.write_board_file(tmp_path / "b.toml", timeout_s=120)
    (tmp_path / "test_many.py").write_text(
        "import pytest, torch\n\n"
        "@pytest.mark.parametrize('n', range(4))\n"
        "def test_linear(et_check, n):\n"
        "    torch.manual_seed(n)\n"
        "    et_check(torch.nn.Linear(4, 3 + n), (torch.ones(1, 4),))\n"
    )
    env = {**os.environ, "LG_USERNAME": "bob"}
    client = [str(BIN / "labgrid-client"), "-x", fresh.address, "-p", "vboard0"]
    subprocess.run([*client, "acquire"], env=env, check=True, capture_output=True, timeout=60)
    tag = uuid.uuid4().hex
    try:
        proc = run_pytest(tmp_path, "test_many.py", f"--et-board={board_file}", "-n", "2", tag=tag,
                          cache=shared_cache)  # fmt: skip
    finally:
        subprocess.run([*client, "release"], env=env, check=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = records(tmp_path / "results.jsonl")
    assert {r["board_facts"]["labgrid_place"] for r in rows} == {"vboard1"}
    held = sorted(r["board_facts"]["lock_held"] for r in rows)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(held)), held
    assert_nothing_left(tag)


# ----------------------------------------------------------------- failures of the lab


def _start_hanging_run(
    lab: Lab, tmp_path: Path, cache: Path, tag: str, place: str = "vboard0"
) -> subprocess.Popen[bytes]:
    """A pytest run whose one run hangs on ``place``'s board, started and waited
    for until labgrid shows the place acquired."""
    board_file = lab.write_board_file(tmp_path / "b.toml", place=place, reconnect_s=2)
    (tmp_path / "test_one.py").write_text(ONE_TEST)
    lab.boards[place].set_mode("hang")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "test_one.py", f"--et-board={board_file}",
            f"--et-build-cache={cache}", f"--et-results={tmp_path / 'results.jsonl'}",
            "--et-run-timeout=300", f"--basetemp={tmp_path / 'inner'}", "-p", "no:cacheprovider",
        ],
        cwd=tmp_path,
        env={**os.environ, "ET_HIL_TEST_TAG": tag},
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    uart_logs = (tmp_path / "inner").glob("**/uart.log")
    while not any(b"Starting running" in p.read_bytes() for p in uart_logs):
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)
        uart_logs = (tmp_path / "inner").glob("**/uart.log")
    assert lab.acquired()[place] is not None
    return proc


def test_an_exporter_killed_mid_run_is_an_infrastructure_error_and_frees_the_place(
    fresh: Lab, tmp_path: Path, shared_cache: Path
) -> None:
    tag = uuid.uuid4().hex
    proc = _start_hanging_run(fresh, tmp_path, shared_cache, tag)
    fresh.kill_exporter("vboard0")  # the host of vboard0 is gone, ser2net with it
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 1, out.decode()[-3000:]
    (row,) = records(tmp_path / "results.jsonl")
    assert row["failure_class"] == "infrastructure_error", row["message"]
    assert "serial link failed" in row["message"] or "labgrid" in row["message"]
    # a failed run's record says where it failed, as a passed one does
    assert row["board_facts"]["labgrid_place"] == "vboard0"
    assert row["board_facts"]["labgrid_reservation"]
    assert fresh.acquired()["vboard0"] is None  # released, by labgrid's account
    assert_nothing_left(tag)


# SIGTERM becomes the KeyboardInterrupt of Ctrl-C (et_hil.processes.signals, tested
# there and through the FVP and Docker process groups): one more case of the SIGINT path.
@pytest.mark.parametrize(
    "signum",
    [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.campaign), signal.SIGKILL],
)
def test_killing_pytest_leaves_no_place_acquired(
    fresh: Lab, tmp_path: Path, shared_cache: Path, signum: int
) -> None:
    """Whatever ends pytest mid-run, labgrid shows the place free soon after
    (SIGKILL: the place agent releases when its parent's pipe closes), and the
    next run gets it."""
    tag = uuid.uuid4().hex
    proc = _start_hanging_run(fresh, tmp_path, shared_cache, tag)
    proc.send_signal(signum)
    proc.communicate(timeout=120)
    killed = time.monotonic()
    assert wait_until_released(fresh, 30), fresh.acquired()
    released_after = time.monotonic() - killed
    assert_nothing_left(tag)
    fresh.boards["vboard0"].ready()
    again = tmp_path / "again"
    again.mkdir()
    (again / "test_one.py").write_text(ONE_TEST)
    board_file = fresh.write_board_file(again / "b.toml", place="vboard0", timeout_s=30)
    proc2 = run_pytest(
        again, "test_one.py", f"--et-board={board_file}", tag=tag, cache=shared_cache
    )
    assert proc2.returncode == 0, proc2.stdout[-3000:]
    print(f"{signal.Signals(signum).name}: place free {released_after:.2f} s after pytest ended")


def test_a_coordinator_restart_between_runs_is_survived(
    fresh: Lab, tmp_path: Path, shared_cache: Path
) -> None:
    """The coordinator restarts while a pytest session is between two runs: the
    place agent reconnects and the second run gets a place again."""
    board_file = fresh.write_board_file(tmp_path / "b.toml", timeout_s=60)
    gate = tmp_path / "restarted"
    (tmp_path / "test_two.py").write_text(
        "import pathlib, time, torch\n\n"
        "def test_a_first(et_check):\n"
        "    et_check(torch.nn.Linear(4, 3), (torch.ones(1, 4),))\n\n"
        "def test_b_after_restart(et_check):\n"
        f"    gate = pathlib.Path({str(gate)!r})\n"
        "    deadline = time.monotonic() + 120\n"
        "    while not gate.exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.1)\n"
        "    et_check(torch.nn.Linear(4, 2), (torch.ones(1, 4),))\n"
    )
    tag = uuid.uuid4().hex
    results = tmp_path / "results.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "test_two.py", f"--et-board={board_file}",
            f"--et-build-cache={shared_cache}", f"--et-results={results}",
            f"--basetemp={tmp_path / 'inner'}", "-p", "no:cacheprovider", "-q",
        ],
        cwd=tmp_path,
        env={**os.environ, "ET_HIL_TEST_TAG": tag},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not results.exists() or not results.read_text().strip():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:] if proc.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.2)
    fresh.restart_coordinator()
    gate.write_text("")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out.decode()[-3000:]
    rows = records(results)
    assert [r["outcome"] for r in rows] == ["passed", "passed"]
    assert len({r["board_facts"]["labgrid_reservation"] for r in rows}) == 2
    assert_nothing_left(tag)
