"""A long-lived Python child process that serves run requests over :mod:`wire`:
the runtime worker the ``host`` and ``tosa`` boards share.

The child pays the ~6 s torch/ExecuTorch import once; it is started without
waiting (so the import overlaps the parent's own work) and restarted after a
crash, so a native abort fails one request, not the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from et_hil import processes
from et_hil.errors import InfrastructureError, RunCrashed, RunTimeout
from et_hil.processes import wire
from et_hil.versions import PINNED

STARTUP_TIMEOUT_S = 180.0
LOG_TAIL_LINES = 30


def _tail(path: Path, offset: int, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class RuntimeWorker:
    """A long-lived child process serving run requests (see :mod:`et_hil.processes.wire`).

    Args:
        log_path: file receiving the child's stderr (the runtime's log).
        module: the worker's module, run with ``python -m``.
        label: the board name, for messages.
    """

    def __init__(self, log_path: Path, module: str, label: str) -> None:
        self.log_path = log_path
        self.module = module
        self.label = label
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        """True while the child process runs."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch the child without waiting for its imports."""
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            # -P: the current folder is not put on sys.path, so a user's own
            # et_hil/ package cannot shadow ours in the worker. Its own process
            # group: Ctrl-C in the terminal reaches pytest, which then closes the
            # worker itself.
            self._proc = processes.start(
                [sys.executable, "-P", "-m", self.module],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=env,
            )
        except OSError as exc:
            raise InfrastructureError(
                f"{self.label} board: cannot start its worker: {exc}"
            ) from exc
        self._ready = False
        self.starts += 1

    def _wait_ready(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        offset = 0
        try:
            message = wire.receive(self._proc.stdout.fileno(), time.monotonic() + STARTUP_TIMEOUT_S)
        except (wire.WireClosed, wire.WireTimeout) as exc:
            code = self._proc.poll()
            self.kill()
            raise InfrastructureError(
                f"{self.label} board: its worker did not start ({_describe_exit(code)}); "
                f"check that executorch=={PINNED['executorch']} imports in this Python "
                "(et-hil doctor)",
                log_tail=_tail(self.log_path, offset),
                log_path=str(self.log_path),
            ) from exc
        if not message.get("ready"):
            raise InfrastructureError(f"{self.label} board: unexpected first message {message!r}")
        self._ready = True

    def request(
        self, message: dict[str, Any], timeout_s: float, subject: str = "the program"
    ) -> dict[str, Any]:
        """Send one request and wait for its successful reply.

        Args:
            message: the request.
            timeout_s: time limit for the reply.
            subject: what ran, for messages (e.g. "model 'Net'").

        Raises:
            RunTimeout: no reply within ``timeout_s``; the child was killed.
            RunCrashed: the child died while handling it, or replied with an error.
        """
        if not self.alive:
            self.start()
        if not self._ready:
            self._wait_ready()
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            wire.send(proc.stdin, message)
            reply = dict(wire.receive(proc.stdout.fileno(), time.monotonic() + timeout_s))
        except wire.WireTimeout as exc:
            self.kill()
            raise RunTimeout(
                f"{self.label} board: no result after {timeout_s:g} s; its worker was killed",
                log_tail=_tail(self.log_path, offset),
                log_path=str(self.log_path),
            ) from exc
        except (wire.WireClosed, BrokenPipeError) as exc:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self.kill()
            raise RunCrashed(
                f"{self.label} board: the runtime {_describe_exit(code)} while running "
                f"{subject} (it is restarted for the next test)",
                log_tail=_tail(self.log_path, offset),
                log_path=str(self.log_path),
            ) from exc
        if not reply.get("ok"):
            raise RunCrashed(
                f"{self.label} board: the run of {subject} failed: {reply.get('error')}",
                log_tail=_tail(self.log_path, offset, 15),
                log_path=str(self.log_path),
            )
        return reply

    def kill(self) -> None:
        """Kill the child's process group and reap it."""
        proc, self._proc, self._ready = self._proc, None, False
        if proc is not None:
            processes.kill_group(proc)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Ask the child to exit, then make sure it has. A child still loading (it
        never said it was ready: a session that ended before its first run, such as
        ``--collect-only``) is killed at once: it reads no request before its imports
        end, so asking would only wait out the 3 s grace."""
        proc = self._proc
        if proc is not None and self._ready and proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                wire.send(proc.stdin, {"op": "exit"})
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
        self.kill()
