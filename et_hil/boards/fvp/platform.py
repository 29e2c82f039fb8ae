"""Corstone FVPs as data: platform files in ``fvp/`` rendered into command lines.

Nothing here starts a process: :mod:`et_hil.boards.fvp.board` runs the command,
locally or in Docker, and both use the same rendering. The runner's output is
read by :mod:`et_hil.executor_runner.log`, which serial boards share.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import msgspec

from et_hil.datafiles import fvp_platform_dir
from et_hil.errors import ConfigError
from et_hil.executor_runner.command_line import runner_argv
from et_hil.executor_runner.memory_map import MemoryRegion
from et_hil.validation import convert_all, problems_message

_Text = Annotated[str, msgspec.Meta(min_length=1, extra={"expect": "a non-empty string"})]
_Count = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer"})]
_Params = Annotated[
    tuple[str, ...],
    msgspec.Meta(
        description="FVP parameters (-C), in order", extra={"expect": "a list of strings"}
    ),
]


class MemorySpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One memory of a platform's map (a runner's load segments must lie in them)."""

    name: _Text
    base: Annotated[int, msgspec.Meta(ge=0, extra={"expect": "an address"})]
    size: _Count


class FvpPlatform(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One FVP product, as read from ``fvp/<name>.toml`` (every field
    is declared here: a platform file with a typo or a missing field fails to load)."""

    name: Annotated[_Text, msgspec.Meta(description="the platform's name: its file's name")]
    executable: Annotated[_Text, msgspec.Meta(description="the FVP binary")]
    version: Annotated[_Text, msgspec.Meta(description="the FVP version it was written for")]
    cpu: Annotated[_Text, msgspec.Meta(description="the CPU it models (cortex-m55 ...)")]
    default_num_macs: Annotated[
        _Count, msgspec.Meta(description="MACs when the program has no Ethos-U target")
    ]
    num_macs_param: _Text
    npu_extra_args_param: _Text
    semihosting_prefix: _Text
    semihosting_cmdline_limit: Annotated[
        _Count, msgspec.Meta(description="characters of semihosting argv the FVP keeps")
    ]
    headless: _Params
    uart: _Params
    uart_mode_extra: _Params = ()
    semihosting: _Params
    memory_map: Annotated[
        tuple[MemorySpec, ...],
        msgspec.Meta(description="the memories a runner ELF may load into"),
    ] = ()

    def regions(self) -> list[MemoryRegion]:
        """The memory map, for :func:`et_hil.executor_runner.elf.check_memory_map`."""
        return [MemoryRegion(m.name, m.base, m.size) for m in self.memory_map]


def platform_dir() -> Path:
    """Folder of the FVP platform files (the top-level ``fvp/``; see :mod:`et_hil.datafiles`)."""
    return fvp_platform_dir()


def load_platform(name: str) -> FvpPlatform:
    """The FVP platform called ``name``.

    Raises:
        ConfigError: no such platform file, or a file that is not valid TOML, or
            bad fields in it (every one listed, each with its field).
    """
    path = platform_dir() / f"{name}.toml"
    if not path.exists():
        known = sorted(p.stem for p in platform_dir().glob("*.toml"))
        raise ConfigError(f"unknown FVP platform '{name}' (known: {', '.join(known)})")
    where = f"FVP platform file {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    platform, problems = convert_all(data, FvpPlatform)
    if isinstance(data.get("name"), str) and data["name"] != name:
        # the board files' [fvp] platform names the file; the name must say the same
        problems.append(f"field 'name' = {data['name']!r}: must be the file's name '{name}'")
    if platform is None or problems:
        raise ConfigError(problems_message(where, problems))
    return platform


def semihosting_command_line(input_count: int) -> str:
    """The runner's argv as one line, as upstream writes it (basenames only, to stay
    short; :func:`et_hil.executor_runner.command_line.runner_argv`)."""
    return " ".join(runner_argv(input_count))


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
