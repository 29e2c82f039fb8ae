"""The upstream runner's semihosting protocol, for every board that speaks it (FVP, QEMU).

The semihosting build of ``arm_executor_runner`` reads its program and inputs
from the host's files and writes its outputs back (``out-<i>.bin``); the ETDump
comes as a base64 block in its log. One run is one folder:

* :func:`prepare_run_dir` writes ``program.pte`` and ``i<k>.bin`` (or, for a
  program without inputs, a BundleIO ``program.bpte``) and returns the runner's argv;
* the board starts its simulator (FVP, QEMU) with that argv and that folder;
* :func:`collect` reads the log and the files back into a :class:`Collected`,
  raising the failure class the log means.

Programs without inputs go to the runner as a BundleIO program: see
:mod:`et_hil.executor_runner.command_line`.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil.errors import ConfigError, RunCrashed, RunError
from et_hil.executor_runner import log as runner_log
from et_hil.executor_runner.command_line import BUNDLE, OUTPUT_BASENAME, PROGRAM, runner_argv
from et_hil.executor_runner.etdump import load_etdump
from et_hil.executor_runner.failures import RunnerFacts, failure_error
from et_hil.programs import dim_order
from et_hil.programs.artifact import Artifact


def _write_inputs(artifact: Artifact, inputs: Sequence[npt.NDArray[Any]], run_dir: Path) -> None:
    """``i<k>.bin``: each input's raw bytes in the program's dim order, exact size."""
    specs = artifact.metadata.get("program_io", {}).get("inputs", [])
    for k, array in enumerate(inputs):
        spec = specs[k] if k < len(specs) else {}
        data = dim_order.to_memory(array, spec.get("dim_order"))
        sizes: list[int] = list(spec.get("sizes") or array.shape)
        expected = int(np.prod(sizes)) * array.dtype.itemsize
        if data.nbytes != expected:
            raise ConfigError(
                f"input {k}: {data.nbytes} bytes, the program expects {expected} "
                f"({spec.get('sizes')} {spec.get('dtype')})"
            )
        (run_dir / f"i{k}.bin").write_bytes(data.tobytes())


def _placeholder_outputs(artifact: Artifact) -> list[npt.NDArray[Any]]:
    """Zeros shaped like the program's outputs: a bundle needs expected outputs,
    and the harness judges the real ones itself (a runner mismatch is ignored)."""
    specs = artifact.metadata.get("program_io", {}).get("outputs", [])
    return [np.zeros(s["sizes"], dtype=np.dtype(s["dtype"])) for s in specs]


def prepare_run_dir(
    artifact: Artifact,
    inputs: Sequence[npt.NDArray[Any]],
    run_dir: Path,
    expected: Sequence[npt.NDArray[Any]] | None = None,
) -> list[str]:
    """Lay out ``run_dir`` for one run and return the runner's argv.

    Results of an earlier run in the same folder are removed first, so they can
    never be read as this run's.

    Raises:
        ConfigError: an input has the wrong size for the program.
        BuildError: a bundle for a program without inputs cannot be made.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in [
        *run_dir.glob(f"{OUTPUT_BASENAME}-*.bin"),
        run_dir / "etdump.bin",
        run_dir / "debug_buffer.bin",
        run_dir / BUNDLE,
    ]:
        stale.unlink(missing_ok=True)
    if not inputs:
        from et_hil.executor_runner.bundle import write_bundle

        reference = list(expected) if expected is not None else _placeholder_outputs(artifact)
        bundle = write_bundle(artifact, [], reference, run_dir / "bundles")
        shutil.copyfile(bundle, run_dir / BUNDLE)
    else:
        shutil.copyfile(artifact.pte_path, run_dir / PROGRAM)
        _write_inputs(artifact, inputs, run_dir)
    return runner_argv(len(inputs))


