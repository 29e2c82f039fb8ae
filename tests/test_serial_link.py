"""The capture loop on pyserial's ``loop://`` port: when a run is over, and
that the old program's dying words are not taken for this run.

No assert here reads a clock against a bound a loaded machine can miss: where a
run ends is told by the reads the capture made (:class:`WatchedPort`), and a hang
fails at the capture's own, generous, time limit.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Callable

import serial

from et_hil.boards.serial.link import NO_START_GRACE_S, SerialLink
from et_hil.executor_runner.log import find_run, normalize_uart, parse_etdump_block

START = b"I [executorch:arm_executor_runner.cpp:1523 main()] PTE @ 0x70000000 [----ET12]\r\n"
END = b"I [executorch:arm_executor_runner.cpp:1550 main()] Program complete, exiting.\r\n\x04"
OLD_DEATH = b"Hard fault. irq=-13, pc=0x10001a2c\r\nApplication exit code: 1.\r\n\x04"
LIMIT_S = 30  # a capture's time limit: far beyond any wait of the link's own


class WatchedPort:
    """The link's pyserial port, recording what each read returned and telling
    waiters: the capture's steps, seen without a clock."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port
        self.reads: list[bytes] = []
        self._read = threading.Condition()

    @property
    def in_waiting(self) -> int:
        return int(self.port.in_waiting)

    def read(self, size: int) -> bytes:
        data = bytes(self.port.read(size))
        with self._read:
            self.reads.append(data)
            self._read.notify_all()
        return data

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def close(self) -> None:
        self.port.close()

    def wait_until(self, read: Callable[[list[bytes]], bool], timeout_s: float) -> bool:
        """Whether ``read(self.reads)`` came true within ``timeout_s``."""
        with self._read:
            return self._read.wait_for(lambda: read(self.reads), timeout_s)


def watch(link: SerialLink) -> WatchedPort:
    assert link._serial is not None, "open the link first"
    port = WatchedPort(link._serial)
    link._serial = port
    return port


def test_a_run_ends_at_eot() -> None:
    with SerialLink("loop://", 115200) as link:
        port = watch(link)
        port.write(START + END)
        raw, timed_out = link.capture(LIMIT_S)
    assert not timed_out
    assert raw == START + END
    # It returned on the read that brought the EOT: waiting for bytes still due
    # after the last line (END_GRACE_S) would have read the quiet port again.
    assert port.reads == [START + END]


def test_the_old_programs_fault_before_this_runs_start_is_not_this_run() -> None:
    with SerialLink("loop://", 115200) as link:
        port = watch(link)
        port.write(OLD_DEATH)

        def new_run() -> None:
            # once the capture has the old program's fault (and waits for a start line)
            if port.wait_until(lambda reads: b"\x04" in b"".join(reads), LIMIT_S):
                port.write(b"boot\r\n" + START + END)

        writer = threading.Thread(target=new_run)
        writer.start()
        raw, timed_out = link.capture(LIMIT_S)
        writer.join()
    assert port.reads[0] == OLD_DEATH  # the fault came alone, before this run's bytes
    run = find_run(normalize_uart(raw))
    assert not timed_out
    assert run is not None
    assert run.magic == "ET12"
    assert run.end == "eot"


def test_a_fault_with_no_start_line_still_ends_the_capture() -> None:
    with SerialLink("loop://", 115200) as link:
        port = watch(link)
        port.write(OLD_DEATH)
        started = time.monotonic()
        raw, timed_out = link.capture(LIMIT_S)
    # It ends by itself (not at its limit), after giving this run's start line
    # NO_START_GRACE_S to come: a lower bound, which no load can break.
    assert not timed_out
    assert time.monotonic() - started >= NO_START_GRACE_S
    assert port.reads[0] == OLD_DEATH
    assert not any(port.reads[1:])  # the grace was spent reading the quiet port
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
