"""The virtual serial board, started and described for tests.

:class:`VirtualBoard` runs ``virtual_board.py`` as a process and writes a board
file that reaches it the way a user's file reaches a real board: the pty's
symlink as the port, ``flasher.py`` as the command-template flasher and reset.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLASHER = HERE / "flasher.py"
BOARD = HERE / "virtual_board.py"
READY_TIMEOUT_S = 60.0  # the first import of torch + executorch


class VirtualBoard:
    """One virtual board process.

    Args:
        folder: its state folder (flash contents, mode, flasher log).
        name: board name in the board file.
        bundle_io: firmware built with BundleIO.
        embedded: firmware rebuilt with each program (else address mode).
        pmu: print the Ethos-U PMU report.
        tag: ``ET_HIL_TEST_TAG`` of its process (leftover checks).
        run_delay_s: extra seconds per inference (a slower board).
        dump_outputs: log outputs into the ETDump (``-DET_DUMP_OUTPUTS=ON``).
        link: where its pty is linked (default ``<folder>/ttyVB0``; a labgrid
            exporter serves ports under ``/dev`` only).
    """

    def __init__(
        self,
        folder: Path,
        name: str = "vboard",
        *,
        bundle_io: bool = True,
        embedded: bool = False,
        pmu: bool = True,
        tag: str = "",
        run_delay_s: float = 0.0,
        dump_outputs: bool = False,
        link: Path | None = None,
    ) -> None:
        self.folder = folder
        self.name = name
        self.bundle_io = bundle_io
        self.embedded = embedded
        self.pmu = pmu
        self.tag = tag
        self.run_delay_s = run_delay_s
        self.dump_outputs = dump_outputs
        self.link = link or folder / "ttyVB0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> VirtualBoard:
        """Start the process and wait until its pty is there."""
        return self.launch().wait_ready()

    def launch(self) -> VirtualBoard:
        """Start the process (several boards start faster launched together,
        then each waited for with :meth:`wait_ready`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(BOARD), "--state", str(self.folder), "--link", str(self.link)]
        if self.bundle_io:
            argv.append("--bundle-io")
        if self.embedded:
            argv += ["--firmware-address", "0x0"]
        if self.pmu:
            argv.append("--pmu")
        if self.dump_outputs:
            argv.append("--dump-outputs")
        if self.run_delay_s:
            argv += ["--run-delay", str(self.run_delay_s)]
        env = {**os.environ, "ET_HIL_TEST_TAG": self.tag} if self.tag else None
        with (self.folder / "board.log").open("wb") as log:  # the child has its own copy
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self) -> VirtualBoard:
        """Wait until the launched process serves its pty."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (self.folder / "board.pid").exists() or not self.link.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"virtual board did not start: {(self.folder / 'board.log').read_text()}"
                )
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stop the process (and its pty)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def ready(self, within_s: float = 30.0) -> VirtualBoard:
        """Make the board as a test expects to find it, whatever ran before: no
        misbehaviour queued, the flasher working, and its port present (a
        ``vanish`` or ``disconnect`` of an earlier test brings it back late).

        Raises:
            RuntimeError: the process is gone, or the port is not back within
                ``within_s`` (with the board's own log).
        """
        (self.folder / "mode").unlink(missing_ok=True)
        (self.folder / "flasher_fails").unlink(missing_ok=True)
        deadline = time.monotonic() + within_s
        while not self.link.exists():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"virtual board {self.name!r}: its port {self.link} is not back within "
                    f"{within_s:g} s: {(self.folder / 'board.log').read_text()}"
                )
            time.sleep(0.1)
        return self

    def set_mode(self, mode: str, count: int = 1, seconds: float = 0.0) -> None:
        """Misbehave on the next ``count`` resets."""
        (self.folder / "mode").write_text(f"{mode} {count} {seconds}")

    def flasher_calls(self) -> list[dict[str, object]]:
        """What the test flasher was given, in order."""
        import json

        path = self.folder / "flasher.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def board_toml(self, *, retries: int = 1, reconnect_s: float = 5.0, extra: str = "") -> str:
        """A board file for this board (also usable as one ``[[board]]`` of a lab file)."""
        if self.embedded:
            firmware = (
                'mode = "embedded"\nimage_address = 0x0\n'
                f'build = ["{sys.executable}", "{FLASHER}", "build", "--state", "{self.folder}", '
                '"--program", "{program}", "--output", "{output}"]'
            )
        else:
            firmware = 'mode = "address"\npte_address = 0x70000000'
        return f"""\
name = "{self.name}"
kind = "serial"
target = "portable"
cpu = "cortex-m55"
description = "virtual serial board (test double)"
capabilities = ["etdump", "cycle_counts"{', "bundled_io"' if self.bundle_io else ""}]
run_timeout_s = 20
{extra}
[serial]
port = "{self.link}"
baud = 115200
bundle_io = {str(self.bundle_io).lower()}
retries = {retries}
reconnect_s = {reconnect_s}
quiet_s = 0.15
lock_timeout_s = 300

[serial.firmware]
{firmware}

[serial.flash]
method = "command"
command = ["{sys.executable}", "{FLASHER}", "flash", "--image", "{{image}}", "--address", "{{address}}", "--unit", "{{unit}}", "--port", "{{port}}"]

[serial.reset]
method = "command"
command = ["{sys.executable}", "{FLASHER}", "reset", "--port", "{{port}}", "--unit", "{{unit}}"]
"""

    def unit_toml(self, name: str) -> str:
        """This board as one ``[[serial.unit]]`` of a pool (flasher state per unit)."""
        return f'[[serial.unit]]\nname = "{name}"\nport = "{self.link}"\n'

    def write_board_file(self, path: Path | None = None, **kw: object) -> Path:
        """Write :meth:`board_toml` to a file and return its path."""
        path = path or self.folder / f"{self.name}.toml"
        path.write_text(self.board_toml(**kw))  # type: ignore[arg-type]
        return path


def pool_toml(boards: list[VirtualBoard], name: str) -> str:
    """One board name over several virtual boards: a pool, one unit per board."""
    first = boards[0]
    text = first.board_toml().replace(f'port = "{first.link}"\n', "", 1)
    text = text.replace(f'name = "{first.name}"', f'name = "{name}"', 1)
    return text + "\n" + "".join(b.unit_toml(f"u{i}") for i, b in enumerate(boards))
