"""The ``host`` board: the ExecuTorch runtime of the installed wheel, in a child process.

One long-lived child per pytest worker pays the ~6 s torch/ExecuTorch import
once. It is started when the board opens (so the import overlaps collection and
the first build) and restarted after a crash, so a native abort fails one test,
not the session.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from et_hil.boards.base import (
    Availability,
    BaseBoard,
    BoardOptions,
    Fidelity,
    RunRequest,
    RunResult,
    input_dim_orders,
)
from et_hil.boards.spec import BoardSpec
from et_hil.processes.runtime_worker import RuntimeWorker
from et_hil.versions import PINNED


class HostBoard(BaseBoard):
    """Runs programs on the ExecuTorch runtime of the installed wheel.

    Args:
        spec: the board file's contents.
        work_dir: where the worker's log goes.
    """

    def __init__(
        self, spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None
    ) -> None:
        self.spec = spec
        self.worker = RuntimeWorker(
            work_dir / f"{spec.name}-runtime.log",
            module="et_hil.boards.host.worker",
            label=spec.name,
        )

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

    def open(self) -> None:
        """Start the runtime worker (its imports run in the background)."""
        self.worker.start()

    def close(self) -> None:
        """Stop the runtime worker."""
        self.worker.stop()

    def execute(self, request: RunRequest) -> RunResult:
        """Run the program once in the worker; see :meth:`et_hil.boards.base.Board.run`."""
        artifact, run_dir = request.artifact, request.run_dir
        reply = self.worker.request(
            {
                "op": "run",
                "pte": str(artifact.pte_path),
                "inputs": list(request.inputs),
                "dim_orders": input_dim_orders(artifact),
                "run_dir": str(run_dir),
                "debug_buffer_size": request.debug_buffer_size,
            },
            request.timeout_s,
            subject=request.subject,
        )
        return RunResult(
            board=self.spec.name,
            outputs=tuple(reply["outputs"]),
            execute_s=float(reply["execute_s"]),
            load_s=float(reply["load_s"]),
            fidelity=Fidelity.HOST_WALL,
            run_dir=run_dir,
            etdump_path=Path(reply["etdump"]) if reply.get("etdump") else None,
            debug_buffer_path=Path(reply["debug_buffer"]) if reply.get("debug_buffer") else None,
        )
