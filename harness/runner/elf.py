"""Just enough ELF reading to check a runner ELF: machine, and the CPU from its
``.ARM.attributes`` (the build attributes every Arm toolchain writes)."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from pathlib import Path

from harness.errors import ConfigError

EM_ARM = 40
SHT_ARM_ATTRIBUTES = 0x70000003
TAG_CPU_NAME = 5
TAG_CPU_ARCH = 6
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
class ElfInfo:
    """What a runner ELF was built for."""

    machine: int
    cpu_name: str | None
    cpu_arch: int | None
    sha256: str


def _uleb128(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _ntbs(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode(errors="replace"), end + 1


def parse_arm_attributes(data: bytes) -> dict[int, int | str]:
    """Tags of the ``aeabi`` File sub-section of an ``.ARM.attributes`` section."""
    tags: dict[int, int | str] = {}
    if not data or data[0] != ord("A"):
        return tags
    pos = 1
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        section_end = pos + length
        vendor, sub = _ntbs(data, pos + 4)
        while vendor == "aeabi" and sub < section_end:
            kind = data[sub]
            (size,) = struct.unpack_from("<I", data, sub + 1)
            if size < 5:  # malformed: a sub-section holds at least its tag and size
                break
            cursor, sub_end = sub + 5, sub + size
            while kind == 1 and cursor < sub_end:  # 1: attributes of the whole file
                tag, cursor = _uleb128(data, cursor)
                if tag in (4, 5, 67) or (tag > 32 and tag % 2 == 1):
                    tags[tag], cursor = _ntbs(data, cursor)
                elif tag == 32:
                    _, cursor = _uleb128(data, cursor)
                    _, cursor = _ntbs(data, cursor)
                else:
                    tags[tag], cursor = _uleb128(data, cursor)
            sub = sub_end
        pos = section_end if length > 4 else len(data)
    return tags


def read_elf(path: Path) -> ElfInfo:
    """Machine and CPU of an ELF file.

    Raises:
        ConfigError: the file is missing or not an ELF, naming it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"runner ELF {path}: cannot read it ({exc.strerror})") from exc
    if data[:4] != b"\x7fELF":
        raise ConfigError(f"runner ELF {path}: not an ELF file")
    if len(data) < 52:  # the ELF32 header
        raise ConfigError(f"runner ELF {path}: truncated ({len(data)} bytes); rebuild or recopy it")
    if data[4] != 1 or data[5] != 1:
        raise ConfigError(f"runner ELF {path}: not a 32-bit little-endian ELF (not for Cortex-M)")
    (machine,) = struct.unpack_from("<H", data, 18)
    (shoff,) = struct.unpack_from("<I", data, 32)
    shentsize, shnum = struct.unpack_from("<HH", data, 46)
    cpu_name: str | None = None
    cpu_arch: int | None = None
    for i in range(shnum):
        base = shoff + i * shentsize
        if base + 40 > len(data):
            break
        _, sh_type, _, _, offset, size = struct.unpack_from("<IIIIII", data, base)
        if sh_type == SHT_ARM_ATTRIBUTES and offset + size <= len(data):
            try:
                tags = parse_arm_attributes(data[offset : offset + size])
            except (ValueError, IndexError, struct.error) as exc:
                raise ConfigError(f"runner ELF {path}: malformed .ARM.attributes ({exc})") from exc
            name, arch = tags.get(TAG_CPU_NAME), tags.get(TAG_CPU_ARCH)
            cpu_name = str(name) if name is not None else None
            cpu_arch = int(arch) if isinstance(arch, int) else None
    return ElfInfo(machine, cpu_name, cpu_arch, hashlib.sha256(data).hexdigest())


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
