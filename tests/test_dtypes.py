"""Tests of et_hil.dtypes: the one dtype table agrees with ExecuTorch, numpy and torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from et_hil import dtypes


def test_codes_are_executorchs_own() -> None:
    from executorch.exir.scalar_type import ScalarType

    # The codes programs and ETDumps store (schema/scalar_type.fbs): 1 is int8, 6 float32.
    assert dtypes.from_scalar_type(1) == dtypes.BY_NAME["int8"]
    assert dtypes.from_scalar_type(6) == dtypes.BY_NAME["float32"]
    for dtype in dtypes.DTYPES:
        assert dtypes.from_scalar_type(ScalarType[dtype.scalar_type].value) == dtype


def test_unknown_codes_have_no_dtype() -> None:
    assert dtypes.from_scalar_type(9) is None  # COMPLEX64: the harness does not handle it
    assert dtypes.from_scalar_type(999) is None  # not a scalar type at all


@pytest.mark.parametrize("dtype", dtypes.DTYPES, ids=lambda d: d.name)
def test_sizes_and_names_agree_with_numpy_and_torch(dtype: dtypes.Dtype) -> None:
    torch_dtype = dtypes.torch_dtype(dtype.name)
    assert str(torch_dtype) == f"torch.{dtype.name}"
    assert torch_dtype.itemsize == dtype.itemsize
    found = dtypes.numpy_dtype(dtype.name)
    if dtype.numpy:
        assert found == np.dtype(dtype.name)
        assert found.itemsize == dtype.itemsize
    else:
        assert found is None


def test_itemsize_of_unknown_dtype_is_zero() -> None:
    assert dtypes.itemsize("int8") == 1
    assert dtypes.itemsize("bfloat16") == 2
    assert dtypes.itemsize("scalar_type_9") == 0


def test_names_and_sizes_without_torch() -> None:
    code = (
        "import sys; from et_hil import dtypes; dtypes.itemsize('int8'); "
        "dtypes.numpy_dtype('float32'); print('torch' in sys.modules, 'executorch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
