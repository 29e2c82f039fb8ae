"""QEMU boards: the genuine upstream ``arm_executor_runner`` (semihosting build) on
``qemu-system-arm -machine mps3-an547`` (Cortex-M55).

A run is the FVP boards' run, on another simulator: the same run folder, runner
command line, output files, ETDump block and failure classes
(:mod:`et_hil.boards.semihosting`). QEMU has no NPU, so only programs whose
operators run on the CPU kernels (portable, quantized, cortex_m) can run, and no
PMU, so the run's timing is recorded as fidelity ``qemu``: functional only.

The runner is the board file's ``runner_elf`` or ``--et-runner-elf``, else the one
``[qemu.firmware]`` describes, built from source and cached by content
(:mod:`et_hil.firmware`) the first time a board opens.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

from et_hil import processes
from et_hil.boards import semihosting
from et_hil.boards.base import (
    Availability,
    BaseBoard,
    BoardOptions,
    RunRequest,
    RunResult,
)
from et_hil.boards.qemu.command import qemu_argv
from et_hil.boards.qemu.kind import QemuOptions, QemuSettings, load_machine
from et_hil.boards.spec import BoardSpec
from et_hil.errors import ConfigError, InfrastructureError, RunTimeout
from et_hil.executor_runner import log as runner_log
from et_hil.executor_runner.build_record import read_build_record, runner_facts, summary
from et_hil.executor_runner.elf import check_memory_map, check_runner_elf
from et_hil.executor_runner.failures import RunnerFacts

LOG_NAME = "qemu.log"
FIDELITY = "qemu"


class QemuBoard(BaseBoard):
    """QEMU running the upstream semihosting runner.

    Args:
        spec: the board file's contents (``[qemu]`` names the machine and runner).
        work_dir: where logs go.
        options: command-line overrides (runner ELF, ExecuTorch source tree).
    """

    def __init__(
        self, spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None
    ) -> None:
        self.spec = spec
        self.work_dir = work_dir
        self.options = options or BoardOptions()
        self.qemu_options: QemuOptions = self.options.for_kind("qemu", QemuOptions())
        self.settings = spec.settings_of(QemuSettings) or QemuSettings()
        self.machine = load_machine(self.settings.machine)
        self.given_elf = spec.file_path(self.options.runner_elf or self.settings.runner_elf)
        self.runner_elf: Path | None = self.given_elf
        self.elf_sha256: str | None = None
        self.build_record: dict[str, Any] | None = None
        self.runner_facts: RunnerFacts | None = None

    def _qemu(self) -> str | None:
        return shutil.which(self.qemu_options.qemu)

    def availability(self) -> Availability:
        """Available when QEMU is installed and there is a runner: the given ELF
        (which must exist, be built for the CPU and fit the machine's memories),
        else a firmware build that can be made here (toolchain and sources).
        Every problem is reported at once."""
        reasons: list[str] = []
        hints: list[str] = []
        if self._qemu() is None:
            reasons.append(f"{self.qemu_options.qemu} is not on PATH")
            hints.append("install QEMU (Debian: apt-get install qemu-system-arm)")
        if self.given_elf is not None:
            problem = self._check_elf(self.given_elf)
            if problem:
                reasons.append(problem)
                hints.append("use a runner built for this machine, or leave runner_elf unset")
        elif self.runner_elf is None:
            from et_hil.firmware.toolchain import missing_build_tools

            for what, hint in missing_build_tools(self.qemu_options.executorch_src):
                reasons.append(what)
                hints.append(hint)
        if reasons:
            return Availability(False, "; ".join(reasons), "; ".join(hints))
        return Availability(True)

    def _check_elf(self, elf: Path) -> str | None:
        """What is wrong with a runner ELF for this board, or ``None``."""
        if not elf.exists():
            return f"runner ELF {elf} does not exist"
        try:
            info = check_runner_elf(elf, self.spec.cpu or self.machine.cpu, self.spec.name)
            check_memory_map(
                elf,
                info,
                self.machine.regions(),
                self.spec.name,
                f"QEMU machine '{self.machine.name}'",
            )
        except ConfigError as exc:
            return str(exc)
        self.elf_sha256 = info.sha256
        self.build_record = read_build_record(elf, info.sha256)
        self.runner_facts = runner_facts(elf, self.build_record)
        return None

    def open(self) -> None:
        """Build (or find in the cache) the runner when the board names none.

        Raises:
            InfrastructureError: the firmware build failed (names its log).
            ConfigError: the built ELF does not suit the machine.
        """
        if self.runner_elf is not None:
            return
        from et_hil.firmware.service import runner_for_board

        built = runner_for_board(
            self.settings.firmware,
            cache_dir=self.options.cache_dir,
            executorch_src=self.qemu_options.executorch_src,
            board=self.spec.name,
        )
        problem = self._check_elf(built)
        if problem:
            raise ConfigError(problem)
        self.runner_elf = built

    def close(self) -> None:
        """Nothing is left running: each run ends its QEMU process group."""

    def execute(self, request: RunRequest) -> RunResult:
        """Run the program once under QEMU; see :meth:`et_hil.boards.base.Board.run`."""
        artifact, run_dir = request.artifact, request.run_dir
        if self.runner_elf is None:
            self.open()
        assert self.runner_elf is not None
        qemu = self._qemu()
        if qemu is None:
            raise InfrastructureError(
                f"board '{self.spec.name}': {self.qemu_options.qemu} is not on PATH"
            )
        argv = qemu_argv(
            qemu,
            self.machine.name,
            str(self.runner_elf),
            semihosting.prepare_run_dir(artifact, request.inputs, run_dir, request.expected),
        )
        (run_dir / "command.txt").write_text(shlex.join(argv) + "\n")
        limit = request.timeout_s
        log_path = run_dir / LOG_NAME
        with log_path.open("wb") as log:
            try:
                finished = processes.run(argv, limit, log=log, cwd=run_dir)
            except OSError as exc:
                raise InfrastructureError(
                    f"board '{self.spec.name}': cannot start {qemu}: {exc.strerror}"
                ) from exc
        text = log_path.read_bytes().decode(errors="replace")
        if finished.timed_out:
            raise RunTimeout(
                f"board '{self.spec.name}': no result after {limit:g} s; QEMU was killed",
                log_tail=runner_log.log_tail(text),
                log_path=str(log_path),
            )
        found = semihosting.collect(
            artifact,
            run_dir,
            who=f"board '{self.spec.name}'",
            log=text,
            exit_code=finished.returncode,
            log_path=str(log_path),
            simulator="QEMU",
            runner=self.runner_facts,
        )
        return RunResult(
            board=self.spec.name,
            outputs=found.outputs,
            execute_s=finished.wall_s,
            load_s=0.0,
            fidelity=FIDELITY,
            run_dir=run_dir,
            etdump_path=found.etdump_path,
            debug_buffer_path=found.debug_buffer_path,
            log=text,
            timings={"qemu_wall_s": finished.wall_s},
            facts={
                "machine": self.machine.name,
                "runner_elf_sha256": self.elf_sha256,
                **({"firmware": summary(self.build_record)} if self.build_record else {}),
                # QEMU's PMU counters read zero: figures from its log would mislead.
                "pmu_note": "not recorded: QEMU has no PMU (its counters read zero)",
                **({"bundle_result": found.bundle_result} if found.bundle_result else {}),
            },
        )
