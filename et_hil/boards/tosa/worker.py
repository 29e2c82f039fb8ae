"""The ``tosa`` board's process: programs with TOSA delegates, on the reference model.

Started by :class:`et_hil.boards.tosa.board.TosaBoard` (``python -m
et_hil.boards.tosa.worker``) and served like the host worker. Each request
names a ``.pte``; the program runs op by op (:mod:`et_hil.boards.tosa.pte_interpreter`),
each TOSA delegate on the TOSA reference model (``tosa_reference_model`` from
tosa-tools) and the CPU ops between delegates on their PyTorch kernels. Only
the program's bytes are read: no pickle, no code of the program's own.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any

import numpy as np

from et_hil.boards.tosa.pte_interpreter import Program
from et_hil.processes import wire

BACKEND = "TOSABackend"


class ReferenceModel:
    """Runs TOSA delegates on the reference model, and counts them."""

    def __init__(self) -> None:
        self.delegate_s = 0.0
        self.delegate_calls = 0

    def input_count(self, backend: str, processed: bytes) -> int:
        """The inputs of the TOSA graph's main block (read from its flatbuffer)."""
        from tosa.TosaGraph import TosaGraph

        _check_backend(backend)
        return int(TosaGraph.GetRootAs(processed, 0).Regions(0).Blocks(0).InputsLength())

    def __call__(
        self, backend: str, processed: bytes, inputs: list[np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]:
        """Run one TOSA graph on the reference model."""
        import tosa_reference_model

        _check_backend(backend)
        started = time.perf_counter()
        arrays, status = tosa_reference_model.run(
            processed, inputs, initialize_variable_tensor_from_numpy=True
        )
        self.delegate_s += time.perf_counter() - started
        self.delegate_calls += 1
        if status != tosa_reference_model.GraphStatus.TOSA_VALID:
            raise RuntimeError(f"the TOSA reference model rejected the graph: {status}")
        return list(arrays)


def _check_backend(backend: str) -> None:
    if backend != BACKEND:
        raise RuntimeError(f"a delegate of backend {backend} cannot run on the tosa board")


@functools.lru_cache(maxsize=16)
def _program(path: str, size: int, mtime_ns: int) -> Program:
    """A program, parsed once per content on disk (size and time name the version)."""
    with open(path, "rb") as f:
        return Program(f.read(), name=path)


def _run(_: Any, request: dict[str, Any]) -> dict[str, Any]:
    import os

    import torch

    started = time.perf_counter()
    st = os.stat(request["program"])
    program = _program(request["program"], st.st_size, st.st_mtime_ns)
    load_s = time.perf_counter() - started
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in request["inputs"]]
    model = ReferenceModel()
    t0 = time.perf_counter()
    with torch.no_grad():
        outputs = program.run(tensors, model)
    execute_s = time.perf_counter() - t0
    return {
        "ok": True,
        "outputs": [t.detach().contiguous().numpy() for t in outputs if hasattr(t, "numpy")],
        "load_s": load_s,
        "execute_s": execute_s,
        "delegate_s": model.delegate_s,
        "delegate_calls": model.delegate_calls,
    }


def _load() -> None:
    import executorch.exir  # registers executorch's ops (prim, dim order)
    import executorch.exir._serialize._program  # noqa: F401  (the program reader)
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (Q/DQ ops between delegates)


def main() -> int:
    """Serve requests until stdin closes."""
    return wire.serve(_load, _run, "the TOSA reference model or ExecuTorch")


if __name__ == "__main__":
    sys.exit(main())
