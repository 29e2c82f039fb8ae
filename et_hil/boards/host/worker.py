"""The host board's runtime process: loads programs and runs them, one request at a time.

Started by :class:`et_hil.boards.host.board.HostBoard` with ``python -m
et_hil.boards.host.worker``. It imports torch and the ExecuTorch runtime once
(the slow part), then serves requests on stdin until end of file. Its original
stdout carries replies; file descriptor 1 is pointed at stderr so that text the
native runtime prints can never corrupt the protocol. A crash in native code
kills only this process; the harness sees end of file and restarts it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from et_hil.processes import wire
from et_hil.programs import dim_order


def load_runtime() -> Any:
    """Import torch and the runtime's C++ extension; register the quantized kernels.

    ``executorch.runtime`` and ``portable_lib`` would import ``executorch.exir``
    (2.7 s) only to emit a warning; the ``_C`` extension they wrap needs torch alone.
    """
    import importlib.util

    import torch

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the executorch package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    # Same library executorch.kernels.quantized loads: the quantized_decomposed
    # kernels, registered with the runtime as it loads.
    libraries = sorted((root / "kernels" / "quantized").glob("**/*quantized_ops_aot_lib.*"))
    if libraries:
        torch.ops.load_library(str(libraries[0]))  # type: ignore[no-untyped-call]
    from executorch.extension.pybindings import _C

    return _C


def _run(runtime: Any, request: dict[str, Any]) -> dict[str, Any]:
    run_dir = Path(request["run_dir"])
    started = time.perf_counter()
    program = runtime._load_for_executorch(
        str(request["pte"]),
        enable_etdump=True,
        debug_buffer_size=int(request.get("debug_buffer_size", 0)),
    )
    load_s = time.perf_counter() - started
    # The runtime reads each input's bytes in the program's dim order (NHWC for a
    # channels-last input) and takes that order from the strides.
    orders = request.get("dim_orders") or [None] * len(request["inputs"])
    tensors = tuple(
        dim_order.strided_tensor(array, order)
        for array, order in zip(request["inputs"], orders, strict=True)
    )
    t0 = time.perf_counter()
    outputs = program.run_method(request.get("method", "forward"), tensors)
    execute_s = time.perf_counter() - t0
    etdump = run_dir / "etdump.etdp"
    debug = run_dir / "debug_buffer.bin" if request.get("debug_buffer_size") else None
    program.write_etdump_result_to_file(str(etdump), str(debug) if debug else "")
    return {
        "ok": True,
        "outputs": [o.detach().contiguous().numpy() if hasattr(o, "numpy") else o for o in outputs],
        "load_s": load_s,
        "execute_s": execute_s,
        "etdump": str(etdump) if etdump.exists() else None,
        "debug_buffer": str(debug) if debug and debug.exists() else None,
    }


def main() -> int:
    """Serve requests until stdin closes."""
    return wire.serve(load_runtime, _run, "the ExecuTorch runtime")


if __name__ == "__main__":
    sys.exit(main())
