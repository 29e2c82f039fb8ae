"""Benchmark: a warm cache hit, and the serial capture of a large ETDump block.

    python benchmarks/cache_and_capture.py [--pte-mb 4] [--etdump-mb 2] [--repeat 20]

1. Cache: builds one realistic entry (program.pte, etrecord.bin, the
   fake-quant reference program, metadata.json; random bytes of the sizes of a
   mid-size model) into a fresh cache, then times warm lookups
   (``ArtifactCache.get_or_build`` on a hit, as the builder calls it) and a
   full verification of the entry (``verify_entry(..., full=True)`` when the
   cache has it).
2. Capture: feeds a synthetic UART capture (start line, outputs, a base64
   ETDump block of ``--etdump-mb`` MB, then the end and EOT) through
   ``SerialLink.capture`` from a fake port, and times it. Two shapes: the
   payload folded in 76-character lines, one a read; and upstream's one-line
   payload in 64-byte reads after ``--outputs`` Output lines.

A benchmark, not a test: it prints numbers (the lowest of ``--repeat`` runs,
and the median) for closing notes and the README.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from et_hil.boards.serial.link import SerialLink
from et_hil.executor_runner.log import find_run, normalize_uart, parse_etdump_block
from et_hil.programs import cache as cache_module
from et_hil.programs.cache import ArtifactCache

MB = 1 << 20


def _times(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(lowest, median) seconds of ``repeat`` calls of ``fn``."""
    spent = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return min(spent), statistics.median(spent)


def bench_cache(pte_mb: float, repeat: int) -> None:
    """Time a warm hit of one realistic entry."""
    sizes = {
        "program.pte": int(pte_mb * MB),
        "etrecord.bin": int(pte_mb * MB * 1.5),  # the ETRecord holds the graph twice
        "fake_quant_reference.pt2": int(pte_mb * MB * 0.6),
    }
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache = ArtifactCache(Path(tmp) / "cache")
        key = "ab" + "0" * 62

        def build(folder: Path) -> None:
            for name, size in sizes.items():
                (folder / name).write_bytes(os.urandom(size))
            (folder / "metadata.json").write_text('{"model": "bench"}' + " " * 4000)

        t0 = time.perf_counter()
        cache.get_or_build(key, build)
        cold = time.perf_counter() - t0
        total = sum(sizes.values()) / MB
        print(
            f"cache entry: {total:.1f} MB in {len(sizes) + 1} files; cold build+store {cold:.3f} s"
        )

        def hit() -> None:
            _, was_hit = cache.get_or_build(key, build)
            assert was_hit

        low, med = _times(hit, repeat)
        print(f"  warm hit (get_or_build): min {low * 1e3:8.3f} ms  median {med * 1e3:8.3f} ms")
        verify = cache_module.verify_entry
        if "full" in inspect.signature(verify).parameters:
            folder = cache.entry_dir(key)
            low, med = _times(lambda: verify(folder, full=True), max(3, repeat // 4))  # type: ignore[call-arg]
            print(f"  full verify (hash):      min {low * 1e3:8.3f} ms  median {med * 1e3:8.3f} ms")


class FakePort:
    """What ``SerialLink`` reads: ``in_waiting`` and ``read``, one line per read."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.next = 0

    @property
    def in_waiting(self) -> int:
        return len(self.lines[self.next]) if self.next < len(self.lines) else 0

    def read(self, size: int) -> bytes:
        if self.next >= len(self.lines):
            return b""
        line = self.lines[self.next]
        self.next += 1
        return line

    def close(self) -> None:
        pass


def synthetic_capture(etdump_mb: float, folded: bool, outputs: int = 0) -> list[bytes]:
    """The reads of a UART run printing a base64 ETDump block of ``etdump_mb`` MB.

    ``folded``: the payload comes as 76-character lines (a firmware or UART
    bridge that wraps long lines), one line a read. Otherwise it is one line,
    as upstream's runner prints it, arriving in 64-byte reads, after
    ``outputs`` ``Output[0][j]`` lines (a large output tensor printed by
    ``print_outputs``).
    """
    head = "I [executorch:arm_executor_runner.cpp:{} main()] {}\r\n"
    lines = [
        b"boot ROM v1\r\n",
        head.format(1523, "PTE @ 0x70000000 [----ET12]").encode(),
        head.format(1530, f"{1 if outputs else 0} outputs: ").encode(),
    ]
    lines += [f"Output[0][{j}]: (float) 1.500000\r\n".encode() for j in range(outputs)]
    lines.append(b"#[RUN THIS]\r\n# Writing etdump.bin [base64]\r\n")
    payload = base64.b64encode(os.urandom(int(etdump_mb * MB)))
    command = b'echo "' + payload + b'" | base64 -d >etdump.bin\r\n'
    if folded:
        lines += [command[i : i + 76] + b"\r\n" for i in range(0, len(command), 76)]
    else:
        lines += [command[i : i + 64] for i in range(0, len(command), 64)]
    lines += [
        b"#[END]\r\n",
        head.format(1550, "Program complete, exiting.").encode(),
        b"\x04",
    ]
    return lines


def bench_capture(etdump_mb: float, folded: bool, outputs: int, repeat: int) -> None:
    """Time ``SerialLink.capture`` of a run with a large ETDump block."""
    lines = synthetic_capture(etdump_mb, folded, outputs)
    total = sum(len(line) for line in lines)
    shape = (
        "folded in 76-char lines" if folded else f"one line, 64-byte reads, {outputs} Output lines"
    )
    print(f"capture: {total / MB:.2f} MB in {len(lines)} reads; ETDump {etdump_mb:g} MB {shape}")

    def capture() -> bytes:
        link = SerialLink("fake://", 115200)
        link._serial = FakePort(lines)  # type: ignore[assignment]
        raw, timed_out = link.capture(3600)
        assert not timed_out
        return raw

    raw = capture()
    assert raw == b"".join(lines)
    run = find_run(normalize_uart(raw))
    assert run is not None
    assert (run.end, run.magic) == ("eot", "ET12"), run
    if not folded:
        assert len(parse_etdump_block(run.text)["etdump.bin"]) == int(etdump_mb * MB)
    low, med = _times(capture, repeat)
    print(f"  SerialLink.capture:      min {low:8.3f} s   median {med:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pte-mb", type=float, default=4.0)
    parser.add_argument("--etdump-mb", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--capture-repeat", type=int, default=1)
    parser.add_argument("--outputs", type=int, default=20000)
    args = parser.parse_args()
    bench_cache(args.pte_mb, args.repeat)
    for mb in args.etdump_mb:
        bench_capture(mb, True, 0, args.capture_repeat)
        bench_capture(mb, False, args.outputs, args.capture_repeat)


if __name__ == "__main__":
    main()
