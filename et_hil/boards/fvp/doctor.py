"""The FVP kind's checks for ``et-hil doctor``: Docker, the FVP binaries its platform
files name, and each board's runner ELF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from et_hil.boards.fvp.board import FvpBoard
from et_hil.errors import ConfigError
from et_hil.executor_runner.elf import CPU_ARCH_NAMES, check_runner_elf

# (ok, what, detail): ok is True, False (a failure) or None (a warning: optional equipment)
Check = tuple[bool | None, str, str]


def machine_checks(boards: Sequence[Any]) -> list[Check]:
    """Docker (where FVPs may run) and the FVP binaries of these boards' platforms."""
    return [_docker_check(), *_fvp_binaries([b for b in boards if isinstance(b, FvpBoard)])]


def board_checks(board: Any, runs: bool, required: bool) -> list[Check]:
    """The runner ELF of one FVP board."""
    return [_runner_elf_check(board, runs, required)] if isinstance(board, FvpBoard) else []


def _docker_check() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=5)  # type: ignore[attr-defined]
        version = client.version().get("Version", "?")
        return (True, "docker", f"engine {version} at {client.api.base_url}")
    except ImportError:
        return (None, "docker", "the docker Python package is missing (pip install docker)")
    except Exception as exc:  # any engine problem: say it, it is optional equipment
        from et_hil.boards.fvp.docker import engine_problem

        problem = engine_problem(exc)
        return (None, "docker", f"{problem.reason}; {problem.hint}".rstrip("; "))


def _fvp_binaries(fvp_boards: Sequence[FvpBoard]) -> list[Check]:
    """The FVP binaries these boards' platform files name, on this machine."""
    from et_hil.boards.fvp.executor import LocalFvpExecutor

    rows: list[Check] = []
    platforms = {board.platform.name: board.platform for board in fvp_boards}
    fvp_dir = os.environ.get("ET_HIL_FVP_DIR")
    local = LocalFvpExecutor(Path(fvp_dir) if fvp_dir else None)
    for platform in platforms.values():
        wanted = f"platform {platform.name}: FVP {platform.version}"
        if local.availability(platform).ok:
            found = local.executable(platform)
            rows.append((True, platform.executable, f"{found} ({wanted})"))
        else:
            where = "ET_HIL_FVP_DIR or PATH" if fvp_dir else "PATH"
            detail = (
                f"FVP {platform.version} not on {where} (optional: Arm EULA download, "
                "docs/boards/corstone-fvp.md, 'Installing the FVPs'; or FVPs in Docker, "
                "docs/boards/fvp-docker.md)"
            )
            rows.append((None, platform.executable, detail))
    return rows


def _runner_elf_check(board: FvpBoard, runs: bool, required: bool) -> Check:
    """The runner ELF an FVP board is configured with: present, and built for its CPU.

    Checked whether or not the FVP is there, so that one look names all that is missing.
    """
    what = f"runner ELF {board.spec.name}"
    bad = False if required else None
    elf = board.runner_elf
    cpu = board.spec.cpu or board.platform.cpu
    if elf is None:
        if runs:  # the board runs without one: the FVP image brings its own runner
            return (True, what, "none configured; the FVP image's own runner")
        return (
            bad,
            what,
            "none configured: build arm_executor_runner "
            "(docs/boards/corstone-fvp.md, 'Runner ELFs'), then set [fvp] runner_elf or "
            f"--et-runner-elf {board.spec.name}=PATH",
        )
    if not elf.exists():
        return (bad, what, f"{elf} does not exist")
    try:
        info = check_runner_elf(elf, cpu, board.spec.name)
    except ConfigError as exc:
        return (bad, what, str(exc))
    built_for = info.cpu_name or CPU_ARCH_NAMES.get(info.cpu_arch or -1, "an Arm CPU")
    return (True, what, f"{elf} (built for {built_for}, fits {cpu})")
