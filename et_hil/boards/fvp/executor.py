"""Where an FVP process runs: the executor protocol and this machine's executor.

:class:`FvpExecutor` is what the FVP board needs of a place to run the FVP; the
local one is here, the Docker one in :mod:`et_hil.boards.fvp.docker`. Both get
the same argv, rendered by :mod:`et_hil.boards.fvp.platform`.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from et_hil import processes
from et_hil.boards.base import Availability
from et_hil.boards.fvp import platform as fvp
from et_hil.errors import InfrastructureError

# The harness's own deadline beyond the FVP's --timelimit: the FVP counts
# simulated CPU time, and needs a moment to start and to stop.
WALL_GRACE_S = 5.0
LOG_NAME = "fvp.log"


@dataclasses.dataclass(frozen=True)
class ProcessOutcome:
    """How an FVP process ended."""

    log: str
    exit_code: int | None
    timed_out: bool
    wall_s: float
    where: str  # "local", or "docker <image digest> on <engine>"


class FvpExecutor(Protocol):
    """Runs an FVP argv with ``run_dir`` as the semihosting folder.

    Every executor has every method: a capability one lacks is declared by its
    answer (``brings_runners = False``, :meth:`image_runner` returning ``None``,
    :meth:`remove_leftovers` with nothing to remove), never by a missing method.
    """

    #: Whether it can bring its own runner ELFs (an FVP image does), so that a
    #: board without one may still run once it is available.
    brings_runners: bool

    def availability(self, platform: fvp.FvpPlatform) -> Availability:
        """Whether this executor can start the platform's FVP."""

    def executable(self, platform: fvp.FvpPlatform) -> str:
        """The FVP binary as argv[0] should name it."""

    def elf_path(self, elf: Path) -> str:
        """The runner ELF's path as the FVP process sees it."""

    def run_dir_path(self, run_dir: Path) -> str:
        """The run folder's path as the FVP process sees it."""

    def image_runner(self, platform: fvp.FvpPlatform) -> str | None:
        """The runner ELF this executor brings for ``platform``, as the FVP process
        sees it, or ``None`` (asked after :meth:`availability` said yes)."""

    def describe(self) -> str:
        """Where runs happen, for result records."""

    def run(
        self, argv: Sequence[str], run_dir: Path, timeout_s: float, host_elf: Path | None = None
    ) -> ProcessOutcome:
        """Run to the end or until ``timeout_s``; nothing may be left running.
        ``host_elf`` is the runner ELF on this machine, when the argv names it."""

    def remove_leftovers(self) -> list[str]:
        """Remove what runs of this process left behind (a container created just
        as an interrupt arrived); the names of what was removed. Called when the
        board closes; never raises."""


class LocalFvpExecutor:
    """Starts the FVP on this machine, in its own process group.

    Args:
        search_dir: where to look for FVP binaries before ``PATH``.
    """

    brings_runners = False  # the runner is the board file's or --et-runner-elf

    def __init__(self, search_dir: Path | None = None) -> None:
        self.search_dir = search_dir

    def _find(self, platform: fvp.FvpPlatform) -> str | None:
        if self.search_dir is not None:
            candidate = self.search_dir / platform.executable
            if candidate.exists():
                return str(candidate)
        return shutil.which(platform.executable)

    def availability(self, platform: fvp.FvpPlatform) -> Availability:
        """Available when the FVP binary is on PATH (or in ``search_dir``)."""
        if self._find(platform):
            return Availability(True)
        return Availability(
            False,
            f"{platform.executable} (FVP {platform.version}) is not on PATH",
            "install the Arm Corstone FVP (EULA) and add its models/Linux64_GCC-9.3 folder to "
            "PATH (docs/boards/corstone-fvp.md, 'Installing the FVPs')",
        )

    def executable(self, platform: fvp.FvpPlatform) -> str:
        """Absolute path of the FVP binary."""
        found = self._find(platform)
        if found is None:
            raise InfrastructureError(f"{platform.executable} is not on PATH")
        return found

    def elf_path(self, elf: Path) -> str:
        """The ELF's own path."""
        return str(elf)

    def run_dir_path(self, run_dir: Path) -> str:
        """The folder's own path."""
        return str(run_dir)

    def image_runner(self, platform: fvp.FvpPlatform) -> str | None:
        """None: this machine brings no runner."""
        return None

    def describe(self) -> str:
        """This machine."""
        return "local"

    def run(
        self, argv: Sequence[str], run_dir: Path, timeout_s: float, host_elf: Path | None = None
    ) -> ProcessOutcome:
        """Run the FVP, merging stdout and stderr into ``run_dir/fvp.log``."""
        log_path = run_dir / LOG_NAME
        with log_path.open("wb") as log:
            try:
                finished = processes.run(argv, timeout_s, log=log, cwd=run_dir)
            except OSError as exc:
                raise InfrastructureError(f"cannot start {argv[0]}: {exc.strerror}") from exc
        text = log_path.read_bytes().decode(errors="replace")
        return ProcessOutcome(
            text, finished.returncode, finished.timed_out, finished.wall_s, "local"
        )

    def remove_leftovers(self) -> list[str]:
        """Nothing: :func:`et_hil.processes.run` leaves no process behind."""
        return []
