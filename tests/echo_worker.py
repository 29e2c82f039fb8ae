"""A worker process for tests of :class:`~et_hil.processes.runtime_worker.RuntimeWorker`:
the wire protocol of the host and tosa workers, without their imports. Its load takes
``ET_HIL_ECHO_WORKER_LOAD_S`` seconds (default 0), the interpreter's teardown at exit
``ET_HIL_ECHO_WORKER_TEARDOWN_S`` (an exit handler: as freeing torch's modules does);
each request is answered with itself, after printing its ``say`` (as a runtime prints
its log on stdout).
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

from et_hil.processes import wire


def _load() -> None:
    atexit.register(time.sleep, float(os.environ.get("ET_HIL_ECHO_WORKER_TEARDOWN_S", "0")))
    time.sleep(float(os.environ.get("ET_HIL_ECHO_WORKER_LOAD_S", "0")))


def _echo(_state: None, request: dict[str, Any]) -> dict[str, Any]:
    if "say" in request:
        print(request["say"])  # no flush: what a worker printed last must still be kept
    return {"ok": True, "echo": request}


if __name__ == "__main__":
    sys.exit(wire.serve(_load, _echo, "nothing"))
