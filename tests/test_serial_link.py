"""The capture loop on pyserial's ``loop://`` port: when a run is over, and
that the old program's dying words are not taken for this run."""

from __future__ import annotations

import base64
import random
import threading
import time

from et_hil.boards.serial.link import NO_START_GRACE_S, SerialLink
from et_hil.executor_runner.log import find_run, normalize_uart, parse_etdump_block

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


class ScriptedPort:
    """A port that returns the given reads in order, then nothing."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads
        self.at = 0

    @property
    def in_waiting(self) -> int:
        return len(self.reads[self.at]) if self.at < len(self.reads) else 0

    def read(self, size: int) -> bytes:
        if self.at >= len(self.reads):
            return b""
        self.at += 1
        return self.reads[self.at - 1]

    def close(self) -> None:
        pass


def test_a_large_etdump_block_is_captured_whole_and_read_as_before() -> None:
    # 200 KB of ETDump (270 KB of base64, over 4000 reads) printed as upstream's
    # runner does (one echo line) after 2000 output lines, in 64-byte reads,
    # with an earlier run's end in front: the capture ends at this run's EOT,
    # with every byte, and find_run reads the same run from it.
    etdump = random.Random(0).randbytes(200_000)
    earlier = b"Application exit code: 0.\r\n\x04"
    run = (
        START
        + b"I [executorch:arm_executor_runner.cpp:1530 main()] 1 outputs: \r\n"
        + b"".join(b"Output[0][%d]: (float) 1.500000\r\n" % j for j in range(2000))
        + b"#[RUN THIS]\r\n# Writing etdump.bin [base64]\r\n"
        + b'echo "'
        + base64.b64encode(etdump)
        + b'" | base64 -d >etdump.bin\r\n#[END]\r\n'
        + END
    )
    data = earlier + b"boot\r\n" + run
    after = b"bytes of a later run\r\n"
    reads = [data[i : i + 64] for i in range(0, len(data), 64)] + [after]
    link = SerialLink("scripted://", 115200)
    link._serial = ScriptedPort(reads)  # type: ignore[assignment]
    raw, timed_out = link.capture(60)

    assert not timed_out
    assert raw == data  # stopped at the EOT, before the later bytes
    found = find_run(normalize_uart(raw))
    assert found is not None
    assert (found.address, found.magic, found.end) == (0x70000000, "ET12", "eot")
    text = normalize_uart(run)
    assert found.text == text[text.index("PTE @") :]  # the run begins at its start line
    assert parse_etdump_block(found.text) == {"etdump.bin": etdump}
