"""What every board is: the ``Board`` protocol and the values it returns."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from harness.artifact import Artifact
from harness.boardspec import BoardSpec


class Fidelity(enum.StrEnum):
    """How much a timing can be trusted; timings of different fidelities never compare."""

    HOST_WALL = "host-wall"  # wall time of the host CPU running the portable runtime
    REFERENCE_MODEL = "tosa-reference"  # wall time of the TOSA reference model: not a device
    FVP_FAST = "fvp-fast"  # FVP with --fast: functional only
    FVP_CYCLES = "fvp-cycles"  # FVP NPU model without --fast: cycle-approximate NPU
    SILICON = "silicon"  # a real board


@dataclasses.dataclass(frozen=True)
class BoardOptions:
    """Command-line settings boards may use.

    Attributes:
        runner_elf: the firmware to run (FVP and serial boards), over the board file's.
        fvp_cycles: run FVPs without ``--fast`` (cycle-approximate NPU, slower).
        retries: retries of infrastructure failures (launch, licence) per run.
        fvp_dir: where to look for FVP binaries before ``PATH``.
        fvp_backends: where FVPs may run, in order (``local``, ``docker``).
        fvp_image: the Docker image with the FVPs.
        docker_env: host environment variables passed into FVP containers.
        cache_dir: the artifact cache folder (serial boards keep firmware builds there).
    """

    runner_elf: Path | None = None
    fvp_cycles: bool = False
    retries: int | None = None
    fvp_dir: Path | None = None
    fvp_backends: tuple[str, ...] = ()
    fvp_image: str | None = None
    docker_env: tuple[str, ...] = ()
    cache_dir: Path | None = None


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
        fidelity: what kind of time ``execute_s`` is.
        run_dir: folder holding the ETDump, debug buffer and log of this run.
        etdump_path: the ETDump, when the board produced one.
        debug_buffer_path: the debug buffer (intermediate outputs), when produced.
        log: what the runtime printed during the run.
        extra: board-specific facts (delegate time, PMU counters...).
    """

    board: str
    outputs: tuple[npt.NDArray[Any], ...]
    execute_s: float
    load_s: float
    fidelity: Fidelity
    run_dir: Path
    etdump_path: Path | None = None
    debug_buffer_path: Path | None = None
    log: str = ""
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def timings(self) -> dict[str, Any]:
        """Timings for a result record."""
        return {
            "execute_s": round(self.execute_s, 6),
            "load_s": round(self.load_s, 6),
            "fidelity": str(self.fidelity),
            **{k: v for k, v in self.extra.items() if k.endswith("_s")},
        }


class Board(Protocol):
    """A place where programs run. Boards are opened once per worker and reused.

    Implementations live one per module in :mod:`harness.boards`.
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
    from harness.errors import ConfigError

    inputs = [as_numpy(x) for x in inputs]
    specs = artifact.input_specs
    given = [{"shape": list(a.shape), "dtype": str(a.dtype)} for a in inputs]
    problem = None
    if len(specs) != len(inputs):
        problem = f"it takes {len(specs)} inputs, {len(inputs)} were given"
    else:
        for i, (spec, arr) in enumerate(zip(specs, inputs, strict=True)):
            if list(arr.shape) != list(spec["shape"]) or str(arr.dtype) != str(spec["dtype"]):
                problem = (
                    f"input {i} is {list(arr.shape)} {arr.dtype}, "
                    f"the program was built for {spec['shape']} {spec['dtype']}"
                )
                break
    if problem:
        raise ConfigError(
            f"board '{board}': program of model '{artifact.model_name}' cannot take these "
            f"inputs: {problem}. Build with example inputs of the shapes you run "
            f"(given: {given})"
        )
    return inputs


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


def input_dim_orders(artifact: Artifact) -> list[list[int] | None]:
    """The dim order of each program input, from the program's own metadata."""
    specs = (artifact.metadata.get("program_io") or {}).get("inputs") or []
    return [spec.get("dim_order") for spec in specs] or [None] * len(artifact.input_specs)
