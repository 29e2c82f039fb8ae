"""A real labgrid lab on this machine, for tests and CI: a ``labgrid-coordinator``,
two ``labgrid-exporter`` processes (as if on two hosts), each exporting one
virtual serial board (the pty test double) as a network serial port through
ser2net, and one place per board, tagged as a pool.

Everything but the boards is labgrid's own, started as the README tells a lab
admin to start it. The virtual boards are test doubles: never a shipped board.

    python -m tests.labgrid_lab up --dir /tmp/lab     # starts it, writes lab.json
    python -m tests.labgrid_lab down --dir /tmp/lab
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.serial_double import FLASHER, VirtualBoard

BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 60.0
POOL = "et-hil-ci"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"labgrid-coordinator did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


class Lab:
    """The lab: coordinator, exporters, virtual boards and places.

    Args:
        folder: state and logs.
        places: place names, one virtual board and one exporter each.
        port: the coordinator's port (a free one by default).
        tag: ``ET_HIL_TEST_TAG`` of the processes (leftover checks).
    """

    def __init__(
        self,
        folder: Path,
        places: tuple[str, ...] = ("vboard0", "vboard1"),
        port: int | None = None,
        tag: str = "",
    ) -> None:
        self.folder = folder.resolve()
        self.places = places
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.tag = tag or f"lab{self.port}"
        self.boards = {
            place: VirtualBoard(
                self.folder / "boards" / place,
                place,
                tag=self.tag,
                link=Path(f"/dev/et-hil-{self.tag}-{place}"),
            )
            for place in places
        }
        # the address-mode "runner" the virtual boards are flashed with (its
        # bytes do not matter to them; its hash goes into every record)
        self.firmware = self.folder / "runner.bin"
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.exporters: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------ processes

    def _spawn(
        self, argv: list[str], log_name: str, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "ET_HIL_TEST_TAG": self.tag, "PYTHONUNBUFFERED": "1"}
        # Own sessions: the lab outlives the pytest runs it serves, as a real one does.
        with (self.folder / log_name).open("ab") as log:  # the child has its own copy
            return subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
            )

    def start_coordinator(self) -> None:
        state = self.folder / "coordinator"
        state.mkdir(parents=True, exist_ok=True)
        self.coordinator = self._spawn(
            [str(BIN / "labgrid-coordinator"), "-l", self.address], "coordinator.log", cwd=state
        )
        _wait_for_port(self.port, self.coordinator, self.folder / "coordinator.log")

    def exporter_name(self, place: str) -> str:
        return f"exporter-{place}"

    def start_exporter(self, place: str) -> None:
        config = self.folder / f"{self.exporter_name(place)}.yaml"
        link = self.boards[place].link
        config.write_text(f"{place}:\n  RawSerialPort:\n    port: {link}\n    speed: 115200\n")
        self.exporters[place] = self._spawn(
            [
                str(BIN / "labgrid-exporter"),
                "-c",
                self.address,
                "-n",
                self.exporter_name(place),
                "--hostname",
                "127.0.0.1",
                str(config),
            ],
            f"{self.exporter_name(place)}.log",
        )

    def client(self, *args: str, check: bool = True) -> str:
        """``labgrid-client`` against this lab (setup and checks, as an admin types them)."""
        done = subprocess.run(
            [str(BIN / "labgrid-client"), "-x", self.address, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LG_USERNAME": "lab-admin"},
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {done.stderr}{done.stdout}")
        return done.stdout

    def start(self) -> Lab:
        """Boards, coordinator, exporters, then the places (tagged ``pool``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        # A new lab: forget the places an earlier lab in this folder left in the
        # coordinator's state (seen: 'Place vboard0 already exists' on the second
        # `up` in one folder); restart_coordinator keeps them, as a restart must.
        shutil.rmtree(self.folder / "coordinator", ignore_errors=True)
        self.firmware.write_bytes(f"virtual address-mode runner of lab {self.tag}".encode())
        for board in self.boards.values():
            board.launch()
        self.start_coordinator()  # while the boards import torch
        for board in self.boards.values():
            board.wait_ready()
        for place in self.places:
            self.start_exporter(place)
            self._add_place(place)
        self.wait_for_resources()
        return self

    def _add_place(self, place: str) -> None:
        """The place of one board, as an admin makes it: created, matched to its
        exporter's resource group, tagged with the pool."""
        self.client("-p", place, "create")
        self.client("-p", place, "add-match", f"{self.exporter_name(place)}/{place}/*")
        self.client("-p", place, "set-tags", f"pool={POOL}")

    def wait_for_resources(self) -> None:
        """Until every exporter has registered its board's port."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            text = self.client("resources", check=False)
            if all(f"{self.exporter_name(p)}/{p}/" in text for p in self.places):
                return
            if time.monotonic() > deadline:
                logs = {
                    p: (self.folder / f"{self.exporter_name(p)}.log").read_text()[-1500:]
                    for p in self.places
                }
                raise RuntimeError(f"exporters did not register: {text}\n{logs}")
            time.sleep(0.2)

    def kill_exporter(self, place: str) -> None:
        """SIGKILL one exporter, as a host that crashed."""
        proc = self.exporters.pop(place)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart_coordinator(self) -> None:
        """Stop the coordinator and start it again on the same port; exporters
        exit when it goes (labgrid's behaviour) and are started again."""
        self._stop(self.coordinator)
        for place in list(self.exporters):
            self._stop(self.exporters.pop(place))
        self.start_coordinator()
        known = self.client("places", check=False)
        for place in self.places:
            self.start_exporter(place)
            if place not in known.split():
                self._add_place(place)
        self.wait_for_resources()

    def acquired(self) -> dict[str, str | None]:
        """Each place's acquirer, from the coordinator (``labgrid-client places``)."""
        out = self.client("-v", "places")
        result: dict[str, str | None] = {}
        current = None
        for line in out.splitlines():
            if line.startswith("Place '"):
                current = line.split("'")[1]
                result[current] = None
            elif current and line.strip().startswith("acquired:"):
                value = line.split(":", 1)[1].strip()
                result[current] = None if value in ("", "None") else value
        return result

    def _stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        """Everything, exporters first (they take their ser2net along)."""
        for place in list(self.exporters):
            self._stop(self.exporters.pop(place))
        self._stop(self.coordinator)
        self.coordinator = None
        for board in self.boards.values():
            board.stop()

    # ------------------------------------------------------------ board files

    def board_toml(
        self,
        name: str = "lab-vboard",
        *,
        place: str | None = None,
        timeout_s: float = 300.0,
        retries: int = 1,
        reconnect_s: float = 3.0,
    ) -> str:
        """A board file for the lab's virtual boards: the pool, or one place."""
        which = f'place = "{place}"' if place else f'tags = {{ pool = "{POOL}" }}'
        state = f"{self.folder / 'boards'}/{{place}}"
        return f"""\
name = "{name}"
kind = "serial"
target = "portable"
cpu = "cortex-m55"
description = "virtual serial boards of a labgrid lab (test doubles)"
capabilities = ["etdump", "cycle_counts", "bundled_io"]
run_timeout_s = 20

[serial]
baud = 115200
bundle_io = true
retries = {retries}
reconnect_s = {reconnect_s}
quiet_s = 0.15

[serial.labgrid]
coordinator = "{self.address}"
{which}
timeout_s = {timeout_s}

[serial.firmware]
mode = "address"
pte_address = 0x70000000
image = "{self.firmware}"        # flashed once per place, named in every record by its hash
image_address = 0x10000000

[serial.flash]
method = "command"
command = [
    "{sys.executable}", "{FLASHER}", "flash", "--state", "{state}",
    "--image", "{{image}}", "--address", "{{address}}", "--unit", "{{place}}",
]

[serial.reset]
method = "command"
command = ["{sys.executable}", "{FLASHER}", "reset", "--state", "{state}", "--unit", "{{place}}"]
"""

    def write_board_file(self, path: Path | None = None, **kw: object) -> Path:
        path = path or self.folder / "lab-vboard.toml"
        path.write_text(self.board_toml(**kw))  # type: ignore[arg-type]
        return path

    def describe(self) -> dict[str, object]:
        return {
            "address": self.address,
            "tag": self.tag,
            "board_file": str(self.folder / "lab-vboard.toml"),
            "pids": {
                "coordinator": self.coordinator.pid if self.coordinator else None,
                **{f"exporter-{p}": proc.pid for p, proc in self.exporters.items()},
                **{f"board-{p}": b.proc.pid for p, b in self.boards.items() if b.proc},
            },
        }
