"""``python -m tests.labgrid_lab up|down --dir DIR``: start the CI lab in the
background (coordinator on a free port of 127.0.0.1 unless ``--port``), or stop it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from tests.labgrid_lab import Lab, free_port


def up(folder: Path, port: int | None) -> int:
    # A free port unless one is asked for: another lab on this machine (an engineer's,
    # or a run that was killed) must not turn this one's places into theirs.
    port = port or free_port()
    # the tag names the /dev links: one per port, so two labs never share one
    lab = Lab(folder, port=port, tag=f"cilab{port}")
    try:
        lab.start()
    except BaseException:
        lab.stop()
        raise
    lab.write_board_file()
    (folder / "lab.json").write_text(json.dumps(lab.describe(), indent=1))
    print(f"lab up: coordinator {lab.address}, places {', '.join(lab.places)}")
    print(f"board file: {folder / 'lab-vboard.toml'}")
    return 0


def down(folder: Path) -> int:
    try:
        described = json.loads((folder / "lab.json").read_text())
    except (OSError, ValueError):
        print(f"no lab in {folder}", file=sys.stderr)
        return 1
    pids = described["pids"]
    # exporters first: their ser2net children go with their process groups
    for name in sorted(pids, key=lambda n: (not n.startswith("exporter"), n)):
        pid = pids[name]
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if name.startswith("board-"):
                os.kill(pid, signal.SIGTERM)
            else:
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in pids.values():
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    (folder / "lab.json").unlink()
    print("lab down")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.labgrid_lab")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=None, help="default: a free one")
    args = parser.parse_args()
    folder = args.dir.resolve()
    return up(folder, args.port) if args.action == "up" else down(folder)


if __name__ == "__main__":
    sys.exit(main())
