"""What a firmware build is doing, read from its log as it grows.

A cold runner build runs upstream's script for minutes: CMake configures
ExecuTorch, then compiles a few hundred kernels, then configures and links the
runner. :class:`BuildProgress` follows the log file in a thread and reports the
step (configuring, compiling with CMake's percentage every 10 points, linking),
so ``et-hil firmware build`` is not minutes of silence.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

POLL_S = 0.5
_PERCENT = re.compile(r"^\[\s*(\d+)%\]\s+(.*)")
_CONFIGURE = re.compile(r"^-- (Configuring|The C compiler|Build files have been written)")
_LINK = re.compile(r"Linking \w+ executable (\S+)")


class Steps:
    """Turns build log lines into progress messages (at most one per step or 10%)."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.last_percent = -1
        self.configuring = False

    def line(self, text: str) -> None:
        """Read one line of the log."""
        text = text.rstrip()
        if match := _PERCENT.match(text):
            percent, what = int(match.group(1)), match.group(2)
            if percent < self.last_percent:  # the next CMake project (the runner itself)
                self.last_percent = -1
            if link := _LINK.search(what):
                self.report(f"linking {Path(link.group(1)).name}")
            elif percent // 10 > self.last_percent // 10:
                self.report(f"compiling: {percent}% ({_short(what)})")
            self.last_percent = max(self.last_percent, percent)
            self.configuring = False
        elif _CONFIGURE.match(text) and not self.configuring:
            self.configuring = True
            self.report("configuring (CMake)")


def _short(what: str) -> str:
    """``Building CXX object .../op_add.cpp.obj`` -> ``op_add.cpp``."""
    name = (what.split()[-1] if what.split() else what).strip("'\"")
    return Path(name).name.removesuffix(".obj").removesuffix(".o")


class BuildProgress:
    """Follows ``log`` in a thread while a build writes it; use as a context manager.

    Args:
        log: the build log (it may not exist yet: the build makes it afresh).
        report: called with each progress message, from the follower thread.
    """

    def __init__(self, log: Path, report: Callable[[str], None]) -> None:
        self.log = log
        self.steps = Steps(report)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="et-hil-build-log", daemon=True)

    def __enter__(self) -> BuildProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        handle: IO[str] | None = None
        partial = ""
        # An earlier build's log is there until this build starts it afresh.
        stale = self.log.exists()
        try:
            while True:
                stopping = self._stop.is_set()
                if handle is None and self.log.exists():
                    handle = self.log.open(encoding="utf-8", errors="replace")
                    if stale:
                        handle.seek(0, os.SEEK_END)
                if handle is not None:
                    if os.fstat(handle.fileno()).st_size < handle.tell():
                        handle.seek(0)  # started afresh: read from the top
                        partial = ""
                    chunk = handle.read()
                    if chunk:
                        lines = (partial + chunk).split("\n")
                        partial = lines.pop()
                        for text in lines:
                            self.steps.line(text)
                if stopping:  # one last read after the build finished
                    return
                self._stop.wait(POLL_S)
        finally:
            if handle is not None:
                handle.close()
