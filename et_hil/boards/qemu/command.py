"""The QEMU command line of one run (light: the genuine-FVP test tool uses it too)."""

from __future__ import annotations

from collections.abc import Sequence


def qemu_argv(qemu: str, machine: str, elf: str, runner_argv: Sequence[str]) -> list[str]:
    """The QEMU command line for one run.

    Semihosting passes the runner's argv (``arg=`` per argument, commas doubled
    as QEMU's option syntax wants) and makes QEMU's working folder the runner's;
    the runner's printf goes through semihosting to QEMU's stdout. No display,
    no monitor, no serial: nothing that could wait for a terminal.
    """
    args = ",".join(f"arg={a.replace(',', ',,')}" for a in runner_argv)
    return [
        qemu,
        "-machine",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        f"enable=on,target=native,{args}",
        "-kernel",
        elf,
    ]
