"""Tests of et_hil.executor_runner.elf: the test-ELF writer, the reader, the runner-ELF check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from et_hil.errors import ConfigError
from et_hil.executor_runner.elf import (
    EM_ARM,
    SHT_ARM_ATTRIBUTES,
    MemoryRegion,
    berkeley_sizes,
    check_memory_map,
    check_runner_elf,
    read_elf,
    segments_outside,
)
from tests.fvp_double.make_elf import attributes_subsection
from tests.fvp_double.make_elf import write_elf as write_test_elf


def _elf(tmp_path: Path, cpu: str, machine: int = EM_ARM, name: str | None = None) -> Path:
    path = tmp_path / (name or f"{cpu}.elf")
    write_test_elf(path, cpu, machine=machine)
    return path


def _attributes_section(data: bytes) -> bytes:
    """The bytes of the ``.ARM.attributes`` section, found through the section headers."""
    shoff = int.from_bytes(data[32:36], "little")
    shentsize = int.from_bytes(data[46:48], "little")
    shnum = int.from_bytes(data[48:50], "little")
    for i in range(shnum):
        header = data[shoff + i * shentsize : shoff + (i + 1) * shentsize]
        sh_type = int.from_bytes(header[4:8], "little")
        if sh_type == SHT_ARM_ATTRIBUTES:
            offset = int.from_bytes(header[16:20], "little")
            size = int.from_bytes(header[20:24], "little")
            return data[offset : offset + size]
    raise AssertionError("no .ARM.attributes section")


# ---------------------------------------------------------------- writer and reader


@pytest.mark.parametrize(
    ("cpu", "arch"), [("cortex-m55", 21), ("cortex-m85", 21), ("cortex-m4", 13), ("cortex-m33", 16)]
)
def test_write_and_read_round_trip(tmp_path: Path, cpu: str, arch: int) -> None:
    path = _elf(tmp_path, cpu)
    info = read_elf(path)
    assert info.machine == EM_ARM == 40
    assert info.cpu_name == cpu
    assert info.cpu_arch == arch
    assert len(info.sha256) == 64


def test_sha256_follows_content(tmp_path: Path) -> None:
    a = read_elf(_elf(tmp_path, "cortex-m55", name="a.elf"))
    b = read_elf(_elf(tmp_path, "cortex-m55", name="b.elf"))
    c = read_elf(_elf(tmp_path, "cortex-m4"))
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_writer_puts_the_cpu_in_an_aeabi_attributes_section(tmp_path: Path) -> None:
    section = _attributes_section(_elf(tmp_path, "cortex-m55").read_bytes())
    assert section[:1] == b"A"  # format version
    assert b"aeabi\0" in section
    # Tag_CPU_name (5) "cortex-m55", then Tag_CPU_arch (6) = 21 (v8.1-M.main)
    assert section.endswith(b"\x05cortex-m55\x00\x06\x15")


def test_reader_skips_other_vendors(tmp_path: Path) -> None:
    gnu = attributes_subsection("gnu", "cortex-m4")
    aeabi = attributes_subsection("aeabi", "cortex-m7")
    path = tmp_path / "vendors.elf"
    write_test_elf(path, "cortex-m7", attributes=b"A" + gnu + aeabi)
    info = read_elf(path)
    assert (info.cpu_name, info.cpu_arch) == ("cortex-m7", 13)
    write_test_elf(path, "cortex-m7", attributes=b"A" + gnu)
    info = read_elf(path)
    assert (info.cpu_name, info.cpu_arch) == (None, None)


def test_malformed_attributes_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.elf"
    # Format version "B" is unknown (only "A" exists): nothing in it can be read.
    write_test_elf(path, "cortex-m55", attributes=b"B" + attributes_subsection("aeabi", "x"))
    with pytest.raises(ConfigError, match="malformed") as excinfo:
        read_elf(path)
    assert str(path) in str(excinfo.value)


def test_elf_without_attributes_has_no_cpu(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m55")
    data = bytearray(path.read_bytes())
    # Turn the .ARM.attributes section into a PROGBITS one: the CPU is then unknown.
    shoff = int.from_bytes(data[32:36], "little")
    type_at = shoff + 40 + 4  # section header 1, field sh_type
    assert int.from_bytes(data[type_at : type_at + 4], "little") == SHT_ARM_ATTRIBUTES
    data[type_at : type_at + 4] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    info = read_elf(path)
    assert (info.machine, info.cpu_name, info.cpu_arch) == (EM_ARM, None, None)
    # Nothing to contradict the board, so the check accepts it.
    assert check_runner_elf(path, "cortex-m55", "corstone300") == info


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not on PATH")
def test_writer_agrees_with_binutils_readelf(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m55")
    attributes = subprocess.run(
        ["readelf", "-A", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert 'Tag_CPU_name: "cortex-m55"' in attributes
    assert "Tag_CPU_arch: v8.1-M.mainline" in attributes
    header = subprocess.run(
        ["readelf", "-h", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "ELF32" in header
    assert "little endian" in header
    assert any(
        line.split(":")[-1].strip() == "ARM" for line in header.splitlines() if "Machine" in line
    )


# ---------------------------------------------------------------- check_runner_elf


def test_check_accepts_matching_cpu(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m55")
    info = check_runner_elf(path, "cortex-m55", "corstone300")
    assert info.cpu_name == "cortex-m55"


def test_check_accepts_m55_build_on_m85_board(tmp_path: Path) -> None:
    # Upstream's toolchain file builds Corstone-320 (Cortex-M85) runners with -mcpu=cortex-m55.
    path = _elf(tmp_path, "cortex-m55")
    assert check_runner_elf(path, "cortex-m85", "corstone320").cpu_name == "cortex-m55"
    assert check_runner_elf(path, "Cortex-M85", "corstone320").cpu_name == "cortex-m55"


def test_check_accepts_other_spellings_of_the_cpu(tmp_path: Path) -> None:
    path = _elf(tmp_path, "Cortex_M55")
    assert check_runner_elf(path, "cortex-m55", "corstone300").cpu_name == "Cortex_M55"


def test_check_rejects_m85_build_on_m55_board(tmp_path: Path) -> None:
    # The exception is one way only: an M85 build may use instructions an M55 lacks.
    path = _elf(tmp_path, "cortex-m85")
    with pytest.raises(ConfigError, match="cortex-m85"):
        check_runner_elf(path, "cortex-m55", "corstone300")


def test_check_rejects_wrong_cpu(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m4")
    with pytest.raises(ConfigError) as excinfo:
        check_runner_elf(path, "cortex-m55", "corstone300-u55")
    message = str(excinfo.value)
    assert str(path) in message
    assert "corstone300-u55" in message
    assert "cortex-m4" in message
    assert "cortex-m55" in message


def test_check_rejects_non_arm_machine(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m55", machine=62)  # EM_X86_64
    assert read_elf(path).machine == 62
    with pytest.raises(ConfigError) as excinfo:
        check_runner_elf(path, "cortex-m55", "corstone300")
    message = str(excinfo.value)
    assert str(path) in message
    assert "corstone300" in message
    assert "62" in message


def test_check_rejects_non_elf_file(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    path.write_text("#!/bin/sh\necho not an elf\n")
    with pytest.raises(ConfigError, match="not an ELF") as excinfo:
        check_runner_elf(path, "cortex-m55", "corstone300")
    assert str(path) in str(excinfo.value)


def test_check_rejects_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.elf"
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match="not an ELF") as excinfo:
        read_elf(path)
    assert str(path) in str(excinfo.value)


def test_check_rejects_64bit_or_big_endian_elf(tmp_path: Path) -> None:
    path = _elf(tmp_path, "cortex-m55")
    data = bytearray(path.read_bytes())
    data[4] = 2  # ELFCLASS64
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="32-bit little-endian") as excinfo:
        read_elf(path)
    assert str(path) in str(excinfo.value)


def test_check_rejects_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "arm_executor_runner"
    with pytest.raises(ConfigError, match="cannot read") as excinfo:
        check_runner_elf(path, "cortex-m55", "corstone300")
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("content", [b"\x7fELF", b"\x7fELF\x01\x01\x01" + b"\0" * 9])
def test_check_rejects_truncated_elf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "truncated.elf"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="truncated"):
        read_elf(path)


# ---------------------------------------------------------------- memory maps

# Upstream's Corstone-300.ld places code in ITCM at 0x10000000 (512 KiB) and the
# pools in DDR at 0x70000000; Corstone-320.ld has a 32 KiB ITCM at the same address.
CORSTONE300_LAYOUT = [(0x10000000, 0x60000), (0x30000000, 0x10000), (0x70000000, 0x4000000)]


def _platform_regions(name: str) -> list[MemoryRegion]:
    from et_hil.boards.fvp.platform import load_platform

    return load_platform(name).regions()


def test_segments_are_read_from_the_program_headers(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    write_test_elf(path, "cortex-m55", segments=CORSTONE300_LAYOUT)
    info = read_elf(path)
    assert [(s.vaddr, s.paddr, s.memsz) for s in info.segments] == [
        (a, a, n) for a, n in CORSTONE300_LAYOUT
    ]


def test_a_corstone300_layout_fits_corstone300_and_qemu(tmp_path: Path) -> None:
    from et_hil.boards.qemu.kind import load_machine

    path = tmp_path / "runner.elf"
    write_test_elf(path, "cortex-m55", segments=CORSTONE300_LAYOUT)
    info = read_elf(path)
    check_memory_map(path, info, _platform_regions("corstone300-u55"), "corstone300", "300")
    check_memory_map(path, info, load_machine("mps3-an547").regions(), "qemu-m55", "an547")


def test_a_corstone300_layout_is_refused_by_corstone320(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    write_test_elf(path, "cortex-m55", segments=CORSTONE300_LAYOUT)
    with pytest.raises(ConfigError) as caught:
        check_memory_map(
            path, read_elf(path), _platform_regions("corstone320"), "corstone320", "Corstone-320"
        )
    message = str(caught.value)
    assert "board 'corstone320'" in message
    assert str(path) in message
    # 0x60000 bytes at 0x10000000 overflow the 32 KiB (0x8000) ITCM of Corstone-320.ld
    assert "segment of 0x60000 bytes runs at 0x10000000: overflows ITCM (0x10000000 + 0x8000)" in (
        message
    )


def test_a_segment_outside_every_memory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    write_test_elf(path, "cortex-m55", segments=[(0x50000000, 0x100)])
    problems = segments_outside(read_elf(path), _platform_regions("corstone300-u55"))
    assert problems == ["segment of 0x100 bytes runs at 0x50000000: is in no memory of the board"]


def test_an_unknown_memory_map_checks_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    write_test_elf(path, "cortex-m55", segments=[(0x50000000, 0x100)])
    assert segments_outside(read_elf(path), []) == []


# ---------------------------------------------------------------- berkeley_sizes

SHT_PROGBITS, SHT_NOBITS, SHT_ARM_EXIDX = 1, 8, 0x70000001
W, A, X, M, S, L = 0x1, 0x2, 0x4, 0x10, 0x20, 0x80  # SHF_WRITE, _ALLOC, _EXECINSTR, ...

# A runner's kinds of section, as arm-none-eabi-readelf -S lists them for the QEMU
# runner (sizes made small): (name, sh_type, sh_flags, size).
SECTIONS = [
    (".text", SHT_PROGBITS, A | X, 100),
    (".ARM.exidx", SHT_ARM_EXIDX, A | L, 8),
    (".rodata", SHT_PROGBITS, A, 20),
    (".noinit.ro", SHT_NOBITS, A, 12),  # read-only without bytes: text all the same
    (".data", SHT_PROGBITS, W | A, 12),
    (".copy.table", SHT_PROGBITS, W | A, 4),
    (".bss", SHT_NOBITS, W | A, 64),
    (".stack", SHT_NOBITS, W | A, 32),
    (".comment", SHT_PROGBITS, M | S, 30),  # not loaded: not counted
]
# By hand: text = .text 100 + .ARM.exidx 8 + .rodata 20 + .noinit.ro 12 = 140,
# data = .data 12 + .copy.table 4 = 16, bss = .bss 64 + .stack 32 = 96.
HAND_WORKED = {"text": 140, "data": 16, "bss": 96}


def _elf_with_sections(path: Path) -> Path:
    """An Arm ELF32 executable with :data:`SECTIONS` (bytes in the file for all but
    NOBITS) and a section-name table."""
    import struct

    names = b"\0" + b"".join(name.encode() + b"\0" for name, *_ in SECTIONS) + b".shstrtab\0"
    body, headers, address = b"", [b"\0" * 40], 0x10000000
    offset = 52
    for name, sh_type, flags, size in SECTIONS:
        name_at = names.index(name.encode() + b"\0")
        in_file = 0 if sh_type == SHT_NOBITS else size
        headers.append(
            struct.pack(
                "<10I", name_at, sh_type, flags, address if flags & A else 0,
                offset + len(body), size, 0, 0, 4, 0,
            )
        )  # fmt: skip
        body += b"\xaa" * in_file
        address += (size + 3) & ~3
    str_at = offset + len(body)
    body += names
    headers.append(
        struct.pack("<10I", names.index(b".shstrtab"), 3, 0, 0, str_at, len(names), 0, 0, 1, 0)
    )
    sh_off = (offset + len(body) + 3) & ~3
    header = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    header += struct.pack(
        "<HHIIIIIHHHHHH", 2, EM_ARM, 1, 0x10000000, 0, sh_off, 0x05000400, 52, 32, 0, 40,
        len(headers), len(headers) - 1,
    )  # fmt: skip
    data = header + body
    path.write_bytes(data + b"\0" * (sh_off - len(data)) + b"".join(headers))
    return path


def test_sizes_count_what_binutils_size_counts(tmp_path: Path) -> None:
    assert berkeley_sizes(_elf_with_sections(tmp_path / "runner.elf")) == HAND_WORKED


def test_sizes_of_a_file_that_is_no_elf_name_it(tmp_path: Path) -> None:
    path = tmp_path / "runner.elf"
    path.write_bytes(b"MZ not an ELF")
    with pytest.raises(ConfigError, match=f"ELF {path}: malformed"):
        berkeley_sizes(path)
    with pytest.raises(ConfigError, match="cannot read it"):
        berkeley_sizes(tmp_path / "missing.elf")


def _binutils_size(path: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-size", str(path)], capture_output=True, text=True, check=True
    ).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


@pytest.mark.skipif(shutil.which("arm-none-eabi-size") is None, reason="no arm-none-eabi-size")
def test_sizes_agree_with_arm_none_eabi_size(tmp_path: Path) -> None:
    """On the hand-made ELF, and on the QEMU runners in the build cache (the genuine
    runner: 29 sections, among them .bram.text, .ddr.rodata, .heap and .sram.bss)."""
    from et_hil.firmware.service import cached_runners
    from et_hil.programs.cache import default_cache_dir

    made = _elf_with_sections(tmp_path / "runner.elf")
    assert _binutils_size(made) == HAND_WORKED
    for runner in cached_runners(default_cache_dir())[:3]:
        assert berkeley_sizes(runner) == _binutils_size(runner), runner
