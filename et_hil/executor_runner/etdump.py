"""ETDump files a board brought back: read once, refused when invalid, and
their program outputs decoded exactly.

Firmware built with ``-DET_DUMP_OUTPUTS=ON`` logs each program output into the
ETDump as a debug event (``debug_entry.output`` set) whose tensor bytes sit in
the debug buffer at ``offset``. Over a UART these arrive as the base64
``debug_buffer.bin`` and ``etdump.bin``: bit-exact, unlike the runner's
``Output[i][j]`` lines (six decimals, and only four dtypes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil import dtypes
from et_hil.errors import RunCrashed


class EtdumpOutputError(ValueError):
    """The ETDump's output events cannot be decoded (dtype, or a short buffer)."""


# ETDump files are size-prefixed flatbuffers whose file identifier is "ED00"
# (devtools/etdump/etdump_schema_flatcc.fbs), after a 4-byte size and a 4-byte root offset.
_IDENTIFIER = b"ED00"
_IDENTIFIER_AT = slice(8, 12)


def load_etdump(path: Path) -> Any:
    """The ETDump at ``path``, parsed (devtools' ``ETDumpFlatCC``).

    Raises:
        RunCrashed: the file is not a valid ETDump flatbuffer, or holds no run;
            the message says what is wrong with the file, not how it was parsed.
    """
    import subprocess

    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    data = path.read_bytes()
    if data[_IDENTIFIER_AT] != _IDENTIFIER:
        raise RunCrashed(
            f"{path.name} is not a valid ETDump: {len(data)} bytes without the ETDump file "
            f"identifier {_IDENTIFIER.decode()!r} (starts {data[:12].hex(' ')}); the board "
            "wrote something else there, or the transfer corrupted it"
        )
    try:
        etdump = deserialize_from_etdump_flatcc(data)
    except subprocess.CalledProcessError as exc:  # flatc rejected the buffer
        raise RunCrashed(
            f"{path.name} is not a valid ETDump: it has the ETDump identifier but its "
            f"flatbuffer does not decode ({len(data)} bytes; truncated or corrupted)"
        ) from exc
    except Exception as exc:  # the schema layer raises assorted types
        raise RunCrashed(
            f"{path.name} is not a valid ETDump ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    if not etdump.run_data:
        raise RunCrashed(f"{path.name} is not a valid ETDump: it holds no run")
    return etdump


def program_outputs(dump: Any, debug_buffer: bytes) -> list[npt.NDArray[Any]]:
    """The outputs logged in a parsed ETDump's last run (:func:`load_etdump`),
    in order; empty when the firmware logged none.

    Raises:
        EtdumpOutputError: an output that is not a tensor, of a dtype numpy
            lacks (bfloat16), or that lies outside the debug buffer.
    """
    if not dump.run_data:
        return []
    outputs: list[npt.NDArray[Any]] = []
    for event in dump.run_data[-1].events or []:
        debug = event.debug_event
        if debug is None:
            continue
        entry = debug.debug_entry
        if entry.output is None or not entry.output.bool_val:
            continue
        if entry.tensor is None:
            raise EtdumpOutputError(f"output {len(outputs)} is a {entry.val}, not a tensor")
        outputs.append(_tensor(entry.tensor, debug_buffer, len(outputs)))
    return outputs


def _tensor(tensor: Any, buffer: bytes, index: int) -> npt.NDArray[Any]:
    code = int(getattr(tensor.scalar_type, "value", tensor.scalar_type))
    known = dtypes.from_scalar_type(code)
    dtype = dtypes.numpy_dtype(known.name) if known is not None else None
    if dtype is None:
        raise EtdumpOutputError(f"output {index}: scalar type {code} has no numpy dtype")
    sizes = [int(s) for s in tensor.sizes]
    strides = [int(s) for s in tensor.strides] or [1] * len(sizes)
    extent = 0 if 0 in sizes else 1 + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True))
    offset = tensor.offset
    end = (offset or 0) + extent * dtype.itemsize
    if offset is None or end > len(buffer):
        raise EtdumpOutputError(
            f"output {index}: bytes {offset}..{end} lie outside the {len(buffer)}-byte debug buffer"
        )
    view: npt.NDArray[Any] = np.ndarray(
        sizes,
        dtype=dtype,
        buffer=bytes(buffer[offset:end]),
        strides=[s * dtype.itemsize for s in strides],
    )
    return np.ascontiguousarray(view)
