"""Corstone FVP boards: the upstream ``arm_executor_runner`` (semihosting build) on an FVP.

One run = a fresh folder with ``program.pte`` and ``i<k>.bin``, the FVP command
rendered from ``platforms/<platform>.toml`` (beside this module), and the
results read back: ``out-<i>.bin`` decoded with dtypes and shapes from the
program's own metadata, ``etdump.bin`` and ``debug_buffer.bin`` when the
firmware writes them, the log scanned for failures. The FVP's exit status alone never means success.

Where the FVP process runs is an :class:`~et_hil.boards.fvp.executor.FvpExecutor`:
on this machine (:mod:`et_hil.boards.fvp.executor`) or in a container
(:mod:`et_hil.boards.fvp.docker`); both receive the same argv.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from et_hil.boards import semihosting
from et_hil.boards.base import (
    Availability,
    BaseBoard,
    BoardOptions,
    Fidelity,
    RunRequest,
    RunResult,
)
from et_hil.boards.fvp import platform as fvp
from et_hil.boards.fvp.executor import (
    LOG_NAME,
    WALL_GRACE_S,
    FvpExecutor,
    LocalFvpExecutor,
)
from et_hil.boards.fvp.kind import FvpOptions, FvpSettings
from et_hil.boards.spec import BoardSpec
from et_hil.errors import ConfigError, InfrastructureError, RunTimeout
from et_hil.executor_runner import log as runner_log
from et_hil.executor_runner.build_record import read_build_record, runner_facts, summary
from et_hil.executor_runner.elf import check_memory_map, check_runner_elf
from et_hil.executor_runner.failures import RunnerFacts
from et_hil.programs.artifact import Artifact
from et_hil.validation import convert_all


class FvpBoard(BaseBoard):
    """A Corstone FVP running the upstream semihosting runner.

    Args:
        spec: the board file's contents (``[fvp]`` names the platform and runner ELF).
        work_dir: where logs go.
        options: command-line overrides (runner ELF, cycle mode, retries).
        executor: where the FVP runs (default: this machine).
    """

    def __init__(
        self,
        spec: BoardSpec,
        work_dir: Path,
        options: BoardOptions | None = None,
        executor: FvpExecutor | None = None,
    ) -> None:
        self.spec = spec
        self.options = options or BoardOptions()
        self.fvp_options: FvpOptions = self.options.for_kind("fvp", FvpOptions())
        settings = spec.settings_of(FvpSettings)
        if settings is None:  # a spec made in code: check its [fvp] table as a file's would be
            converted, problems = convert_all(spec.sections.get("fvp", {}), FvpSettings, "[fvp]")
            if converted is None:
                raise ConfigError(f"board file {spec.path}: {'; '.join(problems)}")
            settings = converted
        self.settings = settings
        self.platform = fvp.load_platform(settings.platform)
        self.runner_elf = spec.file_path(self.options.runner_elf or settings.runner_elf)
        self.cycles = self.fvp_options.cycles or settings.cycles
        retries = self.fvp_options.retries
        self.retries = retries if retries is not None else settings.retries
        self.executors: list[FvpExecutor] = (
            [executor] if executor is not None else self._executors()
        )
        self.executor: FvpExecutor = self.executors[0]
        self.elf_sha256: str | None = None
        self.build_record: dict[str, Any] | None = None
        self.runner_facts: RunnerFacts | None = None

    def _executors(self) -> list[FvpExecutor]:
        """Where the FVP may run, in order of preference (``[fvp] backends``,
        ``--et-fvp-backend``)."""
        order = self.fvp_options.backends or self.settings.backends
        executors: list[FvpExecutor] = []
        for name in order:
            if name == "local":
                executors.append(LocalFvpExecutor(self.fvp_options.fvp_dir))
            elif name == "docker":
                from et_hil.boards.fvp.docker import DockerFvpExecutor, default_image

                image = self.fvp_options.image or self.settings.image or default_image()
                executors.append(DockerFvpExecutor(image, env_names=self.fvp_options.docker_env))
            else:
                raise ConfigError(
                    f"board '{self.spec.name}': unknown FVP backend '{name}' (local, docker)"
                )
        return executors

    @property
    def num_macs(self) -> int:
        """MACs of the FVP's NPU: the board file's ``[fvp] num_macs``, else the compile
        target's (``ethos-u85-256`` -> 256, which must match), else the platform default."""
        if self.settings.num_macs is not None:
            return self.settings.num_macs
        if self.spec.target.startswith("ethos-u"):
            return int(self.spec.target.rsplit("-", 1)[1])
        return self.platform.default_num_macs

    def availability(self) -> Availability:
        """Available when an executor can start the FVP (on this machine, else in Docker,
        by default) and there is a runner for the CPU: the configured runner ELF, which
        must exist and be built for the board's CPU, else the Docker image's own runner.

        Every problem is reported, not only the first: ``reason`` lists them all and
        ``hint`` every fix, each separated by ``'; '``. ``self.executor`` becomes the
        first executor that can start the FVP.
        """
        reasons: list[str] = []
        hints: list[str] = []
        found: FvpExecutor | None = None
        refusals: list[Availability] = []
        for executor in self.executors:
            answer = executor.availability(self.platform)
            if answer.ok:
                found = self.executor = executor
                break
            refusals.append(answer)
        if found is None:
            reasons += [r.reason for r in refusals]
            # The executors are alternatives: any one of their fixes is enough.
            hints.append("; or ".join(r.hint for r in refusals if r.hint))
        # The runner is checked even when the FVP is missing, so that one look names
        # everything to fix.
        image_runner = found.image_runner(self.platform) if found is not None else None
        if self.runner_elf is None:
            if not image_runner:  # else the image's own runner, built for this platform
                reasons.append("no runner ELF configured")
                hint = (
                    "build arm_executor_runner (docs/boards/corstone-fvp.md, 'Runner ELFs') "
                    "and set [fvp] runner_elf in the board file or --et-runner-elf "
                    f"{self.spec.name}=PATH"
                )
                if found is None and any(e.brings_runners for e in self.executors):
                    hint += ", or use the FVP image, which brings its own runners"
                hints.append(hint)
        elif not self.runner_elf.exists():
            reasons.append(f"runner ELF {self.runner_elf} does not exist")
            hints.append("build it (docs/boards/corstone-fvp.md, 'Runner ELFs') or fix the path")
        else:
            try:
                info = check_runner_elf(
                    self.runner_elf, self.spec.cpu or self.platform.cpu, self.spec.name
                )
                check_memory_map(
                    self.runner_elf,
                    info,
                    self.platform.regions(),
                    self.spec.name,
                    f"FVP platform '{self.platform.name}'",
                )
            except ConfigError as exc:
                reasons.append(str(exc))
                hints.append("use the runner ELF built for this board")
            else:
                self.elf_sha256 = info.sha256
                self.build_record = read_build_record(self.runner_elf, info.sha256)
                self.runner_facts = runner_facts(self.runner_elf, self.build_record)
        if reasons:
            return Availability(False, "; ".join(reasons), "; ".join(h for h in hints if h))
        return Availability(True)

    def open(self) -> None:
        """Nothing to start: each run launches its own FVP."""

    def close(self) -> None:
        """Nothing is left running: each run stops its FVP, and a container created
        as an interrupt arrived is removed here."""
        for executor in self.executors:
            executor.remove_leftovers()

    def execute(self, request: RunRequest) -> RunResult:
        """Run the program once on the FVP; see :meth:`et_hil.boards.base.Board.run`."""
        artifact, inputs, run_dir = request.artifact, request.inputs, request.run_dir
        image_runner = self.executor.image_runner(self.platform)
        if self.runner_elf is not None:
            elf = self.executor.elf_path(self.runner_elf)
        elif image_runner:
            elf = image_runner
        else:
            raise ConfigError(f"board '{self.spec.name}': no runner ELF configured")
        semihosting.prepare_run_dir(artifact, inputs, run_dir, request.expected)
        limit = int(request.timeout_s)
        argv = fvp.render_command(
            self.platform,
            executable=self.executor.executable(self.platform),
            elf=elf,
            num_macs=self.num_macs,
            timeout_s=max(1, limit),
            semihosting_cwd=self.executor.run_dir_path(run_dir),
            input_count=len(inputs),
            fast=not self.cycles,
        )
        (run_dir / "command.txt").write_text(fvp.quote_argv(argv) + "\n")
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._run_once(artifact, argv, run_dir, limit + WALL_GRACE_S, attempt)
            except InfrastructureError:
                # Launch and licence failures only: crashes and mismatches are never retried.
                if attempt > self.retries:
                    raise
                for stale in run_dir.glob("out-*.bin"):
                    stale.unlink()

    def _run_once(
        self, artifact: Artifact, argv: Sequence[str], run_dir: Path, wall_s: float, attempt: int
    ) -> RunResult:
        outcome = self.executor.run(argv, run_dir, wall_s, host_elf=self.runner_elf)
        log_path = str(run_dir / LOG_NAME)
        if outcome.timed_out:
            raise RunTimeout(
                f"board '{self.spec.name}': no result after {wall_s:g} s (FVP --timelimit "
                f"{int(wall_s - WALL_GRACE_S)} s + {WALL_GRACE_S:g} s); the FVP was killed",
                log_tail=runner_log.log_tail(outcome.log),
                log_path=log_path,
            )
        found = semihosting.collect(
            artifact,
            run_dir,
            who=f"board '{self.spec.name}'",
            log=outcome.log,
            exit_code=outcome.exit_code,
            log_path=log_path,
            simulator="the FVP",
            context=f" (attempt {attempt})",
            runner=self.runner_facts,
        )
        return RunResult(
            board=self.spec.name,
            outputs=found.outputs,
            execute_s=outcome.wall_s,
            load_s=0.0,
            fidelity=Fidelity.FVP_CYCLES if self.cycles else Fidelity.FVP_FAST,
            run_dir=run_dir,
            etdump_path=found.etdump_path,
            debug_buffer_path=found.debug_buffer_path,
            log=outcome.log,
            timings={"fvp_wall_s": outcome.wall_s},
            facts={
                "fvp": f"{self.platform.executable} {self.platform.version}",
                "where": outcome.where,
                "runner_elf_sha256": self.elf_sha256,
                **({"firmware": summary(self.build_record)} if self.build_record else {}),
                "attempts": attempt,
                # PMU figures mean something in cycle mode only: with --fast the NPU
                # model is functional and its counters are not cycle figures.
                **({"pmu": found.pmu} if found.pmu and self.cycles else {}),
                **(
                    {"pmu_note": "not recorded: --fast NPU model (run with --et-fvp-cycles)"}
                    if found.pmu and not self.cycles
                    else {}
                ),
                **({"bundle_result": found.bundle_result} if found.bundle_result else {}),
            },
        )
