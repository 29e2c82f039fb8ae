"""What every board is: the ``Board`` protocol and the values it returns."""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from et_hil.boards.board_spec import BoardSpec
    from et_hil.programs.artifact import Artifact

T = TypeVar("T")


class Fidelity(enum.StrEnum):
    """The fidelities of the built-in kinds: how much a timing can be trusted.

    Timings of different fidelities never compare. Each kind declares the ones it
    gives (:attr:`et_hil.boards.registry.BoardKind.fidelities`); a kind of one's
    own may declare new ones (a plain string in :attr:`RunResult.fidelity`).
    """

    HOST_WALL = "host-wall"  # wall time of the host CPU running the portable runtime
    REFERENCE_MODEL = "tosa-reference"  # wall time of the TOSA reference model: not a device
    FVP_FAST = "fvp-fast"  # FVP with --fast: functional only
    FVP_CYCLES = "fvp-cycles"  # FVP NPU model without --fast: cycle-approximate NPU
    SILICON = "silicon"  # a real board


@dataclasses.dataclass(frozen=True)
class BoardOptions:
    """Command-line settings boards may use.

    Attributes:
        runner_elf: the firmware to run (``--et-runner-elf``), over the board file's.
        cache_dir: the artifact cache folder (firmware builds are kept there too).
        kind_options: each kind's own options by kind name (an ``FvpOptions`` for
            ``fvp`` ...), made by the kind's ``options_from``.
    """

    runner_elf: Path | None = None
    cache_dir: Path | None = None
    kind_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def for_kind(self, kind: str, default: T) -> T:
        """The options of ``kind``, or ``default`` when none were given."""
        value: T = self.kind_options.get(kind, default)
        return value


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a board can run on this machine, and if not, why and what to do."""

    ok: bool
    reason: str = ""
    hint: str = ""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one run of a program on a board produced.

    Attributes:
        board: board name.
        outputs: the program's outputs, in order.
        execute_s: time of the ``execute`` call alone.
        load_s: time to load the program and method.
        fidelity: what kind of time ``execute_s`` is (one its kind declares).
        run_dir: folder holding the ETDump, debug buffer and log of this run.
        etdump_path: the ETDump, when the board produced one.
        debug_buffer_path: the debug buffer (intermediate outputs), when produced.
        log: what the runtime printed during the run.
        timings: seconds of the phases of the run the board measured besides
            ``execute_s`` and ``load_s``, each named ``<phase>_s`` (``fvp_wall_s``,
            ``delegate_s``, ``lock_wait_s``...); the record's ``timings`` holds them.
        facts: what the board knows about the run, for the record's ``board_facts``
            (see :data:`RUN_FACTS`): JSON values, keyed by name. The set differs
            by kind, and a kind of one's own adds its own, so it is a mapping.
        extra: what boards gave before ``timings`` and ``facts`` (both mixed):
            split into them, numbers named ``*_s`` being timings, with an
            :class:`~et_hil.errors.EtHilDeprecationWarning`.
    """

    board: str
    outputs: tuple[npt.NDArray[Any], ...]
    execute_s: float
    load_s: float
    fidelity: str
    run_dir: Path
    etdump_path: Path | None = None
    debug_buffer_path: Path | None = None
    log: str = ""
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: dataclasses.InitVar[Mapping[str, Any] | None] = None

    def __post_init__(self, extra: Mapping[str, Any] | None) -> None:
        if not extra:
            return
        import warnings

        from et_hil.errors import EtHilDeprecationWarning

        warnings.warn(
            f"board '{self.board}': RunResult(extra=...) is deprecated; give durations "
            "as timings= (seconds, named *_s) and the rest as facts=",
            EtHilDeprecationWarning,
            stacklevel=3,
        )
        timed = {
            k: float(v)
            for k, v in extra.items()
            if k.endswith("_s") and isinstance(v, int | float) and not isinstance(v, bool)
        }
        facts = {k: v for k, v in extra.items() if k not in timed}
        # (frozen: the fields are set once, here, as __init__ would)
        object.__setattr__(self, "timings", {**timed, **self.timings})
        object.__setattr__(self, "facts", {**facts, **self.facts})


