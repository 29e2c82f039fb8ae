"""Checking a runner ELF: its machine, the CPU from its ``.ARM.attributes`` (the
build attributes every Arm toolchain writes), whether its load segments fit a
board's memory map, and its text/data/bss sizes; read with pyelftools."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE
from elftools.elf.sections import ARMAttributesSection

from et_hil.errors import ConfigError
from et_hil.executor_runner.memory_map import MemoryRegion

EM_ARM = 40
SHT_ARM_ATTRIBUTES = 0x70000003
# pyelftools' names of the build attributes Tag_CPU_name (5) and Tag_CPU_arch (6).
TAG_CPU_NAME = "TAG_CPU_NAME"
TAG_CPU_ARCH = "TAG_CPU_ARCH"
# Tag_CPU_arch values (Arm ABI addenda) for the cores boards here use.
CPU_ARCH_NAMES = {13: "v7E-M", 16: "v8-M.main", 21: "v8.1-M.main"}
CPU_ARCH_OF = {
    "cortex-m55": 21,
    "cortex-m85": 21,
    "cortex-m4": 13,
    "cortex-m7": 13,
    "cortex-m33": 16,
}


@dataclasses.dataclass(frozen=True)
class Segment:
    """A ``PT_LOAD`` segment: where it runs (``vaddr``), where it is loaded
    (``paddr``), and its size in memory."""

    vaddr: int
    paddr: int
    memsz: int


@dataclasses.dataclass(frozen=True)
class ElfInfo:
    """What a runner ELF was built for, and where it loads."""

    machine: int
    cpu_name: str | None
    cpu_arch: int | None
    sha256: str
    segments: tuple[Segment, ...] = ()


def _machine_number(machine: str | int) -> int:
    """pyelftools names the machines it knows (``EM_ARM``); the number is what messages show."""
    return ENUM_E_MACHINE.get(machine, -1) if isinstance(machine, str) else int(machine)


def _cpu_tags(elf: ELFFile) -> dict[str, int | str]:
    """The whole-file tags of the ``aeabi`` build attributes (other vendors' are skipped)."""
    tags: dict[str, int | str] = {}
    for section in elf.iter_sections():
        if not isinstance(section, ARMAttributesSection):
            continue
        for subsection in section.iter_subsections("aeabi"):
            for scope in subsection.iter_subsubsections("TAG_FILE"):
                for attribute in scope.iter_attributes():
                    if attribute.tag in (TAG_CPU_NAME, TAG_CPU_ARCH):
                        tags[attribute.tag] = attribute.value
    return tags


def read_elf(path: Path) -> ElfInfo:
    """Machine and CPU of an ELF file (read with pyelftools).

    Raises:
        ConfigError: the file is missing, not an ELF, or malformed, naming it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"runner ELF {path}: cannot read it ({exc.strerror})") from exc
    # Checked before pyelftools so each mistake gets its own message (pyelftools
    # would read a 64-bit or big-endian ELF, and says little about a short one).
    if data[:4] != b"\x7fELF":
        raise ConfigError(f"runner ELF {path}: not an ELF file")
    if len(data) < 52:  # the ELF32 header
        raise ConfigError(f"runner ELF {path}: truncated ({len(data)} bytes); rebuild or recopy it")
    if data[4] != 1 or data[5] != 1:
        raise ConfigError(f"runner ELF {path}: not a 32-bit little-endian ELF (not for Cortex-M)")
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = _machine_number(elf["e_machine"])
        tags = _cpu_tags(elf)
        segments = tuple(
            Segment(int(seg["p_vaddr"]), int(seg["p_paddr"]), int(seg["p_memsz"]))
            for seg in elf.iter_segments()
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > 0
        )
    except (ELFError, ConstructError, ValueError, KeyError) as exc:
        raise ConfigError(f"runner ELF {path}: malformed ELF or .ARM.attributes ({exc})") from exc
    name, arch = tags.get(TAG_CPU_NAME), tags.get(TAG_CPU_ARCH)
    return ElfInfo(
        machine,
        str(name) if name is not None else None,
        int(arch) if isinstance(arch, int) else None,
        hashlib.sha256(data).hexdigest(),
        segments,
    )


def check_runner_elf(path: Path, cpu: str, board: str) -> ElfInfo:
    """Refuse an ELF that is not an Arm build for ``cpu``.

    Upstream's toolchain file builds Cortex-M85 runners with ``-mcpu=cortex-m55``
    (same v8.1-M architecture), so an M85 board accepts an M55 build.

    Raises:
        ConfigError: wrong machine or CPU, naming the ELF, the board and both CPUs.
    """
    info = read_elf(path)
    if info.machine != EM_ARM:
        raise ConfigError(
            f"board '{board}': runner ELF {path} is for ELF machine {info.machine}, not Arm (40)"
        )
    wanted_arch = CPU_ARCH_OF.get(cpu.lower())
    name = (info.cpu_name or "").lower().replace("_", "-")
    accepted = {cpu.lower()} | ({"cortex-m55"} if cpu.lower() == "cortex-m85" else set())
    if name and name not in accepted:
        raise ConfigError(
            f"board '{board}': runner ELF {path} was built for {info.cpu_name}, "
            f"the board's CPU is {cpu}; use the runner built for this board"
        )
    if not name and wanted_arch is not None and info.cpu_arch not in (None, wanted_arch):
        got = CPU_ARCH_NAMES.get(info.cpu_arch or -1, str(info.cpu_arch))
        raise ConfigError(
            f"board '{board}': runner ELF {path} is for Arm architecture {got}, "
            f"{cpu} needs {CPU_ARCH_NAMES[wanted_arch]}"
        )
    return info


def segments_outside(info: ElfInfo, regions: Sequence[MemoryRegion]) -> list[str]:
    """Each load segment that does not lie inside one region of ``regions``
    (by its run and its load address), described for a message; none when the
    map is unknown (empty)."""
    if not regions:
        return []
    problems = []
    for seg in info.segments:
        for address, what in ((seg.vaddr, "runs at"), (seg.paddr, "loads at")):
            if any(r.holds(address, seg.memsz) for r in regions):
                continue
            near = [r for r in regions if r.base <= address < r.base + r.size]
            where = (
                f"overflows {near[0].name} (0x{near[0].base:08x} + 0x{near[0].size:x})"
                if near
                else "is in no memory of the board"
            )
            problems.append(f"segment of 0x{seg.memsz:x} bytes {what} 0x{address:08x}: {where}")
            break
    return problems


def check_memory_map(
    path: Path, info: ElfInfo, regions: Sequence[MemoryRegion], board: str, layout: str
) -> None:
    """Refuse a runner ELF whose load segments do not fit the board's memories:
    a runner linked for another platform (a Corstone-300 layout on Corstone-320)
    would fault or hang instead of running.

    Raises:
        ConfigError: naming the ELF, the board, the platform layout and each segment.
    """
    problems = segments_outside(info, regions)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise ConfigError(
            f"board '{board}': runner ELF {path} does not fit the {layout} memory map: {shown}. "
            f"Use a runner linked for {layout} (upstream's linker script for it, or "
            "'et-hil firmware build' for QEMU boards)"
        )


def berkeley_sizes(path: Path) -> dict[str, int]:
    """``text``, ``data`` and ``bss`` of an ELF, as binutils' ``size`` (Berkeley
    format, its default) counts them from the section headers.

    Only sections that take memory (``SHF_ALLOC``) count. Code and every read-only
    section (``.rodata``, ``.ARM.exidx``) are text; writable sections with bytes in
    the file are data; writable ones without (``SHT_NOBITS``: ``.bss``, a heap or
    stack reserved by the linker script) are bss. These are ``size``'s rules
    (``berkeley_or_gnu_sum`` in binutils' ``size.c``) on the flags BFD derives
    from ELF section headers.

    Raises:
        ConfigError: the file cannot be read or is not an ELF, naming it.
    """
    sizes = {"text": 0, "data": 0, "bss": 0}
    try:
        with path.open("rb") as f:
            for section in ELFFile(f).iter_sections():
                flags, size = int(section["sh_flags"]), int(section["sh_size"])
                if not flags & SH_FLAGS.SHF_ALLOC:
                    continue
                if flags & SH_FLAGS.SHF_EXECINSTR or not flags & SH_FLAGS.SHF_WRITE:
                    sizes["text"] += size
                elif section["sh_type"] != "SHT_NOBITS":
                    sizes["data"] += size
                else:
                    sizes["bss"] += size
    except OSError as exc:
        raise ConfigError(f"ELF {path}: cannot read it ({exc.strerror})") from exc
    except (ELFError, ConstructError, ValueError, KeyError) as exc:
        raise ConfigError(f"ELF {path}: malformed ({exc})") from exc
    return sizes
