"""Helpers shared by the harness's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def host_workers(pytester: pytest.Pytester) -> list[int]:
    """PIDs of host-board runtime workers still alive that a pytester run started
    (recognised by their working directory, which they inherit from that run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        try:
            cwd = (entry / "cwd").resolve()
        except OSError:
            continue
        if b"harness.boards.host_worker" in cmdline and cwd == pytester.path.resolve():
            pids.append(int(entry.name))
    return pids
