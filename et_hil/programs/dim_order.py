"""Dim order: how a program lays a tensor out in memory, and the conversions boards need.

A program's input or output has logical sizes (``[N, C, H, W]``) and a dim
order: the dimensions from outermost to innermost in memory (``[0, 2, 3, 1]``
for channels-last, NHWC). Runtimes and firmware take and give raw bytes in the
dim order; PyTorch references and comparisons work on logical tensors. Every
board converts at its boundary with these helpers, so the rule lives once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def identity(rank: int) -> list[int]:
    """The dim order of a contiguous tensor of ``rank`` dimensions."""
    return list(range(rank))


def inverse(order: Sequence[int]) -> list[int]:
    """The permutation that undoes ``order``."""
    return [list(order).index(d) for d in range(len(order))]


def to_memory(array: npt.NDArray[Any], order: Sequence[int] | None) -> npt.NDArray[Any]:
    """A logical array's elements in memory order (the bytes firmware reads)."""
    if not order or list(order) == identity(array.ndim):
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(np.transpose(array, list(order)))


def from_memory(
    data: npt.NDArray[Any], sizes: Sequence[int], order: Sequence[int] | None
) -> npt.NDArray[Any]:
    """Elements in memory order (flat or shaped) back to a logical, contiguous array."""
    order = list(order) if order else identity(len(sizes))
    memory = np.asarray(data).reshape([int(sizes[d]) for d in order])
    return np.ascontiguousarray(np.transpose(memory, inverse(order)))


def strided_tensor(array: npt.NDArray[Any], order: Sequence[int] | None) -> Any:
    """A torch tensor of the array's logical shape whose memory is in ``order``.

    What the ExecuTorch runtime and the TOSA boundary expect of an input: the
    runtime reads the raw bytes in the program's dim order, and takes the dim
    order from the strides.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if not order or list(order) == identity(tensor.dim()):
        return tensor
    return tensor.permute(list(order)).contiguous().permute(inverse(order))
