"""The ``host`` board: the ExecuTorch runtime of the installed wheel, in a child process.

One long-lived child per pytest worker pays the ~6 s torch/ExecuTorch import
once. It is started when the board opens (so the import overlaps collection and
the first build) and restarted after a crash, so a native abort fails one test,
not the session (:class:`~et_hil.boards.worker_board.WorkerBoard`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from et_hil.boards.base import Availability, Fidelity, RunRequest, RunResult, input_dim_orders
from et_hil.boards.worker_board import WorkerBoard
from et_hil.versions import PINNED


class HostBoard(WorkerBoard):
    """Runs programs on the ExecuTorch runtime of the installed wheel."""

    worker_module = "et_hil.boards.host.worker"
    log_name = "runtime"
    fidelity = Fidelity.HOST_WALL

    def availability(self) -> Availability:
        """Available when the ExecuTorch runtime is importable in this Python."""
        if importlib.util.find_spec("executorch") is None:
            return Availability(
                False,
                "the executorch package is not installed",
                f"pip install executorch=={PINNED['executorch']}",
            )
        if importlib.util.find_spec("executorch.runtime") is None:
            return Availability(
                False,
                "executorch.runtime is missing from the installed executorch",
                f"reinstall executorch=={PINNED['executorch']}",
            )
        return Availability(True)

    def run_message(self, request: RunRequest) -> dict[str, Any]:
        """The program, its inputs with their dim orders, and where the ETDump and
        debug buffer go."""
        return {
            "op": "run",
            "pte": str(request.artifact.pte_path),
            "inputs": list(request.inputs),
            "dim_orders": input_dim_orders(request.artifact),
            "run_dir": str(request.run_dir),
            "debug_buffer_size": request.debug_buffer_size,
        }

    def run_result(self, request: RunRequest, reply: dict[str, Any]) -> RunResult:
        """The outputs and times, and the ETDump and debug buffer the worker wrote."""
        return dataclasses.replace(
            super().run_result(request, reply),
            etdump_path=Path(reply["etdump"]) if reply.get("etdump") else None,
            debug_buffer_path=Path(reply["debug_buffer"]) if reply.get("debug_buffer") else None,
        )