def read_outputs(artifact: Artifact, run_dir: Path) -> list[npt.NDArray[Any]]:
    """Decode ``out-<i>.bin`` with the program's output dtypes, sizes and dim orders.

    Raises:
        RunCrashed: a file is missing or has the wrong size (truncated output).
    """
    outputs = []
    for i, spec in enumerate(artifact.metadata["program_io"]["outputs"]):
        if spec.get("kind") != "tensor":
            raise RunCrashed(f"output {i} is not a tensor ({spec.get('kind')}); cannot decode it")
        path = run_dir / f"{OUTPUT_BASENAME}-{i}.bin"
        dtype = np.dtype(spec["dtype"])
        order = spec["dim_order"]
        memory_shape = [spec["sizes"][d] for d in order]
        expected = int(np.prod(memory_shape)) * dtype.itemsize
        if not path.exists():
            raise RunCrashed(f"the runner wrote no {path.name} (expected {expected} bytes)")
        size = path.stat().st_size
        if size != expected:
            raise RunCrashed(
                f"{path.name} has {size} bytes, expected {expected} "
                f"({spec['sizes']} {spec['dtype']}): truncated or wrong output"
            )
        outputs.append(dim_order.from_memory(np.fromfile(path, dtype=dtype), spec["sizes"], order))
    return outputs


@dataclasses.dataclass(frozen=True)
class Collected:
    """What a finished semihosting run left: outputs, ETDump, PMU figures."""

    outputs: tuple[npt.NDArray[Any], ...]
    etdump_path: Path | None
    debug_buffer_path: Path | None
    pmu: dict[str, Any]
    bundle_result: list[dict[str, Any]]


def collect(
    artifact: Artifact,
    run_dir: Path,
    *,
    who: str,
    log: str,
    exit_code: int | None,
    log_path: str,
    simulator: str,
    context: str = "",
    runner: RunnerFacts | None = None,
) -> Collected:
    """Read one finished run back, or raise the failure its log means.

    Args:
        artifact: the program that ran.
        run_dir: the run's folder.
        who: the board at fault, e.g. ``"board 'corstone320'"``.
        log: what the simulator and the runner printed.
        exit_code: the simulator's exit status (``None`` when unknown).
        log_path: where the log is kept.
        simulator: names the process in messages (``"the FVP"``, ``"QEMU"``).
        context: put after a failure's meaning (``" (attempt 2)"``).
        runner: what the runner was built with, to word runner-configuration failures.

    Raises:
        RunCrashed, RunTimeout, RunnerConfigError, InfrastructureError: by the log.
    """
    tail = runner_log.log_tail(log)
    bundled = (run_dir / BUNDLE).exists()
    # A bundle's own verdict (and the abort it causes) is the runner's opinion of
    # placeholder outputs: the harness judges outputs itself.
    findings = runner_log.uart_failures(log) if bundled else runner_log.find_failures(log)
    failure = failure_error(
        findings, who, context=context, log_tail=tail, log_path=log_path, runner=runner
    )
    if failure is not None:
        raise failure
    try:
        outputs = read_outputs(artifact, run_dir)
    except RunCrashed as exc:
        raise RunCrashed(
            f"{who}: {exc.message} ({simulator} exit code {exit_code})",
            log_tail=tail,
            log_path=log_path,
        ) from exc
    if exit_code not in (0, None) and not (bundled and runner_log.bundle_abort(log)):
        raise RunCrashed(
            f"{who}: {simulator} exited with status {exit_code}", log_tail=tail, log_path=log_path
        )
    etdump = run_dir / "etdump.bin"
    debug = run_dir / "debug_buffer.bin"
    try:
        block = runner_log.parse_etdump_block(log)
    except runner_log.EtdumpBlockError as exc:
        raise RunCrashed(f"{who}: {exc}", log_tail=tail, log_path=log_path) from exc
    for name, payload in block.items():
        (run_dir / name).write_bytes(payload)
    if etdump.exists():
        try:
            load_etdump(etdump)
        except RunError as exc:
            raise RunCrashed(f"{who}: {exc.message}", log_tail=tail, log_path=log_path) from exc
    return Collected(
        outputs=tuple(outputs),
        etdump_path=etdump if etdump.exists() else None,
        debug_buffer_path=debug if debug.exists() else None,
        pmu=runner_log.parse_pmu(log),
        bundle_result=runner_log.parse_bundle_result(log) if bundled else [],
    )
