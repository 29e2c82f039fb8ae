"""Length-prefixed pickle messages between the harness and its worker processes.

Both ends are this package on this machine; pickle carries numpy arrays
without copies through an extra format.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import IO, Any

_HEADER = struct.Struct(">Q")


class WireClosed(Exception):
    """The other end closed the pipe (it exited or crashed)."""


class WireTimeout(Exception):
    """No complete message arrived before the deadline."""


def send(stream: IO[bytes], message: Any) -> None:
    """Write one message and flush."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise WireTimeout
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise WireTimeout
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise WireClosed
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None) -> Any:
    """Read one message from file descriptor ``fd``.

    Args:
        fd: a readable pipe.
        deadline: ``time.monotonic()`` value to give up at; ``None`` waits forever.

    Raises:
        WireClosed: end of file.
        WireTimeout: the deadline passed.
    """
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, length, deadline))
