"""The dim-order conversions every board uses at its boundary, on hand-worked values."""

from __future__ import annotations

import numpy as np

from et_hil.programs import dim_order

NHWC = [0, 2, 3, 1]


def test_channels_last_memory_order_by_hand() -> None:
    # N=1, C=2, H=1, W=3; values are their own NCHW offsets: c*3 + w.
    logical = np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    # NHWC walks w outer, c inner: (w0,c0)=0 (w0,c1)=3 (w1,c0)=1 (w1,c1)=4 (w2,c0)=2 (w2,c1)=5
    memory = dim_order.to_memory(logical, NHWC)
    assert memory.reshape(-1).tolist() == [0, 3, 1, 4, 2, 5]
    back = dim_order.from_memory(memory.reshape(-1), [1, 2, 1, 3], NHWC)
    assert back.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(back, logical)


def test_the_default_order_is_left_as_it_is() -> None:
    logical = np.arange(6, dtype=np.int64).reshape(2, 3)
    for order in (None, [], [0, 1]):
        assert dim_order.to_memory(logical, order).tolist() == logical.tolist()
    assert dim_order.inverse(NHWC) == [0, 3, 1, 2]


def test_a_strided_tensor_is_logical_values_over_memory_order_bytes() -> None:
    logical = np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    tensor = dim_order.strided_tensor(logical, NHWC)
    assert tuple(tensor.dim_order()) == tuple(NHWC)  # what the runtime reads the order from
    np.testing.assert_array_equal(tensor.numpy(), logical)
    # its storage holds the memory-order bytes the runtime copies
    flat = tensor.permute(NHWC).reshape(-1).numpy()
    assert flat.tolist() == [0, 3, 1, 4, 2, 5]
