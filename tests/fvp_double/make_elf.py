"""Stand-in runner ELFs for the FVP double's image (ELF header and build attributes only).

Self-contained (no et-hil import) so the CI image can run it too; tests/test_elf.py
checks what it writes against binutils' readelf.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

# Tag_CPU_arch values (Arm ABI addenda): v7E-M 13, v8-M.main 16, v8.1-M.main 21.
ARCH = {"cortex-m4": 13, "cortex-m7": 13, "cortex-m33": 16, "cortex-m55": 21, "cortex-m85": 21}


def attributes_subsection(vendor: str, cpu_name: str) -> bytes:
    """A vendor's subsection of ``.ARM.attributes`` whose whole-file tags name a CPU."""
    body = bytes([5]) + cpu_name.encode() + b"\0" + bytes([6, ARCH.get(cpu_name.lower(), 21)])
    file_sub = bytes([1]) + struct.pack("<I", 5 + len(body)) + body
    name = vendor.encode() + b"\0"
    return struct.pack("<I", 4 + len(name) + len(file_sub)) + name + file_sub


def write_elf(
    path: Path,
    cpu_name: str,
    machine: int = 40,
    attributes: bytes | None = None,
    segments: list[tuple[int, int]] | None = None,
) -> None:
    """ELF32 LE (machine 40 = Arm), one .ARM.attributes section naming ``cpu_name``
    (or holding ``attributes``, as given), and a PT_LOAD program header for each
    ``(address, size)`` of ``segments`` (no bytes in the file: like .bss)."""
    if attributes is None:
        attributes = b"A" + attributes_subsection("aeabi", cpu_name)
    phdrs = segments or []
    names = b"\0.ARM.attributes\0.shstrtab\0"
    ph_off = 52 if phdrs else 0
    attr_off = 52 + 32 * len(phdrs)
    str_off = attr_off + len(attributes)
    sh_off = (str_off + len(names) + 3) & ~3
    header = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    header += struct.pack(
        "<HHIIIIIHHHHHH", 2, machine, 1, 0, ph_off, sh_off, 0x05000400, 52, 32, len(phdrs), 40, 3, 2
    )
    for address, size in phdrs:  # p_type PT_LOAD, offset 0, filesz 0, flags RW, align 4
        header += struct.pack("<8I", 1, 0, address, address, 0, size, 6, 4)
    data = header + attributes + names
    data += b"\0" * (sh_off - len(data))
    data += struct.pack("<10I", *([0] * 10))
    data += struct.pack("<10I", 1, 0x70000003, 0, 0, attr_off, len(attributes), 0, 0, 1, 0)
    data += struct.pack("<10I", 17, 3, 0, 0, str_off, len(names), 0, 0, 1, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main(root: str) -> None:
    """Write ``<root>/cortex-m55/arm_executor_runner``."""
    write_elf(Path(root) / "cortex-m55" / "arm_executor_runner", "cortex-m55")


if __name__ == "__main__":
    main(sys.argv[1])
