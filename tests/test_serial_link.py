"""The capture loop on pyserial's ``loop://`` port: when a run is over, and
that the old program's dying words are not taken for this run."""

from __future__ import annotations

import threading
import time

from harness.boards.serial.link import NO_START_GRACE_S, SerialLink
from harness.runner.log import find_run, normalize_uart

START = b"I [executorch:arm_executor_runner.cpp:1523 main()] PTE @ 0x70000000 [----ET12]\r\n"
END = b"I [executorch:arm_executor_runner.cpp:1550 main()] Program complete, exiting.\r\n\x04"
OLD_DEATH = b"Hard fault. irq=-13, pc=0x10001a2c\r\nApplication exit code: 1.\r\n\x04"


def _later(link: SerialLink, delay_s: float, data: bytes) -> threading.Thread:
    def write() -> None:
        time.sleep(delay_s)
        link._serial.write(data)  # type: ignore[union-attr]

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_run_ends_at_eot() -> None:
    with SerialLink("loop://", 115200) as link:
        link._serial.write(START + END)  # type: ignore[union-attr]
        started = time.monotonic()
        raw, timed_out = link.capture(10)
    assert not timed_out
    assert time.monotonic() - started < 1
    assert raw.endswith(b"\x04")


def test_the_old_programs_fault_before_this_runs_start_is_not_this_run() -> None:
    with SerialLink("loop://", 115200) as link:
        link._serial.write(OLD_DEATH)  # type: ignore[union-attr]
        writer = _later(link, 0.5, b"boot\r\n" + START + END)
        raw, timed_out = link.capture(10)
        writer.join()
    run = find_run(normalize_uart(raw))
    assert not timed_out
    assert run is not None
    assert run.magic == "ET12"
    assert run.end == "eot"


def test_a_fault_with_no_start_line_still_ends_the_capture() -> None:
    with SerialLink("loop://", 115200) as link:
        link._serial.write(OLD_DEATH)  # type: ignore[union-attr]
        started = time.monotonic()
        raw, timed_out = link.capture(20)
    elapsed = time.monotonic() - started
    assert not timed_out
    assert NO_START_GRACE_S <= elapsed < NO_START_GRACE_S + 2
    run = find_run(normalize_uart(raw))
    assert run is not None
    assert run.end == "eot"
    assert run.magic is None
