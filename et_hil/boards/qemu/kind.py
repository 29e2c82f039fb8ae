"""The ``qemu`` board kind: its ``[qemu]`` table, its options, its fidelity.

Light on purpose (no numpy): the plugin reads it at start-up.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from et_hil.boards.kind import BoardKind, OptionAdder
from et_hil.boards.memory import SemihostingPools
from et_hil.errors import ConfigError
from et_hil.executor_runner.command_line import FIXED_SHAPES
from et_hil.executor_runner.memory_map import MemoryRegion
from et_hil.firmware.settings import FirmwareSettings
from et_hil.validation import convert_all, problems_message

_Count = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer"})]
_Bytes = Annotated[int, msgspec.Meta(ge=0, extra={"expect": "a byte count >= 0"})]


class QemuSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A board file's ``[qemu]`` table."""

    machine: Annotated[
        str, msgspec.Meta(description="QEMU machine file in et_hil/boards/qemu/machines/")
    ] = "mps3-an547"
    runner_elf: Annotated[
        str | None,
        msgspec.Meta(
            description="a runner ELF of your own, relative to the board file's folder "
            "(default: the one [qemu.firmware] describes, built and cached by et-hil)"
        ),
    ] = None
    firmware: FirmwareSettings = FirmwareSettings()


class MemorySpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One memory of a machine's map."""

    name: str
    base: Annotated[int, msgspec.Meta(ge=0)]
    size: _Count


class QemuMachine(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A QEMU machine as read from ``et_hil/boards/qemu/machines/<name>.toml``."""

    name: str
    cpu: str
    memory_map: tuple[MemorySpec, ...]

    def regions(self) -> list[MemoryRegion]:
        """The memory map, for :func:`et_hil.executor_runner.elf.check_memory_map`."""
        return [MemoryRegion(m.name, m.base, m.size) for m in self.memory_map]


def known_machines() -> list[str]:
    """The names of the machine files."""
    from et_hil.datafiles import qemu_machine_dir

    return sorted(p.stem for p in qemu_machine_dir().glob("*.toml"))


def load_machine(name: str) -> QemuMachine:
    """The QEMU machine called ``name``.

    Raises:
        ConfigError: no such machine file, or a bad one (every field at fault named).
    """
    from et_hil.datafiles import qemu_machine_dir

    path = qemu_machine_dir() / f"{name}.toml"
    if not path.exists():
        raise ConfigError(f"unknown QEMU machine '{name}' (known: {', '.join(known_machines())})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"QEMU machine file {path}: not valid TOML: {exc}") from exc
    machine, problems = convert_all(data, QemuMachine)
    if machine is None or problems:
        raise ConfigError(problems_message(f"QEMU machine file {path}", problems))
    return machine


@dataclasses.dataclass(frozen=True)
class QemuOptions:
    """Command-line and environment settings of QEMU boards.

    Attributes:
        qemu: the ``qemu-system-arm`` to run (``$ET_HIL_QEMU``; default: on ``PATH``).
        executorch_src: the ExecuTorch source tree firmware is built from
            (``--et-executorch-src``, ``$ET_HIL_EXECUTORCH_SRC``; default: the
            pinned source bundle, see :mod:`et_hil.firmware.sources`).
    """

    qemu: str = "qemu-system-arm"
    executorch_src: Path | None = None


def from_environment() -> QemuOptions:
    """QEMU options from the environment alone (``et-hil`` commands, defaults)."""
    src = os.environ.get("ET_HIL_EXECUTORCH_SRC")
    return QemuOptions(
        qemu=os.environ.get("ET_HIL_QEMU", "qemu-system-arm"),
        executorch_src=Path(src) if src else None,
    )


def add_options(group: OptionAdder) -> None:
    """The QEMU options of pytest's et-hil group."""
    group.addoption(
        "--et-executorch-src",
        deprecated=["--executorch-src"],
        metavar="DIR",
        help="ExecuTorch source tree to build QEMU boards' runner firmware from "
        "(default: $ET_HIL_EXECUTORCH_SRC, else the pinned source bundle)",
    )


def options_from(option: Any) -> QemuOptions:
    """QEMU options from pytest's parsed options, over the environment's."""
    environment = from_environment()
    src = option.executorch_src
    return dataclasses.replace(
        environment, executorch_src=Path(src) if src else environment.executorch_src
    )


def check_settings(settings: QemuSettings | None, path: Path) -> list[str]:
    """The machine must be a known machine file; the kernel set a known one."""
    if settings is None:
        return []
    problems = []
    if settings.machine not in known_machines():
        problems.append(
            f"[qemu] machine '{settings.machine}' is unknown (known: {', '.join(known_machines())})"
        )
    if settings.firmware.kernels not in ("wide", "portable"):
        problems.append(
            f"[qemu.firmware] kernels '{settings.firmware.kernels}' is unknown (wide, portable)"
        )
    return problems


QEMU_KIND = BoardKind(
    name="qemu",
    board="et_hil.boards.qemu.board:QemuBoard",
    summary="the genuine upstream semihosting runner on QEMU's Cortex-M55 machine "
    "(mps3-an547): CPU kernels only, no NPU, no timing",
    fidelities={
        "qemu": "QEMU: functional only; QEMU has no PMU (its counters read zero) and its "
        "wall time is an emulator's, so timings mean nothing",
    },
    settings_table="qemu",
    settings_type=QemuSettings,
    settings_required=False,
    check_settings=check_settings,
    memory_fields={"file_pool_bytes": "the semihosting runner's file pool"},
    memory_fields_refused={
        "program_bytes": "the semihosting runner reads the program into its file pool "
        "(file_pool_bytes)"
    },
    fixed_shapes=FIXED_SHAPES,
    memory_layout=SemihostingPools("the QEMU runner"),
    add_options=add_options,
    options_from=options_from,
    options_type=QemuOptions,
    options_from_environment=from_environment,
    add_commands="et_hil.boards.qemu.firmware_cli:add_parser",
    doctor=None,
)