# The facts the built-in kinds give (RunResult.facts; the record's ``board_facts``).
RUN_FACTS: Mapping[str, str] = {
    "attempts": "fvp, serial: the try that gave the result (a flaky licence or link is retried)",
    "where": "fvp: local or docker, where the FVP ran",
    "unit": "serial: the unit of the board file's pool that ran it",
    "port": "serial: that unit's UART",
    "labgrid_place": "serial through labgrid: the place that ran it",
    "labgrid_exporter": "serial through labgrid: the place's exporter host",
    "labgrid_reservation": "serial through labgrid: the reservation that held it",
    "labgrid_owner": "serial through labgrid: who held it",
    "fvp": "fvp: the FVP's executable and version",
    "machine": "qemu: the QEMU machine",
    "runner_elf_sha256": "fvp, qemu: the runner firmware that ran",
    "firmware": "fvp, qemu: the firmware build it came from (et-hil firmware build)",
    "pmu": "fvp (cycle mode), serial: the run's PMU counters, by name",
    "pmu_note": "fvp, qemu: why no PMU counters were recorded",
    "bundle_result": "fvp, qemu: what BundleIO firmware said of its own outputs",
    "bundleio": "serial: what BundleIO firmware said of its own outputs",
    "delegate_calls": "tosa: calls into the TOSA reference model",
    "uart_log": "serial: the UART log",
    "outputs_from": "serial: etdump or uart, where the outputs were read",
    "lock_held": "serial: when the unit was held (start, end: Unix time)",
    "program": "serial: the program file written to the board",
    "firmware_mode": "serial: address or embedded",
    "firmware_sha256": "serial: the firmware image flashed",
    "inputs": "what inputs ran, when not the given ones (all-ones on UART firmware)",
}


class Board(Protocol):
    """A place where programs run. Boards are opened once per worker and reused.

    Each kind's class is named by its :class:`~et_hil.boards.registry.BoardKind`
    and made as ``cls(spec, work_dir, options)``.
    """

    spec: BoardSpec

    def availability(self) -> Availability:
        """Whether this board can run here (cheap; no program is run)."""

    def inputs_it_runs(
        self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]] | None:
        """The inputs the board will really run on, when it cannot take the given
        ones (UART firmware without BundleIO feeds all-ones), else ``None``."""

    def open(self) -> None:
        """Acquire what the board needs (processes, devices). Idempotent."""

    def close(self) -> None:
        """Release everything; nothing may be left running. Idempotent."""

    def run(
        self,
        artifact: Artifact,
        inputs: Sequence[npt.NDArray[Any]],
        *,
        run_dir: Path,
        timeout_s: float | None = None,
        debug_buffer_size: int = 0,
        expected: Sequence[npt.NDArray[Any]] | None = None,
    ) -> RunResult:
        """Run the artifact's program once on ``inputs``.

        ``expected`` are the reference outputs, for firmware that checks its
        outputs itself (BundleIO); other boards ignore them.

        Raises:
            RunTimeout, RunCrashed, InfrastructureError: the run gave no result.
        """


def check_inputs_match(
    artifact: Artifact, inputs: Sequence[Any], board: str
) -> list[npt.NDArray[Any]]:
    """The inputs as numpy arrays (tensors accepted), refused when their count,
    shape or dtype differ from the program's.

    Raises:
        ConfigError: naming the model, the input and both specs.
    """
    from et_hil.errors import ConfigError

    inputs = [as_numpy(x) for x in inputs]
    specs = artifact.input_specs
    given = [{"shape": list(a.shape), "dtype": str(a.dtype)} for a in inputs]
    dynamic = artifact.metadata.get("dynamic_dims")
    problem = None
    if len(specs) != len(inputs):
        problem = f"it takes {len(specs)} inputs, {len(inputs)} were given"
    else:
        for i, (spec, arr) in enumerate(zip(specs, inputs, strict=True)):
            if dynamic:  # bounded dynamic shapes: any size within the bounds
                from et_hil.programs.dynamic_shapes import shape_allowed

                shape_ok = shape_allowed(dynamic, i, arr.shape)
                wanted = f"{dynamic['inputs'][i]} ({_ranges(dynamic)})"
            else:
                shape_ok = list(arr.shape) == list(spec["shape"])
                wanted = str(spec["shape"])
            if not shape_ok or str(arr.dtype) != str(spec["dtype"]):
                problem = (
                    f"input {i} is {list(arr.shape)} {arr.dtype}, "
                    f"the program was built for {wanted} {spec['dtype']}"
                )
                break
    if problem:
        raise ConfigError(
            f"board '{board}': program of model '{artifact.model_name}' cannot take these "
            f"inputs: {problem}. Build with example inputs of the shapes you run "
            f"(given: {given})"
        )
    return inputs


