"""Physical boards over a serial console, running the upstream UART
``arm_executor_runner``.

One run, with a unit of the board's pool locked for this process:

1. the program: the ``.pte``, or a BundleIO ``.bpte`` carrying the test's
   inputs when the firmware takes bundles (otherwise the runner feeds all-ones
   and the comparison says so, see :func:`et_hil.verdict.check.run_and_compare`);
2. the image: in ``address`` mode the program itself, written at
   ``pte_address``; in ``embedded`` mode a firmware rebuilt around it (cached by
   content);
3. open the UART, flash, drain until the line is quiet, reset, and capture
   until EOT, the runner's last line, or the time limit; the whole capture is
   ``uart.log`` in the run folder;
4. read the run back: failures, outputs, BundleIO verdict, PMU counters and
   the base64 ETDump block.

A port that vanishes mid-run, or bytes lost on the link, rerun the program
(``[serial] retries``) before the run ends as an infrastructure failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import filelock
import numpy as np
import numpy.typing as npt

from et_hil.boards.base import (
    Availability,
    BaseBoard,
    BoardOptions,
    Fidelity,
    RunRequest,
    RunResult,
)
from et_hil.boards.labgrid.places import PlaceAgent, PlaceLease, labgrid_availability
from et_hil.boards.serial import lock as board_lock
from et_hil.boards.serial.commands import run_board_command, tool_exists
from et_hil.boards.serial.link import PortLost, SerialLink, is_url, wait_for_port
from et_hil.boards.serial.settings import SerialSettings, Unit, flash_command, serial_settings
from et_hil.boards.spec import BoardSpec
from et_hil.errors import (
    ConfigError,
    InfrastructureError,
    RunCrashed,
    RunError,
    RunTimeout,
)
from et_hil.executor_runner import log as runner_log
from et_hil.executor_runner.bundle import all_ones, write_bundle
from et_hil.executor_runner.etdump import EtdumpOutputError, load_etdump, program_outputs
from et_hil.executor_runner.failures import failure_error
from et_hil.programs.artifact import Artifact

UART_LOG = "uart.log"
COMMAND_LOG = "commands.log"
DRAIN_MAX_S = 5.0  # a board that never stops printing is reset anyway after this
_LOAD_FAILED = "Program loading failed"  # runner_init's assert when the program does not load


class LinkCorrupted(Exception):
    """Bytes were lost or garbled on the link: the run may be repeated."""


class SerialBoard(BaseBoard):
    """A board reached over a serial console and flashed by pyOCD or a command.

    Args:
        spec: the board file's contents; ``[serial]`` is validated again here.
        work_dir: where this worker's logs go.
        options: command-line overrides (``--et-runner-elf`` names the address-mode
            firmware image).
    """

    def __init__(
        self, spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None
    ) -> None:
        self.spec = spec
        self.work_dir = work_dir
        self.options = options or BoardOptions()
        self.settings: SerialSettings = serial_settings(spec)  # checked when the file was read
        self.firmware_image = self.options.runner_elf or self.settings.firmware_image
        cache = self.options.cache_dir or work_dir
        self.firmware_dir = cache / "firmware"
        lab = self.settings.labgrid
        # Boards in a labgrid lab: a place per run from labgrid's queue, instead
        # of a unit locked on this machine.
        self.places = (
            PlaceAgent(spec.name, lab, work_dir, board_lock.lock_dir()) if lab is not None else None
        )
        self._lab_reached = False

    # ----------------------------------------------------------- Board protocol

    def availability(self) -> Availability:
        """Available when a unit's port is present, the flash and reset tools are
        installed, and the configured firmware image exists."""
        settings = self.settings
        if settings.labgrid is not None and not self._lab_reached:
            # Checked until it first holds: once the lab was there, a coordinator
            # that goes away mid-session (a restart) is the run's infrastructure
            # error to report (the place agent reconnects), not a reason to skip.
            lab = labgrid_availability(settings.labgrid)
            if not lab.ok:
                return lab
            self._lab_reached = True
        present = [u for u in settings.units if is_url(u.port) or os.path.exists(u.port)]
        if settings.labgrid is None and not present:
            ports = ", ".join(u.port for u in settings.units)
            return Availability(
                False,
                f"serial port {ports} is not present",
                "plug the board in, or fix [serial] port in the board file "
                "(prefer /dev/serial/by-id/... paths: they survive re-enumeration)",
            )
        for what, command in (
            ("flash", settings.flash),
            ("reset", settings.reset),
            ("firmware build", settings.build),
        ):
            if command is None:
                continue
            tool = command.argv[0]
            if not tool_exists(tool):
                hint = (
                    "pip install pyocd" if tool == "pyocd" else "install it or fix the board file"
                )
                return Availability(False, f"the {what} tool '{tool}' is not on PATH", hint)
        if self.firmware_image is not None and not self.firmware_image.exists():
            return Availability(
                False,
                f"firmware image {self.firmware_image} does not exist",
                "build the address-mode runner (docs/boards/serial.md) or fix "
                "[serial.firmware] image / --et-runner-elf",
            )
        return Availability(True)

    def open(self) -> None:
        """Nothing to hold between runs: units are locked per run, so workers take turns."""

    def close(self) -> None:
        """Nothing is left open between runs; a labgrid board's place agent ends
        (it holds nothing between runs)."""
        if self.places is not None:
            self.places.close()

    def inputs_it_runs(
        self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]] | None:
        """All-ones when the firmware takes no bundles (and the inputs differ)."""
        if self.settings.bundle_io:
            return None
        ones = all_ones(artifact.input_specs)
        same = len(ones) == len(inputs) and all(
            np.array_equal(a, b) for a, b in zip(ones, inputs, strict=True)
        )
        return None if same else ones

    def check_program(self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]) -> None:
        """Refuse inputs other than all-ones when the firmware takes no bundles.

        Raises:
            ConfigError: naming the fixes (all-ones inputs, or BundleIO firmware).
        """
        if self.inputs_it_runs(artifact, inputs) is not None:
            raise ConfigError(
                f"board '{self.spec.name}': its firmware takes no BundleIO programs, so it "
                "runs all-ones inputs only; pass all-ones inputs (et_check does), or set "
                "[serial] bundle_io = true for firmware built with -DET_BUNDLE_IO=ON"
            )

    def execute(self, request: RunRequest) -> RunResult:
        """Run the program once on a free unit; see :meth:`et_hil.boards.base.Board.run`."""
        artifact, run_dir, timeout = request.artifact, request.run_dir, request.timeout_s
        program, magic = self._program(artifact, request.inputs, request.expected, run_dir)
        with (run_dir / COMMAND_LOG).open("a") as commands:
            # a firmware build can take minutes: not while holding a board
            image, address = self._image(program, commands)
            with self._unit_held() as lease:
                held_from = time.time()
                try:
                    firmware = self._ensure_firmware(lease, commands)
                    outcome = self._run_with_retries(
                        lease, image, address, timeout, run_dir, artifact, magic, commands
                    )
                except RunError as exc:  # the record says where it failed
                    exc.board_facts = {**exc.board_facts, **_where(lease)}
                    raise
                held_s = time.time() - held_from
        return dataclasses.replace(
            outcome,
            timings={**outcome.timings, "lock_wait_s": round(lease.waited_s, 6)},
            facts={
                **outcome.facts,
                **_where(lease),
                "lock_held": [round(held_from, 6), round(held_from + held_s, 6)],
                "program": program.name,
                "firmware_mode": self.settings.firmware_mode,
                **({"firmware_sha256": firmware} if firmware else {}),
            },
        )

    def _unit_held(self) -> contextlib.AbstractContextManager[board_lock.Lease | PlaceLease]:
        """A unit for one run: a labgrid place from the lab's queue, or a unit
        of the board file's pool locked on this machine."""
        if self.places is not None:
            return self.places.held()
        return board_lock.held(self.spec.name, self.settings.units, self.settings.lock_timeout_s)

    # ------------------------------------------------------------ the program

    def _program(
        self,
        artifact: Artifact,
        inputs: Sequence[npt.NDArray[Any]],
        expected: Sequence[npt.NDArray[Any]] | None,
        run_dir: Path,
    ) -> tuple[Path, str]:
        """The file the board runs, and the magic the runner will print for it."""
        if not self.settings.bundle_io:
            return artifact.pte_path, runner_log.PTE_MAGIC
        if expected is None:
            raise ConfigError(
                f"board '{self.spec.name}': a BundleIO program needs reference outputs"
            )
        return write_bundle(artifact, inputs, expected, run_dir), runner_log.BUNDLE_MAGIC

    def _image(self, program: Path, commands: IO[str]) -> tuple[Path, int | None]:
        """What to flash for ``program``, and where."""
        settings = self.settings
        if settings.firmware_mode == "address":
            return program, settings.pte_address
        assert settings.build is not None  # checked when the board file was read
        digest = hashlib.sha256(program.read_bytes())
        digest.update("\0".join(settings.build.argv).encode())
        tool = Path(settings.build.argv[0])
        if tool.is_file():  # a changed build script makes a new firmware
            digest.update(tool.read_bytes())
        folder = self.firmware_dir / digest.hexdigest()[:24]
        output = folder / "firmware.bin"
        folder.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(folder / ".lock")):
            if not output.exists():
                scratch = folder / f"build-{os.getpid()}.bin"
                argv, text, wall = run_board_command(
                    settings.build,
                    {"program": str(program), "output": str(scratch), "board": self.spec.name},
                    board=self.spec.name,
                    what="firmware build",
                )
                _log_command(commands, "firmware build", argv, text, wall)
                if not scratch.exists():
                    raise InfrastructureError(
                        f"board '{self.spec.name}': the firmware build command wrote no "
                        f"{{output}} file: {' '.join(argv)}",
                        log_tail=text,
                    )
                os.replace(scratch, output)
        return output, settings.image_address

    def _ensure_firmware(
        self, lease: board_lock.Lease | PlaceLease, commands: IO[str]
    ) -> str | None:
        """Flash the address-mode firmware when the unit does not have it yet.

        Returns:
            The SHA-256 of the firmware image the unit runs, when the board file names one.
        """
        image = self.firmware_image
        if image is None or self.settings.firmware_mode != "address":
            return None
        sha = hashlib.sha256(image.read_bytes()).hexdigest()
        if lease.state().get("firmware_sha256") == sha:
            return sha
        lease.set_state(firmware_sha256=None)  # a failed or partial flash forces a reflash
        argv, text, wall = run_board_command(
            flash_command(self.settings, image),
            self._values(lease, image, self.settings.image_address),
            board=self.spec.name,
            what="firmware flash",
        )
        _log_command(commands, "firmware flash", argv, text, wall)
        lease.set_state(firmware_sha256=sha, firmware=str(image))
        return sha

    def _values(
        self, lease: board_lock.Lease | PlaceLease, image: Path, address: int | None
    ) -> dict[str, Any]:
        """A command's placeholder values."""
        unit = lease.unit
        lab = (
            {"place": lease.place, "exporter": lease.exporter}
            if isinstance(lease, PlaceLease)
            else {}
        )
        return {
            **lab,
            "image": str(image),
            "address": f"0x{address:08x}" if address is not None else "",
            "port": unit.port,
            "probe_id": unit.probe_id or "",
            "target": self.settings.flash_target or "",
            "board": self.spec.name,
            "unit": unit.name,
        }

    # ----------------------------------------------------------------- the run

    def _run_with_retries(
        self,
        lease: board_lock.Lease | PlaceLease,
        image: Path,
        address: int | None,
        timeout_s: float,
        run_dir: Path,
        artifact: Artifact,
        magic: str,
        commands: IO[str],
    ) -> RunResult:
        settings = self.settings
        unit = lease.unit
        values = self._values(lease, image, address)
        log_path = run_dir / UART_LOG
        flashed = False
        attempts = settings.retries + 1
        problems: list[str] = []
        with log_path.open("wb") as log:
            for attempt in range(1, attempts + 1):
                if attempt > 1:
                    log.write(f"\n=== et-hil: attempt {attempt}: {problems[-1]} ===\n".encode())
                try:
                    with SerialLink(unit.port, settings.baud) as link:
                        if settings.reset is None:
                            link.drain(settings.quiet_s, DRAIN_MAX_S)
                        if not flashed or settings.reset is None:
                            argv, text, wall = run_board_command(
                                flash_command(settings, image),
                                values,
                                board=self.spec.name,
                                what="flash",
                            )
                            _log_command(commands, "flash", argv, text, wall)
                            flashed = True
                        if settings.reset is not None:
                            link.drain(settings.quiet_s, DRAIN_MAX_S)
                            argv, text, wall = run_board_command(
                                settings.reset, values, board=self.spec.name, what="reset"
                            )
                            _log_command(commands, "reset", argv, text, wall)
                        started = time.monotonic()
                        raw, timed_out = link.capture(timeout_s, sink=_writer(log))
                        wall_s = time.monotonic() - started
                    return self._read_run(
                        raw, timed_out, wall_s, artifact, magic, run_dir, log_path, attempt, unit
                    )
                except PortLost as exc:
                    problems.append(f"port lost: {exc.args[0]}")
                    if attempt == attempts:
                        break
                    if not wait_for_port(unit.port, settings.reconnect_s):
                        problems.append(
                            f"{unit.port} did not come back within {settings.reconnect_s:g} s"
                        )
                        break
                except LinkCorrupted as exc:
                    problems.append(f"link corrupted: {exc}")
                    flashed = False  # the program may not be what was written: write it again
                    if attempt == attempts:
                        break
        text = runner_log.normalize_uart(log_path.read_bytes())
        raise InfrastructureError(
            f"board '{self.spec.name}' (unit {unit.name}, {unit.port}): the serial link "
            f"failed on every attempt ({len(problems)}): {'; '.join(problems)}",
            log_tail=runner_log.log_tail(text),
            log_path=str(log_path),
        )

    def _read_run(
        self,
        raw: bytes,
        timed_out: bool,
        wall_s: float,
        artifact: Artifact,
        magic: str,
        run_dir: Path,
        log_path: Path,
        attempt: int,
        unit: Unit,
    ) -> RunResult:
        """Turn one capture into a result, or the error it means (naming the
        unit, so a flaky board of a pool shows up).

        Raises:
            LinkCorrupted: bytes lost or garbled (the caller may rerun).
            RunTimeout, RunCrashed, ConfigError: the run failed.
        """
        name = self.spec.name
        who = f"board '{name}' (unit {unit.name}, {unit.port})"
        text = runner_log.normalize_uart(raw)
        tail = runner_log.log_tail(text)
        where = {"log_tail": tail, "log_path": str(log_path)}
        run = runner_log.find_run(text)
        if run is None:
            raise RunTimeout(
                f"{who}: no runner output within {wall_s:.1f} s of the reset "
                "(is the firmware running, and the baud rate right?)",
                **where,
            )
        # Board-file mistakes first: they also make the runner fail, and the
        # fix is in the board file, not the model.
        wanted = self.settings.pte_address if self.settings.firmware_mode == "address" else None
        if wanted is not None and run.address is not None and run.address != wanted:
            raise ConfigError(
                f"{who}: the firmware reads its program at 0x{run.address:08x}, the board "
                f"file writes it at [serial.firmware] pte_address = 0x{wanted:08x}"
            )
        findings = runner_log.uart_failures(run.text)
        if (
            magic == runner_log.BUNDLE_MAGIC
            and run.magic == magic
            and any(_LOAD_FAILED in f.line for f in findings)
        ):
            raise ConfigError(
                f"{who}: the firmware cannot load a BundleIO program ({findings[0].line}); "
                "build it with -DET_BUNDLE_IO=ON, or set [serial] bundle_io = false"
            )
        failure = failure_error(findings, who, log_tail=tail, log_path=str(log_path))
        if failure is not None:
            raise failure
        if timed_out:
            raise RunTimeout(
                f"{who}: the run did not finish within {wall_s:.1f} s (hang); "
                "the board is reset by the next run",
                **where,
            )
        if run.exit_code not in (None, 0) and not runner_log.bundle_abort(run.text):
            raise RunCrashed(f"{who}: the firmware exited with code {run.exit_code}", **where)
        if run.magic != magic:
            raise LinkCorrupted(
                f"the runner found a program with magic {run.magic!r}, the harness wrote "
                f"{magic!r} (stale output, or the write to flash failed)"
            )
        try:
            files = runner_log.parse_etdump_block(run.text)
        except runner_log.EtdumpBlockError as exc:
            raise LinkCorrupted(f"ETDump block: {exc}") from exc
        for stale in ("etdump.bin", "debug_buffer.bin"):
            (run_dir / stale).unlink(missing_ok=True)
        for file_name, payload in files.items():
            (run_dir / Path(file_name).name).write_bytes(payload)
        etdump = run_dir / "etdump.bin"
        dump = None
        if etdump.exists():
            try:
                dump = load_etdump(etdump)  # parsed once: checked here, outputs below
            except RunCrashed as exc:
                raise LinkCorrupted(exc.message) from exc
        debug = run_dir / "debug_buffer.bin"
        specs = artifact.metadata["program_io"]["outputs"]
        outputs, source = self._outputs(run.text, specs, dump, debug)
        pmu = runner_log.parse_pmu(run.text)
        bundle = runner_log.parse_bundle_result(run.text)
        return RunResult(
            board=name,
            outputs=tuple(outputs),
            execute_s=wall_s,
            load_s=0.0,
            fidelity=Fidelity.SILICON,
            run_dir=run_dir,
            etdump_path=etdump if etdump.exists() else None,
            debug_buffer_path=debug if debug.exists() else None,
            log=run.text,
            timings={"uart_wall_s": wall_s},
            facts={
                "uart_log": str(log_path),
                "attempts": attempt,
                "outputs_from": source,
                **({"pmu": pmu} if pmu else {}),
                **({"bundleio": bundle} if bundle else {}),
            },
        )

    def _outputs(
        self, text: str, specs: Sequence[dict[str, Any]], dump: Any, debug: Path
    ) -> tuple[list[npt.NDArray[Any]], str]:
        """The outputs, and where they came from: the ETDump's output events when
        the firmware logged them (exact), else the UART ``Output`` lines.

        Raises:
            LinkCorrupted: lines lost or garbled.
            ConfigError: outputs neither source can give.
        """
        if dump is not None and debug.exists():
            try:
                exact = program_outputs(dump, debug.read_bytes())
            except EtdumpOutputError as exc:
                raise ConfigError(f"board '{self.spec.name}': ETDump outputs: {exc}") from exc
            if len(exact) == len(specs):
                return exact, "etdump"
        try:
            return runner_log.parse_uart_outputs(text, specs), "uart"
        except runner_log.UartOutputError as exc:
            if exc.lost:
                raise LinkCorrupted(str(exc)) from exc
            raise ConfigError(f"board '{self.spec.name}': {exc}") from exc


def _where(lease: board_lock.Lease | PlaceLease) -> dict[str, Any]:
    """The unit a run held, and for a labgrid place its exporter and reservation."""
    return {
        "unit": lease.unit.name,
        "port": lease.unit.port,
        **(lease.facts() if isinstance(lease, PlaceLease) else {}),
    }


def _writer(log: IO[bytes]) -> Any:
    def write(chunk: bytes) -> None:
        log.write(chunk)
        log.flush()  # the log survives a killed run

    return write


def _log_command(log: IO[str], what: str, argv: Sequence[str], output: str, wall_s: float) -> None:
    with contextlib.suppress(OSError):
        log.write(f"$ {' '.join(argv)}    # {what}, {wall_s:.2f} s\n{output}\n")
        log.flush()
