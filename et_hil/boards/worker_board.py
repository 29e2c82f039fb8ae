"""Boards whose programs run in a long-lived child process (:class:`WorkerBoard`).

The host and tosa kinds both run a program in a
:class:`~et_hil.processes.runtime_worker.RuntimeWorker`: one child per pytest worker
pays the heavy imports (torch, ExecuTorch, the reference model) once, is started
when the board opens (so the imports overlap collection and the first build) and
is restarted after a crash, so a native abort fails one test, not the session.
What a kind adds is its worker's module, the run request it sends and what it
reads from the reply besides the outputs and times every worker gives.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

from et_hil.boards.base import BaseBoard, BoardOptions, RunRequest, RunResult
from et_hil.boards.board_spec import BoardSpec
from et_hil.processes.runtime_worker import RuntimeWorker


class WorkerBoard(BaseBoard):
    """A board that runs each program in its :class:`RuntimeWorker`.

    A subclass sets the class attributes below and implements :meth:`run_message`,
    :meth:`~et_hil.boards.base.BaseBoard.availability`, and :meth:`run_result`
    when its worker's reply says more than the outputs and times.

    Args:
        spec: the board file's contents.
        work_dir: where the worker's log goes.
        options: the session's board options (unused by the worker boards).
    """

    #: the worker's module, run with ``python -m``
    worker_module: ClassVar[str]
    #: the worker's log is ``<board name>-<log_name>.log`` in the work folder
    log_name: ClassVar[str]
    #: what kind of time the worker's ``execute_s`` is (one the kind declares)
    fidelity: ClassVar[str]

    def __init__(
        self, spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None
    ) -> None:
        self.spec = spec
        self.worker = RuntimeWorker(
            work_dir / f"{spec.name}-{self.log_name}.log",
            module=self.worker_module,
            label=spec.name,
        )

    def open(self) -> None:
        """Start the worker (its imports run in the background)."""
        self.worker.start()

    def close(self) -> None:
        """Stop the worker."""
        self.worker.stop()

    def execute(self, request: RunRequest) -> RunResult:
        """Run the program once in the worker; see :meth:`et_hil.boards.base.Board.run`.

        Raises:
            RunCrashed: the worker died, or the run failed in it.
            RunTimeout: no result within the time limit (the worker was killed).
        """
        reply = self.worker.request(
            self.run_message(request), request.timeout_s, subject=request.subject
        )
        return self.run_result(request, reply)

    @abc.abstractmethod
    def run_message(self, request: RunRequest) -> dict[str, Any]:
        """The request that asks the worker to run ``request``'s program once."""

    def run_result(self, request: RunRequest, reply: dict[str, Any]) -> RunResult:
        """What the worker's ``reply`` says of the run: the outputs and the times
        every worker gives. A kind whose worker says more extends it."""
        return RunResult(
            board=self.spec.name,
            outputs=tuple(reply["outputs"]),
            execute_s=float(reply["execute_s"]),
            load_s=float(reply["load_s"]),
            fidelity=self.fidelity,
            run_dir=request.run_dir,
        )
