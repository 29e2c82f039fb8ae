"""The ``tosa`` board: what an Ethos-U NPU should compute, on any machine.

This board runs a program built for a TOSA target (the ``.pte`` itself, nothing
else) in a worker process: each delegated segment on the TOSA reference model,
the CPU ops between them (quantize at the inputs, dequantize at the outputs,
any fallback op) on their PyTorch kernels, as upstream's TOSA tests do.
Timings are reference-model wall time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from et_hil.boards.base import Availability, Fidelity, RunRequest, RunResult
from et_hil.boards.worker_board import WorkerBoard
from et_hil.errors import ConfigError
from et_hil.programs.artifact import Artifact
from et_hil.versions import PINNED


class TosaBoard(WorkerBoard):
    """Runs TOSA-lowered programs on the TOSA reference model."""

    worker_module = "et_hil.boards.tosa.worker"
    log_name = "refmodel"
    fidelity = Fidelity.REFERENCE_MODEL

    def availability(self) -> Availability:
        """Available when tosa-tools' reference model and ExecuTorch are installed."""
        if importlib.util.find_spec("tosa_reference_model") is None:
            return Availability(
                False,
                "the TOSA reference model (tosa_reference_model) is not installed",
                f"pip install 'executorch[ethos-u]=={PINNED['executorch']}' "
                f"(brings tosa-tools {PINNED['tosa-tools']})",
            )
        if importlib.util.find_spec("executorch") is None:
            return Availability(False, "executorch is not installed", "pip install executorch")
        return Availability(True)

    def check_program(self, artifact: Artifact, inputs: Sequence[npt.NDArray[Any]]) -> None:
        """Refuse a program not built for a TOSA target (nothing but TOSA delegates).

        Raises:
            ConfigError: naming the program's target and the targets this board runs.
        """
        backends = {
            part.get("backend")
            for part in (artifact.metadata.get("delegation") or {}).get("partitions") or []
        }
        target = artifact.metadata.get("target")
        if backends - {"TOSABackend"} or (
            not backends and target is not None and not str(target).startswith("tosa-")
        ):
            raise ConfigError(
                f"board '{self.spec.name}': program of model '{artifact.model_name}' was built "
                f"for target '{artifact.target}'"
                + (f" (delegates to {', '.join(sorted(map(str, backends)))})" if backends else "")
                + "; this board runs TOSA-lowered programs "
                "(target tosa-int, tosa-int+<extensions> or tosa-fp)"
            )

    def run_message(self, request: RunRequest) -> dict[str, Any]:
        """The program and its inputs: the worker runs it on the reference model."""
        return {
            "op": "run",
            "program": str(request.artifact.pte_path),
            "inputs": list(request.inputs),
        }

    def run_result(self, request: RunRequest, reply: dict[str, Any]) -> RunResult:
        """The outputs and times, and the time spent in and the calls of the TOSA
        delegates."""
        return dataclasses.replace(
            super().run_result(request, reply),
            timings={"delegate_s": float(reply["delegate_s"])},
            facts={"delegate_calls": reply["delegate_calls"]},
        )
