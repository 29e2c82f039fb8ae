"""The tensor dtypes the harness handles, in one table: the name numpy and torch
both use, ExecuTorch's scalar type, and the size of one element.

ExecuTorch's codes come from its own enum (``executorch.exir.scalar_type``),
imported only when a code is looked up: that import loads torch (seconds), and
the callers that only need names and sizes (the pytest plugin's fit check) must
stay free of it. The callers that read codes (program metadata, ETDumps) have
ExecuTorch loaded already.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dtype:
    """One tensor dtype.

    Attributes:
        name: the numpy and torch spelling (``int8``), used in program metadata.
        scalar_type: the member of ExecuTorch's ``ScalarType`` (``CHAR``).
        itemsize: bytes per element.
        numpy: whether numpy has it (it lacks ``bfloat16``).
    """

    name: str
    scalar_type: str
    itemsize: int
    numpy: bool = True


DTYPES = (
    Dtype("uint8", "BYTE", 1),
    Dtype("int8", "CHAR", 1),
    Dtype("int16", "SHORT", 2),
    Dtype("int32", "INT", 4),
    Dtype("int64", "LONG", 8),
    Dtype("float16", "HALF", 2),
    Dtype("float32", "FLOAT", 4),
    Dtype("float64", "DOUBLE", 8),
    Dtype("bool", "BOOL", 1),
    Dtype("bfloat16", "BFLOAT16", 2, numpy=False),
)
BY_NAME = {d.name: d for d in DTYPES}
_BY_SCALAR_TYPE = {d.scalar_type: d for d in DTYPES}


def itemsize(name: str) -> int:
    """Bytes per element of the dtype called ``name``; 0 for a dtype not in the table."""
    dtype = BY_NAME.get(name)
    return dtype.itemsize if dtype is not None else 0


@functools.cache
def from_scalar_type(code: int) -> Dtype | None:
    """The dtype of an ExecuTorch scalar type code (as programs and ETDumps store
    it), or ``None`` for a code the harness does not handle. Imports ExecuTorch."""
    from executorch.exir.scalar_type import ScalarType

    try:
        member = ScalarType(int(code))
    except ValueError:
        return None
    return _BY_SCALAR_TYPE.get(member.name)


def numpy_dtype(name: str) -> np.dtype[Any] | None:
    """The numpy dtype called ``name``, or ``None`` where numpy has none (bfloat16)."""
    dtype = BY_NAME.get(name)
    if dtype is None or not dtype.numpy:
        return None
    return np.dtype(dtype.name)


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` called ``name`` (imports torch).

    Raises:
        KeyError: a name not in the table.
    """
    import torch

    return getattr(torch, BY_NAME[name].name)
