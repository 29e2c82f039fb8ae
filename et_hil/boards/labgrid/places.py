"""Places of a labgrid lab, held for one run at a time through the place agent
(:mod:`et_hil.boards.labgrid.agent`).

A serial board whose file has ``[serial.labgrid]`` gets its unit from here
instead of from a local lock: :meth:`PlaceAgent.held` reserves a place in
labgrid's queue, acquires it, and gives a :class:`PlaceLease` with the place's
console as the unit's port. The place is released when the run ends, however
it ends; when this process dies without releasing (SIGKILL), the agent, which
outlives it, releases for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from et_hil.boards.base import Availability
from et_hil.boards.labgrid.settings import DEFAULT_COORDINATOR, LabgridSettings
from et_hil.boards.serial.settings import Unit
from et_hil.errors import InfrastructureError

START_TIMEOUT_S = 60.0  # the agent imports labgrid and connects to the coordinator
ANSWER_MARGIN_S = 30.0  # beyond the wait for a place: RPCs and the console
CLOSE_TIMEOUT_S = 15.0  # the agent releases, then exits
REACH_TIMEOUT_S = 3.0


def labgrid_availability(settings: LabgridSettings) -> Availability:
    """Available when labgrid is installed and its coordinator takes connections
    (whether a place is free is for the run to wait for)."""
    import importlib.util

    if importlib.util.find_spec("labgrid") is None:
        return Availability(False, "labgrid is not installed", "pip install labgrid")
    address = settings.address()
    host, _, port = address.rpartition(":")
    default_port = DEFAULT_COORDINATOR.rpartition(":")[2]
    try:
        with socket.create_connection(
            (host or address, int(port or default_port)), REACH_TIMEOUT_S
        ):
            pass
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        return Availability(
            False,
            f"labgrid coordinator {address} ({settings.address_source()}) is not reachable ({why})",
            "start labgrid-coordinator (docs/boards/labgrid.md), or fix [serial.labgrid] "
            "coordinator / $LG_COORDINATOR",
        )
    return Availability(True)


@dataclasses.dataclass
class PlaceLease:
    """A place acquired for this process until released.

    Attributes:
        unit: the place as a unit: its name, and its console as the port.
        place: the labgrid place.
        exporter: the host its console is served from.
        reservation: labgrid's reservation token.
        owner: the ``host/user`` labgrid knows this process as.
        waited_s: how long the reservation queue took.
        acquired_at: ``time.time()`` when the place was got.
        state_path: where facts about the place are kept for the next holder
            on this machine (the firmware flashed on it).
    """

    unit: Unit
    place: str
    exporter: str
    reservation: str
    owner: str
    waited_s: float
    acquired_at: float
    state_path: Path

    def state(self) -> dict[str, Any]:
        """What this machine last recorded about the place."""
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_state(self, **facts: Any) -> None:
        """Record facts about the place (written while it is held)."""
        with contextlib.suppress(OSError):
            self.state_path.write_text(json.dumps({**self.state(), **facts}, sort_keys=True))

    def facts(self) -> dict[str, Any]:
        """What a result records about where it ran."""
        return {
            "labgrid_place": self.place,
            "labgrid_exporter": self.exporter,
            "labgrid_reservation": self.reservation,
            "labgrid_owner": self.owner,
        }


def client_name() -> str:
    """The user part of this process's labgrid name: the user (or
    ``$LG_USERNAME``), with the xdist worker, so ``labgrid-client who`` tells
    workers and CI jobs apart."""
    try:
        user = os.environ.get("LG_USERNAME") or getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{user}-et-hil-{worker or 'main'}-{os.getpid()}"


class PlaceAgent:
    """This process's place agent, started on first use.

    Args:
        board: the board name, for messages.
        settings: the board file's ``[serial.labgrid]``.
        log_dir: where the agent's log goes.
        state_dir: where facts about places are kept (the firmware on them).
    """

    def __init__(
        self, board: str, settings: LabgridSettings, log_dir: Path, state_dir: Path
    ) -> None:
        self.board = board
        self.settings = settings
        self.log_dir = log_dir
        self.state_dir = state_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one request at a time on the pipe

    # ------------------------------------------------------------ the process

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        address = self.settings.address()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / "labgrid-agent.log"
        env = {**os.environ, "LG_USERNAME": client_name()}
        with log_path.open("ab") as log:
            # Its own session, no death signal: it must outlive this process
            # to release what this process holds when it dies.
            proc = subprocess.Popen(
                [sys.executable, "-m", "et_hil.boards.labgrid.agent", "--coordinator", address],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        self._proc = proc
        hello = self._answer(START_TIMEOUT_S, f"connecting to coordinator {address}")
        if not hello.get("ok"):
            self.close()
            raise InfrastructureError(
                f"board '{self.board}': {hello.get('error')}. Start labgrid-coordinator "
                "(docs/boards/labgrid.md), or fix [serial.labgrid] coordinator / $LG_COORDINATOR",
                log_path=str(log_path),
            )
        return proc

    def _answer(self, timeout_s: float, doing: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        line = proc.stdout.readline() if ready else b""
        if not line:
            code = proc.poll()
            self.close()
            why = f"exited with status {code}" if code is not None else "did not answer"
            raise InfrastructureError(
                f"board '{self.board}': the labgrid place agent {why} while {doing} "
                f"(log: {self.log_dir / 'labgrid-agent.log'})"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _request(self, request: dict[str, Any], timeout_s: float, doing: str) -> dict[str, Any]:
        proc = self._start()
        stdin: IO[bytes] | None = proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except OSError:
            self.close()
            raise InfrastructureError(
                f"board '{self.board}': the labgrid place agent is gone "
                f"(log: {self.log_dir / 'labgrid-agent.log'})"
            ) from None
        return self._answer(timeout_s, doing)

    def close(self) -> None:
        """End the agent: it releases what it holds, then exits. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the agent releases and exits
        try:
            proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    # ------------------------------------------------------------ places

    def acquire(self) -> PlaceLease:
        """Reserve and acquire a place, waiting up to the board file's timeout.

        Raises:
            InfrastructureError: no place came free in time (naming who holds
                each), none matches, or the lab is unreachable.
        """
        settings = self.settings
        with self._lock:
            answer = self._request(
                {
                    "op": "acquire",
                    "filters": dict(settings.filters),
                    "timeout_s": settings.timeout_s,
                    "console": settings.console,
                },
                settings.timeout_s + ANSWER_MARGIN_S,
                f"waiting for {settings.describe()}",
            )
        if not answer.get("ok"):
            raise InfrastructureError(
                f"board '{self.board}' ({settings.describe()} on coordinator "
                f"{settings.address()}): {answer.get('error')}"
            )
        place = str(answer["place"])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() else "_" for c in f"{settings.address()}_{place}")
        return PlaceLease(
            unit=Unit(place, str(answer["port"])),
            place=place,
            exporter=str(answer.get("exporter", "")),
            reservation=str(answer.get("reservation", "")),
            owner=str(answer.get("owner", "")),
            waited_s=float(answer.get("waited_s", 0.0)),
            acquired_at=time.time(),
            state_path=self.state_dir / f"labgrid-{safe}.json",
        )

    def release(self) -> None:
        """Release the held place (the agent cancels its reservation first)."""
        if self._proc is None:
            return
        with self._lock:
            answer = self._request({"op": "release"}, ANSWER_MARGIN_S, "releasing its place")
        if not answer.get("ok"):
            raise InfrastructureError(
                f"board '{self.board}': releasing its labgrid place failed: {answer.get('error')}"
            )

    def status(self) -> list[dict[str, Any]]:
        """The board's places: each one's name, who acquired it and who reserved it.

        Raises:
            InfrastructureError: the lab is unreachable.
        """
        with self._lock:
            answer = self._request(
                {"op": "status", "filters": dict(self.settings.filters)},
                ANSWER_MARGIN_S,
                "asking for its places",
            )
        if not answer.get("ok"):
            raise InfrastructureError(f"board '{self.board}': {answer.get('error')}")
        places: list[dict[str, Any]] = answer["places"]
        return places

    @contextlib.contextmanager
    def held(self) -> Iterator[PlaceLease]:
        """:meth:`acquire` as a context manager that always releases (a failed
        release does not hide the error that ended the run)."""
        lease = self.acquire()
        try:
            yield lease
        except BaseException:
            with contextlib.suppress(InfrastructureError):
                self.release()
            raise
        self.release()
