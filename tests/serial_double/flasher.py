"""The test flasher of the virtual board: the harness's command-template
flashing method runs it like a vendor tool. It records every call (argv, image
hash and size, address) in ``<state>/flasher.jsonl`` so tests can check what
the harness gave it.

    flasher.py flash --port D/ttyVB0 --image F --address 0x70000000 [--unit U]
    flasher.py reset --port D/ttyVB0
    flasher.py build --state D --program P --output O     (embedded-mode firmware)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

EMBEDDED_MAGIC = b"VFW1"


def record(state: Path, entry: dict[str, object]) -> None:
    with (state / "flasher.jsonl").open("a") as log:
        log.write(json.dumps({"time": time.time(), "argv": sys.argv[1:], **entry}) + "\n")


def signal_board(state: Path, signum: int) -> bool:
    try:
        pid = int((state / "board.pid").read_text())
        os.kill(pid, signum)
    except (OSError, ValueError):
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["flash", "reset", "build"])
    parser.add_argument("--state", help="the board's folder (default: the --port's folder)")
    parser.add_argument("--image")
    parser.add_argument("--address")
    parser.add_argument("--program")
    parser.add_argument("--output")
    parser.add_argument("--unit")
    parser.add_argument("--port")
    args = parser.parse_args()
    if args.state is None and args.port is None:
        parser.error("give --state or --port")
    state = Path(args.state) if args.state else Path(args.port).parent
    if (state / "flasher_fails").exists():
        print("flasher: no probe found (test double told to fail)", file=sys.stderr)
        return 3
    if args.action == "build":
        data = Path(args.program).read_bytes()
        Path(args.output).write_bytes(EMBEDDED_MAGIC + data)
        record(state, {"action": "build", "program_sha256": hashlib.sha256(data).hexdigest()})
        return 0
    if args.action == "reset":
        record(state, {"action": "reset", "unit": args.unit})
        if not signal_board(state, signal.SIGUSR1):
            print("flasher: board not responding", file=sys.stderr)
            return 2
        return 0
    image = Path(args.image).read_bytes()
    address = int(args.address, 0)
    signal_board(state, signal.SIGUSR2)  # flashing starts: the old firmware may be printing
    target = state / "flash" / f"0x{address:08x}.bin"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(image)
    os.replace(tmp, target)
    with contextlib.suppress(OSError):
        (state / "etdump.tmp").unlink()
    record(
        state,
        {
            "action": "flash",
            "address": f"0x{address:08x}",
            "bytes": len(image),
            "sha256": hashlib.sha256(image).hexdigest(),
            "magic": image[4:8].decode(errors="replace"),
            "unit": args.unit,
            "port": args.port,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
