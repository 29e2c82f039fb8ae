"""Corstone FVPs as data: platform files in ``fvp/`` rendered into command lines.

Nothing here starts a process: :mod:`harness.boards.fvp.board` runs the command,
locally or in Docker, and both use the same rendering. The runner's output is
read by :mod:`harness.runner.log`, which serial boards share.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from pathlib import Path

from harness.datafiles import fvp_platform_dir
from harness.errors import ConfigError

RUNNER_ARGV0 = "executor_runner"  # argv[0] of the semihosting command line; ignored by the runner


@dataclasses.dataclass(frozen=True)
class FvpPlatform:
    """One FVP product, as read from ``fvp/<name>.toml``."""

    name: str
    executable: str
    version: str
    cpu: str
    default_num_macs: int
    num_macs_param: str
    npu_extra_args_param: str
    semihosting_prefix: str
    semihosting_cmdline_limit: int
    headless: tuple[str, ...]
    uart: tuple[str, ...]
    uart_mode_extra: tuple[str, ...]
    semihosting: tuple[str, ...]
    path: Path


def platform_dir() -> Path:
    """Folder of the FVP platform files (``harness/boards/fvp/platforms/``)."""
    return fvp_platform_dir()


def load_platform(name: str) -> FvpPlatform:
    """The FVP platform called ``name``.

    Raises:
        ConfigError: no such platform file, or a bad field in it.
    """
    path = platform_dir() / f"{name}.toml"
    if not path.exists():
        known = sorted(p.stem for p in platform_dir().glob("*.toml"))
        raise ConfigError(f"unknown FVP platform '{name}' (known: {', '.join(known)})")
    data = tomllib.loads(path.read_text())
    try:
        return FvpPlatform(
            name=data["name"],
            executable=data["executable"],
            version=data["version"],
            cpu=data["cpu"],
            default_num_macs=int(data["default_num_macs"]),
            num_macs_param=data["num_macs_param"],
            npu_extra_args_param=data["npu_extra_args_param"],
            semihosting_prefix=data["semihosting_prefix"],
            semihosting_cmdline_limit=int(data["semihosting_cmdline_limit"]),
            headless=tuple(data["headless"]),
            uart=tuple(data["uart"]),
            uart_mode_extra=tuple(data.get("uart_mode_extra", ())),
            semihosting=tuple(data["semihosting"]),
            path=path,
        )
    except KeyError as exc:
        raise ConfigError(f"FVP platform file {path}: missing field {exc}") from exc


def semihosting_command_line(input_count: int) -> str:
    """The runner's argv, as upstream writes it: basenames only, to stay short."""
    line = f"{RUNNER_ARGV0} -m program.pte -o out"
    for i in range(input_count):
        line += f" -i i{i}.bin"
    return line


def render_command(
    platform: FvpPlatform,
    *,
    executable: str,
    elf: str,
    num_macs: int,
    timeout_s: int,
    semihosting_cwd: str | None,
    input_count: int = 0,
    fast: bool = True,
) -> list[str]:
    """The FVP argv for one run, parameter by parameter as upstream renders it.

    Args:
        platform: the FVP product.
        executable: the FVP binary to start (path or name).
        elf: the runner ELF, as the FVP will see it.
        num_macs: MACs of the Ethos-U; must match the program's compile target.
        timeout_s: the FVP's ``--timelimit``.
        semihosting_cwd: folder with the program and inputs (semihosting mode);
            ``None`` renders a UART-mode command.
        input_count: number of ``i<k>.bin`` inputs.
        fast: ``--fast`` NPU model (functional); False gives cycle-approximate NPU timing.

    Raises:
        ConfigError: the semihosting command line would be truncated by the FVP.
    """
    params = [f"{platform.num_macs_param}={num_macs}", *platform.headless, *platform.uart]
    if semihosting_cwd is None:
        params += list(platform.uart_mode_extra)
    else:
        params += [platform.semihosting_prefix + p for p in platform.semihosting]
        params.append(f"{platform.semihosting_prefix}semihosting-cwd={semihosting_cwd}")
    if fast:
        params.append(f"{platform.npu_extra_args_param}='--fast'")
    if semihosting_cwd is not None:
        line = semihosting_command_line(input_count)
        if len(line) > platform.semihosting_cmdline_limit:
            raise ConfigError(
                f"FVP {platform.name}: the semihosting command line is {len(line)} characters; "
                f"the FVP truncates beyond {platform.semihosting_cmdline_limit} "
                f"({input_count} inputs are too many)"
            )
        params.append(f"{platform.semihosting_prefix}semihosting-cmd_line='{line}'")
    argv = [executable]
    for param in params:
        argv += ["-C", param]
    return [*argv, "-a", elf, "--timelimit", str(timeout_s)]


def quote_argv(argv: Sequence[str]) -> str:
    """A shell-pasteable rendering of an argv (for repro folders)."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
