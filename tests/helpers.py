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
        if b"et_hil.boards.host.worker" in cmdline and cwd == pytester.path.resolve():
            pids.append(int(entry.name))
    return pids


def processes_with_env(marker: str) -> list[int]:
    """PIDs of live processes whose environment holds ``ET_HIL_TEST_TAG=<marker>``.

    Tests tag the processes they start this way, so a leftover check sees only
    its own processes even when other tests run at the same time.
    """
    needle = f"ET_HIL_TEST_TAG={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids
