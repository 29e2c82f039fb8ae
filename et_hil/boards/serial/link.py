"""The UART link to a board, on pyserial: open, drain, and capture one run.

A run's bytes are told from earlier ones in two ways: the input is drained
until the line has been quiet for a while *before* the board is reset (an
earlier run still printing, or bytes held in the USB adapter, are discarded),
and the parser takes the run from its last start line on
(:func:`et_hil.executor_runner.log.find_run`). While capturing, a
:class:`~et_hil.executor_runner.log.RunWatch` tells when the run is over, reading each
line once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

import serial

from et_hil.executor_runner.log import RunWatch

READ_TIMEOUT_S = 0.05
END_GRACE_S = 0.5  # after "Program complete" or a fault, bytes still due (EOT, exit code)
# A fault before any start line may be the old program dying while it is
# overwritten (a flasher that resets the board itself): give this run's start
# line time to come before taking the fault as the run.
NO_START_GRACE_S = 3.0


class PortLost(Exception):
    """The port vanished or failed (USB re-enumeration, cable, server gone)."""


def is_url(port: str) -> bool:
    """pyserial URLs (``socket://``, ``rfc2217://``...) rather than device paths."""
    return "://" in port


class SerialLink:
    """One open UART port.

    Args:
        port: device path or pyserial URL.
        baud: baud rate.
    """

    def __init__(self, port: str, baud: int) -> None:
        self.port = port
        self.baud = baud
        self._serial: serial.SerialBase | None = None

    def __enter__(self) -> SerialLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the port.

        Raises:
            PortLost: it does not exist or cannot be opened now.
        """
        try:
            if is_url(self.port):
                self._serial = serial.serial_for_url(
                    self.port, baudrate=self.baud, timeout=READ_TIMEOUT_S
                )
            else:
                # exclusive: another program (a terminal left open) cannot steal bytes
                self._serial = serial.Serial(
                    self.port, baudrate=self.baud, timeout=READ_TIMEOUT_S, exclusive=True
                )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortLost(f"cannot open {self.port}: {exc}") from exc

    def close(self) -> None:
        """Close the port. Idempotent."""
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None

    def _read(self) -> bytes:
        assert self._serial is not None, "open() first"
        try:
            waiting = self._serial.in_waiting
            return bytes(self._serial.read(waiting or 1))
        except (serial.SerialException, OSError) as exc:
            raise PortLost(f"{self.port}: {exc}") from exc

    def drain(self, quiet_s: float, max_s: float) -> bytes:
        """Read and return everything until the line has been silent for
        ``quiet_s`` (or ``max_s`` has passed: a board printing forever)."""
        assert self._serial is not None, "open() first"
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.reset_input_buffer()
        drained = bytearray()
        started = last = time.monotonic()
        while time.monotonic() - last < quiet_s and time.monotonic() - started < max_s:
            chunk = self._read()
            if chunk:
                drained += chunk
                last = time.monotonic()
        return bytes(drained)

    def capture(
        self,
        timeout_s: float,
        sink: Callable[[bytes], None] | None = None,
    ) -> tuple[bytes, bool]:
        """Read one run: until EOT, or shortly after the runner's last line or a
        fault, or ``timeout_s``.

        Args:
            timeout_s: wall limit of the run.
            sink: called with every chunk as it arrives (the on-disk log).

        Returns:
            Every byte read, and whether the time limit ended it.

        Raises:
            PortLost: the port failed mid-run (what was read is in ``args[1]``).
        """
        raw = bytearray()
        watch = RunWatch()
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        ending = False
        grace = END_GRACE_S
        while True:
            now = time.monotonic()
            if now >= deadline:
                return bytes(raw), True
            try:
                chunk = self._read()
            except PortLost as exc:
                raise PortLost(str(exc), bytes(raw)) from exc
            if chunk:
                raw += chunk
                watch.feed(chunk)
                quiet_since = now
                if sink is not None:
                    sink(chunk)
                if b"\n" in chunk or b"\x04" in chunk:
                    run = watch.state()
                    if run.end == "eot" and run.started:
                        return bytes(raw), False
                    ending = run.end is not None
                    grace = END_GRACE_S if run.started else NO_START_GRACE_S
            elif ending and now - quiet_since >= grace:
                return bytes(raw), False


def wait_for_port(port: str, within_s: float) -> bool:
    """Whether a vanished port is back within ``within_s`` (USB re-enumeration
    keeps the ``/dev/serial/by-id`` name; URLs are retried by opening them)."""
    deadline = time.monotonic() + within_s
    while True:
        if is_url(port):
            try:
                probe = serial.serial_for_url(port, do_not_open=False, timeout=0)
            except (serial.SerialException, OSError, ValueError):
                pass
            else:
                probe.close()
                return True
        elif os.path.exists(port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