def _ranges(dynamic: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} in {lo}..{hi}" for k, (lo, hi) in dynamic["symbols"].items())


def as_numpy(value: Any) -> npt.NDArray[Any]:
    """A tensor or array as a contiguous numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(value)


class RunsGivenInputs:
    """For boards that run whatever inputs they are given (all but UART firmware
    without BundleIO)."""

    def inputs_it_runs(
        self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]] | None:
        """``None``: the given inputs are run."""
        return None


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One run, as :meth:`BaseBoard.run` hands it to :meth:`BaseBoard.execute`: the
    inputs checked against the program, the run folder made, the time limit settled.

    Attributes:
        artifact: the program to run.
        inputs: the inputs as numpy arrays, of the count, shapes and dtypes the
            program takes.
        run_dir: the run's folder (it exists).
        timeout_s: the time limit: the caller's, else the board file's ``run_timeout_s``.
        debug_buffer_size: bytes for intermediate outputs (boards that take a size).
        expected: reference outputs, for firmware that checks its outputs itself
            (BundleIO).
    """

    artifact: Artifact
    inputs: list[npt.NDArray[Any]]
    run_dir: Path
    timeout_s: float
    debug_buffer_size: int = 0
    expected: Sequence[npt.NDArray[Any]] | None = None

    @property
    def subject(self) -> str:
        """What runs, for messages: ``model 'Net'``."""
        return f"model '{self.artifact.model_name}'"


class BaseBoard(RunsGivenInputs, abc.ABC):
    """A :class:`Board` whose :meth:`run` is written once: the built-in kinds'
    base, and a kind of one's own may use it too (or implement :class:`Board`
    directly; callers type against the protocol).

    :meth:`run` checks the inputs against the program, asks :meth:`check_program`
    whether this board can run it, makes the run folder and settles the time
    limit, all before anything is started; then :meth:`execute` runs it. A
    subclass says what differs: :meth:`execute`, and :meth:`check_program` when
    it refuses some programs.
    """

    spec: BoardSpec

    @abc.abstractmethod
    def availability(self) -> Availability:
        """Whether this board can run here (cheap; no program is run)."""

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire what the board needs (processes, devices). Idempotent."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything; nothing may be left running. Idempotent."""

    def run(
        self,
        artifact: Artifact,
        inputs: Sequence[npt.NDArray[Any]],
        *,
        run_dir: Path,
        timeout_s: float | None = None,
        debug_buffer_size: int = 0,
        expected: Sequence[npt.NDArray[Any]] | None = None,
    ) -> RunResult:
        """Run the artifact's program once on ``inputs``; see :meth:`Board.run`.

        Raises:
            ConfigError: the inputs do not suit the program, or this board cannot
                run it (:meth:`check_program`); nothing was started.
            RunTimeout, RunCrashed, InfrastructureError: the run gave no result.
        """
        arrays = check_inputs_match(artifact, inputs, self.spec.name)
        self.check_program(artifact, arrays)
        run_dir.mkdir(parents=True, exist_ok=True)
        request = RunRequest(
            artifact=artifact,
            inputs=arrays,
            run_dir=run_dir,
            # 0 and None alike mean "the board's own limit": no run ends at once.
            timeout_s=float(timeout_s or self.spec.run_timeout_s),
            debug_buffer_size=debug_buffer_size,
            expected=expected,
        )
        return self.execute(request)

    def check_program(self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]) -> None:
        """Refuse a program (or inputs) this board cannot run; by default, none.

        Called with inputs that already match the program.

        Raises:
            ConfigError: naming the board, the model and what would make it run.
        """

    @abc.abstractmethod
    def execute(self, request: RunRequest) -> RunResult:
        """Run the program of a checked :class:`RunRequest` once.

        Raises:
            RunTimeout, RunCrashed, InfrastructureError: the run gave no result.
        """


def input_dim_orders(artifact: Artifact) -> list[list[int] | None]:
    """The dim order of each program input, from the program's own metadata."""
    specs = (artifact.metadata.get("program_io") or {}).get("inputs") or []
    return [spec.get("dim_order") for spec in specs] or [None] * len(artifact.input_specs)
