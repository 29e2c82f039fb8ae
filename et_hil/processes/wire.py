"""Length-prefixed pickle messages between the harness and its worker processes.

Both ends are this package on this machine; pickle carries numpy arrays
without copies through an extra format.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any, BinaryIO, NoReturn

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


def serve(
    load: Callable[[], Any], handle: Callable[[Any, dict[str, Any]], dict[str, Any]], what: str
) -> int:
    """A worker process's main loop: load once, then answer requests until stdin closes.

    The original stdout carries replies; file descriptor 1 is pointed at stderr
    so that text native code prints can never corrupt the protocol. An exception
    while handling a request becomes an error reply; a native crash ends the
    process, which the harness sees as end of file.

    Args:
        load: the expensive imports; its result is passed to every ``handle`` call.
        handle: answers one request.
        what: what ``load`` loads, for the log when it fails.

    Returns:
        The process exit status when ``load`` fails. At the end of the requests the
        process ends at once (see :func:`_end_now`): this function does not return.
    """
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer.fileno()
    try:
        state = load()
    except Exception as exc:
        sys.stderr.write(f"cannot load {what}: {exc!r}\n")
        return 3
    send(replies, {"ready": True, "pid": os.getpid()})
    number = 0
    while True:
        try:
            request = receive(requests)
        except WireClosed:
            _end_now(replies)
        if request.get("op") == "exit":
            _end_now(replies)
        number += 1
        sys.stderr.write(f"=== et-hil run {number}\n")
        sys.stderr.flush()
        try:
            reply = handle(state, request)
        except Exception as exc:  # report the error instead of dying
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        send(replies, reply)


def _end_now(replies: BinaryIO) -> NoReturn:
    """End a worker whose work is done without the interpreter's teardown.

    Every reply is sent and every file a request wrote is closed by then; what is
    left is freeing torch's, the ExecuTorch runtime's and the TOSA reference
    model's modules one by one, which took 0.6 s (host) and 1.2 s (tosa) here, at
    the end of every pytest session and xdist worker, for nothing.
    """
    # os._exit flushes no Python buffer; fd 1 is the log by now (see serve). A stream
    # that cannot be flushed must not keep the worker from ending.
    for stream in (replies, sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)
