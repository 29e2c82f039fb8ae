"""Firmware build steps run as process groups with time limits: a step that hangs is
killed with everything it started, and the error names the step, its command and
the log to read; the board file's ``[qemu.firmware]`` sets the limits."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

from et_hil.boards.spec import load_board_file
from et_hil.errors import ConfigError, InfrastructureError
from et_hil.firmware.settings import BUILD_TIMEOUT_S, FirmwareSettings, StepTimeouts
from et_hil.firmware.sources import unpack_bundle
from et_hil.firmware.steps import FirmwareStepTimeout, query, run_step
from et_hil.firmware.toolchain import missing_build_tools
from tests.test_processes import _gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _processes_naming(text: str) -> list[int]:
    """Processes of this machine whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_step_logs_its_command_then_its_output(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text("an earlier build's log\n")
    finished = run_step(
        "greeting",
        ["sh", "-c", "echo $GREETING; echo err >&2; exit 3"],
        log_path=log,
        timeout_s=30,
        setting="nowhere",
        env={"GREETING": "hello", "PATH": os.environ["PATH"]},
    )
    assert (finished.returncode, finished.timed_out) == (3, False)
    # started afresh: the earlier log is gone
    assert log.read_text() == "$ sh -c 'echo $GREETING; echo err >&2; exit 3'\nhello\nerr\n"
    run_step("again", ["echo", "two"], log_path=log, timeout_s=30, setting="x", append=True)
    assert log.read_text().endswith("err\n$ echo two\ntwo\n")


def test_a_step_past_its_limit_is_killed_with_what_it_started(tmp_path: Path) -> None:
    log, pid_file = tmp_path / "build.log", tmp_path / "pid"
    # The grandchild's output goes elsewhere: only the group kill can end it.
    script = f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}; echo started; sleep 60"
    started = time.monotonic()
    with pytest.raises(FirmwareStepTimeout) as info:
        run_step(
            "runner build",
            ["sh", "-c", script],
            log_path=log,
            timeout_s=0.5,
            setting="[qemu.firmware] build_timeout_s",
        )
    assert time.monotonic() - started < 10
    assert str(info.value) == (
        "runner build was still running after 0.5 s ([qemu.firmware] build_timeout_s) and was "
        f"killed with every process it started: sh -c '{script}'; read {log} for where it stopped"
    )
    assert info.value.log_path == log
    assert log.read_text().splitlines()[-1] == "started"
    assert _gone(int(pid_file.read_text()))


def test_a_step_that_cannot_start_names_the_program(tmp_path: Path) -> None:
    from et_hil.firmware.steps import FirmwareBuildError

    with pytest.raises(FirmwareBuildError, match="runner build: cannot start no-such-tool-xyz"):
        run_step(
            "runner build", ["no-such-tool-xyz"], log_path=tmp_path / "l", timeout_s=5, setting=""
        )


def test_a_query_answers_and_a_hung_one_is_killed() -> None:
    answer = query("a greeting", ["sh", "-c", "echo out; echo err >&2"])
    assert (answer.returncode, answer.stdout, answer.stderr) == (0, "out\n", "err\n")
    with pytest.raises(FirmwareStepTimeout) as info:
        query("git rev-parse of /slow", ["sleep", "30"], timeout_s=0.3)
    assert str(info.value) == (
        "git rev-parse of /slow was still running after 0.3 s and was killed with every "
        "process it started: sleep 30"
    )
    assert info.value.log_path is None


def test_a_tarball_tar_cannot_read_names_the_unpack_log(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    broken = bundle / "executorch-00000000.tar.zst"
    broken.write_bytes(b"not zstd at all")
    digest = hashlib.sha256(broken.read_bytes()).hexdigest()
    (bundle / "SHA256SUMS").write_text(f"{digest}  {broken.name}\n")
    with pytest.raises(InfrastructureError) as info:
        unpack_bundle(bundle, tmp_path / "cache")
    (log,) = (tmp_path / "cache" / "sources").glob("*.unpack.log")
    assert str(info.value) == f"unpacking {broken.name} failed (exit 2); see {log}"
    text = log.read_text()
    assert text.startswith(f"$ tar --zstd -xf {broken} -C ")
    assert "zstd" in text.splitlines()[1]  # zstd's own complaint, as tar passed it on


def test_the_board_file_sets_the_limits(tmp_path: Path) -> None:
    assert FirmwareSettings().timeouts() == StepTimeouts(BUILD_TIMEOUT_S, 300.0)
    path = tmp_path / "q.toml"
    head = 'name = "q"\nkind = "qemu"\ntarget = "portable"\ncpu = "cortex-m55"\n[qemu.firmware]\n'
    path.write_text(head + "build_timeout_s = 90\nunpack_timeout_s = 5\n")
    settings = load_board_file(path).settings
    assert settings.firmware.timeouts() == StepTimeouts(build_s=90.0, unpack_s=5.0)
    path.write_text(head + "build_timeout_s = 0\n")
    with pytest.raises(ConfigError, match="build_timeout_s"):
        load_board_file(path)


@pytest.mark.slow
def test_a_runner_build_past_its_limit_fails_the_board_naming_the_step(tmp_path: Path) -> None:
    """The genuine build script under a 3 s limit: CMake's configure alone takes longer
    (the pinned bundle, unpacked into this test's own cache, so nothing shared is touched)."""
    from et_hil.firmware.service import runner_for_board

    if missing := missing_build_tools(None):
        pytest.skip("; ".join(what for what, _ in missing))
    cache = tmp_path / "cache"
    with pytest.raises(InfrastructureError) as info:
        runner_for_board(
            FirmwareSettings(build_timeout_s=3.0),
            cache_dir=cache,
            executorch_src=None,
            board="qemu-slow",
        )
    timeout = info.value.__cause__
    assert isinstance(timeout, FirmwareStepTimeout)
    assert timeout.step == "runner build"
    assert timeout.log_path is not None
    assert timeout.log_path.read_text().startswith("$ bash ")
    message = str(info.value)
    assert message.startswith(
        "board 'qemu-slow': runner firmware: runner build was still running after 3 s "
        "([qemu.firmware] build_timeout_s) and was killed with every process it started: bash "
    )
    assert "build_executor_runner.sh --pte=semihosting" in message
    assert message.endswith(f"; read {timeout.log_path} for where it stopped")
    # nothing of the build (cmake, make, the compilers) is left running
    deadline = time.monotonic() + 5
    while _processes_naming(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_naming(str(tmp_path)) == []
