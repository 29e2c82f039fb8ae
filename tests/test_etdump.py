"""Exact outputs from an ETDump's output events and its debug buffer."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from et_hil.errors import RunCrashed
from et_hil.executor_runner.etdump import EtdumpOutputError, load_etdump, program_outputs


def _etdump(tensors: list[tuple[int, list[int], list[int], int]], folder: Path) -> Any:
    """A size-prefixed ETDump file with one run whose debug events are program
    outputs, read back with :func:`load_etdump`."""
    from executorch.devtools.etdump import schema_flatcc as schema
    from executorch.devtools.etdump.serialize import serialize_to_etdump_flatcc
    from executorch.exir.scalar_type import ScalarType

    events = []
    for code, sizes, strides, offset in tensors:
        value = schema.Value(
            val="Tensor",
            tensor=schema.Tensor(ScalarType(code), sizes, strides, offset),
            tensor_list=None,
            int_value=None,
            float_value=None,
            double_value=None,
            bool_value=None,
            output=schema.Bool(True),
        )
        debug = schema.DebugEvent("", 0, -1, -1, "", value)
        events.append(schema.Event(None, None, debug))
    dump = schema.ETDumpFlatCC(0, [schema.RunData("forward", -1, [], events)])
    data = serialize_to_etdump_flatcc(dump)
    path = folder / "etdump.bin"
    path.write_bytes(struct.pack("<I", len(data)) + data)
    return load_etdump(path)


def test_a_channels_last_output_is_read_through_its_strides(tmp_path: Path) -> None:
    logical = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2) + 0.123456789
    memory = np.ascontiguousarray(logical.transpose(0, 2, 3, 1))  # NHWC bytes
    # strides of NCHW sizes over NHWC memory, in elements: N=12, C=1, H=6, W=3
    etdump = _etdump([(6, [1, 3, 2, 2], [12, 1, 6, 3], 64)], tmp_path)
    (out,) = program_outputs(etdump, b"\0" * 64 + memory.tobytes())
    np.testing.assert_array_equal(out, logical)  # bit-exact, more than six decimals


def test_int16_outputs_the_uart_cannot_print(tmp_path: Path) -> None:
    values = np.array([-300, 7, 32000], dtype=np.int16)
    (out,) = program_outputs(_etdump([(2, [3], [1], 0)], tmp_path), values.tobytes())
    assert out.dtype == np.int16
    assert out.tolist() == [-300, 7, 32000]


def test_an_output_outside_the_debug_buffer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EtdumpOutputError, match=r"bytes 0\.\.32 lie outside the 16-byte"):
        program_outputs(_etdump([(6, [8], [1], 0)], tmp_path), b"\0" * 16)


def test_a_file_that_is_not_an_etdump_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "etdump.bin"
    path.write_bytes(b"\x00\x01ETDUMP-but-not-really" * 8)
    with pytest.raises(RunCrashed, match=r"etdump\.bin is not a valid ETDump"):
        load_etdump(path)


def test_a_damaged_etdump_is_described_not_dumped_as_a_command_line(tmp_path: Path) -> None:
    _etdump([(6, [2], [1], 0)], tmp_path)  # a valid file, written as etdump.bin
    truncated = tmp_path / "etdump.bin"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    with pytest.raises(RunCrashed) as caught:
        load_etdump(truncated)
    text = str(caught.value)
    assert "has the ETDump identifier but its flatbuffer does not decode" in text
    assert "flatc" not in text
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01not an etdump at all")
    with pytest.raises(RunCrashed, match="without the ETDump file identifier 'ED00'") as caught:
        load_etdump(garbage)
    assert "flatc" not in str(caught.value)
