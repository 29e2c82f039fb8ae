"""The ``tosa`` board's process: lowered programs with their TOSA delegates on the reference model.

Started by :class:`harness.boards.tosa.TosaBoard` (``python -m
harness.boards.tosa_worker``) and served like the host worker. Each request
names an artifact's lowered edge program; the program runs op by op, each
``executorch_call_delegate`` on the TOSA reference model (``tosa_reference_model``
from tosa-tools) and the CPU ops between delegates on their PyTorch kernels.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.boards import wire
from harness.build import dim_order


def _to_memory_order(tensor: Any) -> np.ndarray[Any, Any]:
    """The tensor's elements in its dim order (NHWC for channels-last), as TOSA expects."""
    order = tuple(tensor.dim_order())
    if order != tuple(range(tensor.dim())):
        tensor = tensor.permute(order)
    return np.ascontiguousarray(tensor.detach().contiguous().cpu().numpy())


def _from_memory_order(array: np.ndarray[Any, Any], like: Any) -> Any:
    """A reference-model output back to the logical (NCHW) shape of ``like``."""
    import torch

    order = tuple(like.dim_order()) if hasattr(like, "dim_order") else tuple(range(array.ndim))
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if hasattr(like, "dtype") and tensor.dtype != like.dtype:
        tensor = tensor.to(like.dtype)
    if order != tuple(range(array.ndim)):
        inverse = [order.index(i) for i in range(len(order))]
        tensor = tensor.permute(inverse).contiguous()
    return tensor


def _make_dispatch() -> Any:
    import torch
    import tosa_reference_model
    from torch.overrides import TorchFunctionMode

    class ReferenceModelDispatch(TorchFunctionMode):
        """Runs every delegate call on the TOSA reference model; everything else as usual."""

        def __init__(self) -> None:
            super().__init__()
            self.delegate_s = 0.0
            self.delegate_calls = 0

        def __torch_function__(
            self,
            func: Any,
            types: Any,
            args: Sequence[Any] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            if func is not torch._higher_order_ops.executorch_call_delegate:
                return func(*args, **(kwargs or {}))
            lowered, *inputs = args
            if lowered.backend_id != "TOSABackend":
                raise RuntimeError(f"delegate of backend {lowered.backend_id} cannot run here")
            outputs_meta = [
                node.meta["val"]
                for node in lowered.original_module.graph_module.graph.output_node().args[0]
            ]
            started = time.perf_counter()
            arrays, status = tosa_reference_model.run(
                lowered.processed_bytes,
                [_to_memory_order(t) for t in inputs],
                initialize_variable_tensor_from_numpy=True,
            )
            self.delegate_s += time.perf_counter() - started
            self.delegate_calls += 1
            if status != tosa_reference_model.GraphStatus.TOSA_VALID:
                raise RuntimeError(f"the TOSA reference model rejected the graph: {status}")
            return tuple(
                _from_memory_order(a, meta) for a, meta in zip(arrays, outputs_meta, strict=True)
            )

    return ReferenceModelDispatch


@functools.lru_cache(maxsize=16)
def _program(path: str) -> Any:
    from harness.build.builder import load_lowered_program

    return load_lowered_program(Path(path)).module()


def _run(dispatch_class: Any, request: dict[str, Any]) -> dict[str, Any]:
    import torch

    started = time.perf_counter()
    module = _program(request["lowered"])
    load_s = time.perf_counter() - started
    # Inputs in the program's dim order: a channels-last input reaches its delegate
    # as NHWC bytes, as on the device (the delegate boundary follows the strides).
    orders = request.get("dim_orders") or [None] * len(request["inputs"])
    tensors = [
        dim_order.strided_tensor(array, order)
        for array, order in zip(request["inputs"], orders, strict=True)
    ]
    t0 = time.perf_counter()
    with torch.no_grad(), dispatch_class() as dispatch:
        outputs = module(*tensors)
    execute_s = time.perf_counter() - t0
    flat, _ = torch.utils._pytree.tree_flatten(outputs)
    return {
        "ok": True,
        "outputs": [t.detach().contiguous().numpy() for t in flat if hasattr(t, "numpy")],
        "load_s": load_s,
        "execute_s": execute_s,
        "delegate_s": dispatch.delegate_s,
        "delegate_calls": dispatch.delegate_calls,
    }


def _load() -> Any:
    import executorch.exir  # noqa: F401  (registers executorch_call_delegate)
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (Q/DQ ops between delegates)

    return _make_dispatch()


def main() -> int:
    """Serve requests until stdin closes."""
    return wire.serve(_load, _run, "the TOSA reference model or ExecuTorch")


if __name__ == "__main__":
    sys.exit(main())
