"""Answers a Corstone FVP's command line by running the genuine runner on QEMU.

Test tool only: never offered as a board. The corstone boards' own code path
(command rendering, executors, run folder, log and ETDump reading) runs against
the genuine upstream ``arm_executor_runner``: this program takes the FVP's
parameters as the FVP would (the known parameter names, ``-a ELF``,
``--timelimit``, the semihosting folder and command line), and runs the ELF on
``qemu-system-arm -machine mps3-an547`` (Cortex-M55, no NPU: programs must run
on the CPU kernels). The runner's output is passed through as the FVP's; at
``--timelimit`` seconds (wall time here, simulated CPU time on an FVP) QEMU is
stopped and the FVP's own line is printed. The FVP double (tests/fvp_double)
stays for fault injection.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fvp_double"))
from fvp_double import CMDLINE_LIMIT, PLATFORMS, fail, parse

from et_hil.boards.qemu.command import qemu_argv

QEMU = os.environ.get("ET_HIL_QEMU", "qemu-system-arm")
TIMELIMIT_LINE = "Info: Simulation is stopping. Reason: CPU time has been exceeded."


def main() -> int:
    name, args = Path(sys.argv[0]).name, sys.argv[1:]
    if args[:1] == ["--as"]:  # from the launcher: the name it was started as
        name, args = args[1], args[2:]
    if name not in PLATFORMS:
        return fail(f"fvp_on_qemu: unknown FVP name {name}")
    known, prefix, version, _macs = PLATFORMS[name]
    if args == ["--version"]:
        print(f"Fast Models [{version} (genuine runner on QEMU)]")
        return 0
    parsed = parse(args)
    if isinstance(parsed, str):
        return fail(parsed)
    params, elf, timelimit = parsed
    for key in params:
        if key not in known:
            return fail(f"unknown parameter '{key}' for {name}")
    if elf is None or not Path(elf).exists():
        return fail(f"could not load application '{elf}'")
    cwd = Path(params.get(prefix + "semihosting-cwd", "."))
    cmd_line = params.get(prefix + "semihosting-cmd_line", "").strip("'")[:CMDLINE_LIMIT]
    sys.stdout.flush()
    process = subprocess.Popen(
        qemu_argv(QEMU, "mps3-an547", elf, shlex.split(cmd_line)), cwd=cwd, stdin=subprocess.DEVNULL
    )
    try:
        return process.wait(timeout=timelimit)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        print(TIMELIMIT_LINE, flush=True)
        return 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
