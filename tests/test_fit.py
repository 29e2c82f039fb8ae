"""Tests of et_hil.verdict.fit: each runner mode's program is checked against the memory
that mode really puts it in, and the message names that memory and why.

Artifacts are built by hand (no model, no build): only their metadata counts.
Sizes are chosen so the arithmetic can be checked by eye; each is worked out in
a comment.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

from et_hil.boards.spec import BoardSpec, builtin_board_dir, load_board_file
from et_hil.programs.artifact import Artifact
from et_hil.verdict.fit import fit_problems, input_bytes, memory_use

KIB = 1024
MIB = 1024 * KIB

# One float32 input of [1, 3, 16, 16]: 1*3*16*16 = 768 elements * 4 B = 3072 B = 3.0 KiB.
IMAGE_INPUT = {
    "kind": "tensor",
    "dtype": "float32",
    "sizes": [1, 3, 16, 16],
    "dim_order": [0, 1, 2, 3],
}
# One float32 output of [1, 10]: 10 * 4 B = 40 B.
LOGITS_OUTPUT = {"kind": "tensor", "dtype": "float32", "sizes": [1, 10], "dim_order": [0, 1]}


def _artifact(
    tmp_path: Path,
    *,
    pte: int,
    planned: int = 0,
    vela_sram: int | None = None,
    inputs: list[dict[str, Any]] | None = None,
) -> Artifact:
    metadata: dict[str, Any] = {
        "model": "m",
        "target": "ethos-u55-128",
        "pte_bytes": pte,
        "planned_memory_bytes": planned,
        "program_io": {
            "inputs": [IMAGE_INPUT] if inputs is None else inputs,
            "outputs": [LOGITS_OUTPUT],
        },
        "input_specs": [{"shape": [1, 3, 16, 16], "dtype": "float32"}],
    }
    if vela_sram is not None:
        metadata["vela"] = {"total": {"sram_bytes": vela_sram}, "partitions": []}
    return Artifact(key="k" * 64, folder=tmp_path, metadata=metadata, cache_hit=False, obtain_s=0.0)


def _fvp(**memory: int) -> BoardSpec:
    return BoardSpec(
        name="fvp-board",
        kind="fvp",
        target="ethos-u55-128",
        memory=memory,
        sections={"fvp": {"platform": "corstone300-u55"}},
    )


def _serial(firmware: dict[str, Any], *, bundle_io: bool = False, **memory: int) -> BoardSpec:
    serial = {
        "port": "/dev/ttyACM0",
        "bundle_io": bundle_io,
        "firmware": firmware,
        "flash": {"method": "command", "command": ["my-flash", "{image}", "{address}"]},
    }
    return BoardSpec(
        name="serial-board",
        kind="serial",
        target="ethos-u55-128",
        memory=memory,
        sections={"serial": serial},
        path=Path("/lab/serial-board.toml"),
    )


ADDRESS = {"mode": "address", "pte_address": 0x70000000}
EMBEDDED = {"mode": "embedded", "build": ["b", "{program}", "{output}"], "image_address": 0}


# ---------------------------------------------------------------- input sizes


def test_input_bytes_come_from_the_program() -> None:
    # float32 [1,3,16,16] = 3072 B; int8 [2,5] = 10 B; a non-tensor input reads 0 B.
    artifact = _artifact(
        Path("."),
        pte=0,
        inputs=[
            IMAGE_INPUT,
            {"kind": "tensor", "dtype": "int8", "sizes": [2, 5], "dim_order": [0, 1]},
            {"kind": "Int"},
        ],
    )
    assert input_bytes(artifact) == [3072, 10, 0]


def test_input_bytes_fall_back_to_the_example_inputs(tmp_path: Path) -> None:
    # An older artifact without program_io: input_specs' float32 [1,3,16,16] = 3072 B.
    artifact = _artifact(tmp_path, pte=0)
    metadata = {k: v for k, v in artifact.metadata.items() if k != "program_io"}
    old = Artifact(key="k", folder=tmp_path, metadata=metadata, cache_hit=False, obtain_s=0.0)
    assert input_bytes(old) == [3072]


# ---------------------------------------------------------------- FVP: semihosting


def test_fvp_program_and_inputs_against_the_file_pool(tmp_path: Path) -> None:
    # .pte 70 MiB = 73400320 B, + inputs 3072 B, against the default 60 MiB = 62914560 B pool.
    [problem] = fit_problems(_artifact(tmp_path, pte=70 * MIB), _fvp())
    assert problem == (
        "program: .pte 73400320 B (70.00 MiB) + inputs 3072 B (3.0 KiB) exceed the semihosting "
        "file pool (ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE) of 62914560 B "
        "(60.00 MiB) (upstream's default; the board file sets it with file_pool_bytes), "
        "where the FVP runner reads them"
    )


def test_fvp_inputs_count_in_the_file_pool(tmp_path: Path) -> None:
    # The pool is 1 MiB = 1048576 B. A .pte of 1048576 - 3072 = 1045504 B plus the 3072 B
    # input fills it exactly: it fits. One byte more and only the inputs make it overflow.
    spec = _fvp(file_pool_bytes=MIB)
    assert fit_problems(_artifact(tmp_path, pte=1045504), spec) == []
    [problem] = fit_problems(_artifact(tmp_path, pte=1045505), spec)
    assert problem.startswith(
        "program: .pte 1045505 B (1021.0 KiB) + inputs 3072 B (3.0 KiB) exceed the semihosting "
        "file pool (ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE) of 1048576 B (1.00 MiB),"
    )
    assert "upstream's default" not in problem  # the board gave the size


def test_fvp_ignores_flash_and_ddr(tmp_path: Path) -> None:
    # A 10 MiB .pte on a board with 8 MiB of QSPI flash and a (silly) 1 MiB DDR: the
    # semihosting runner never puts the program in flash, and the pools are fixed at link
    # time, so neither is checked. 10 MiB + 3 KiB is well within the 60 MiB file pool.
    spec = _fvp(flash_bytes=8 * MIB, ddr_bytes=MIB)
    assert fit_problems(_artifact(tmp_path, pte=10 * MIB, planned=2 * MIB), spec) == []


def test_fvp_planned_memory_against_the_method_pool(tmp_path: Path) -> None:
    # planned 61 MiB = 63963136 B > default 60 MiB = 62914560 B.
    [problem] = fit_problems(_artifact(tmp_path, pte=KIB, planned=61 * MIB), _fvp())
    assert problem == (
        "planned memory 63963136 B (61.00 MiB) exceeds the method allocator pool "
        "(ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE) of 62914560 B (60.00 MiB) (upstream's "
        "default; the board file sets it with method_pool_bytes), where the FVP runner "
        "allocates the method and its planned buffers"
    )
    # A runner built with an 80 MiB pool, as the board file says: 61 MiB fits.
    assert (
        fit_problems(
            _artifact(tmp_path, pte=KIB, planned=61 * MIB), _fvp(method_pool_bytes=80 * MIB)
        )
        == []
    )


def test_builtin_fvp_board_uses_its_pools(tmp_path: Path) -> None:
    # corstone320: file pool 60 MiB, method pool 80 MiB (its runner build), SRAM 4 MiB.
    spec = load_board_file(builtin_board_dir() / "corstone320.toml")
    # .pte 50 MiB + 3 KiB inputs < 60 MiB; planned 70 MiB < 80 MiB; Vela SRAM 3 MiB < 4 MiB.
    fits = _artifact(tmp_path, pte=50 * MIB, planned=70 * MIB, vela_sram=3 * MIB)
    assert fit_problems(fits, spec) == []
    # .pte 60 MiB + 3 KiB > 60 MiB: the file pool, named without the "default" note.
    [problem] = fit_problems(_artifact(tmp_path, pte=60 * MIB), spec)
    assert "of 62914560 B (60.00 MiB), where the FVP runner reads them" in problem


def test_builtin_qemu_board_checks_its_file_pool(tmp_path: Path) -> None:
    """qemu-m55 runs the same semihosting runner as the FVPs: its board file's pools
    are where the program lives, not a device it stands in for (an earlier fit check
    took QEMU for a host stand-in and never read file_pool_bytes)."""
    spec = load_board_file(builtin_board_dir() / "qemu-m55.toml")
    # file pool and method pool 60 MiB each (upstream's defaults, written in the file).
    # .pte 50 MiB + 3 KiB inputs < 60 MiB; planned 10 MiB < 60 MiB.
    assert fit_problems(_artifact(tmp_path, pte=50 * MIB, planned=10 * MIB), spec) == []
    # .pte 60 MiB + 3 KiB = 62917632 B > 62914560 B; planned 61 MiB > 60 MiB.
    file_pool, method_pool = fit_problems(_artifact(tmp_path, pte=60 * MIB, planned=61 * MIB), spec)
    assert file_pool == (
        "program: .pte 62914560 B (60.00 MiB) + inputs 3072 B (3.0 KiB) exceed the semihosting "
        "file pool (ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE) of 62914560 B "
        "(60.00 MiB), where the QEMU runner reads them"
    )
    assert method_pool.startswith("planned memory 63963136 B (61.00 MiB) exceeds the method")
    assert [use.what for use in memory_use(_artifact(tmp_path, pte=MIB), spec)] == [
        "file pool",
        "method pool",
    ]


def test_a_kind_of_ones_own_declares_where_its_runner_puts_the_program(tmp_path: Path) -> None:
    """The fit check names no kind: it asks the kind's memory layout. A third-party kind
    without one is a stand-in for the device its [memory] describes."""
    from et_hil.boards import registry
    from et_hil.boards.kind import BoardKind
    from et_hil.boards.memory import SemihostingPools

    registry.register(
        [
            BoardKind(
                name="toy-semihosting", board=object, summary="a toy", fidelities={"toy": "-"},
                memory_layout=SemihostingPools("the toy runner"),
            ),
            BoardKind(name="toy-device", board=object, summary="a toy", fidelities={"toy": "-"}),
        ]
    )  # fmt: skip
    try:
        big = _artifact(tmp_path, pte=2 * MIB)
        semihosting = BoardSpec(
            name="t1", kind="toy-semihosting", target="portable",
            memory={"file_pool_bytes": MIB},
        )  # fmt: skip
        [problem] = fit_problems(big, semihosting)
        assert problem.endswith("of 1048576 B (1.00 MiB), where the toy runner reads them")
        device = BoardSpec(
            name="t2", kind="toy-device", target="portable", memory={"flash_bytes": MIB}
        )
        [problem] = fit_problems(big, device)
        assert "(flash_bytes of the device this toy-device board stands in for)" in problem
    finally:
        registry.unregister("toy-semihosting")
        registry.unregister("toy-device")


def test_vela_sram_against_sram_bytes(tmp_path: Path) -> None:
    # Vela plans 3 MiB = 3145728 B of SRAM; the board has 2 MiB = 2097152 B.
    [problem] = fit_problems(
        _artifact(tmp_path, pte=KIB, vela_sram=3 * MIB), _fvp(sram_bytes=2 * MIB)
    )
    assert problem == (
        "NPU SRAM: Vela plans 3145728 B (3.00 MiB), the board has 2097152 B (2.00 MiB) "
        "(sram_bytes, the NPU's SRAM)"
    )
    # Exactly 2 MiB fits.
    assert (
        fit_problems(_artifact(tmp_path, pte=KIB, vela_sram=2 * MIB), _fvp(sram_bytes=2 * MIB))
        == []
    )


# ---------------------------------------------------------------- serial: address mode


def test_address_mode_program_against_program_bytes(tmp_path: Path) -> None:
    # .pte 1.5 MiB = 1572864 B at 0x70000000, where the board gives 1 MiB = 1048576 B.
    spec = _serial(ADDRESS, program_bytes=MIB)
    [problem] = fit_problems(_artifact(tmp_path, pte=MIB + MIB // 2), spec)
    assert problem == (
        "program: .pte 1572864 B (1.50 MiB) does not fit the program_bytes 1048576 B (1.00 MiB) "
        "at pte_address 0x70000000, where the address-mode firmware reads it (ET_MODEL_PTE_ADDR)"
    )
    assert fit_problems(_artifact(tmp_path, pte=MIB), spec) == []  # exactly full: fits


def test_address_mode_ignores_flash(tmp_path: Path) -> None:
    # The program is written at pte_address, not into the firmware's flash: a 1.5 MiB .pte
    # on a board with 1 MiB of flash and no program_bytes is not checked.
    assert (
        fit_problems(_artifact(tmp_path, pte=MIB + MIB // 2), _serial(ADDRESS, flash_bytes=MIB))
        == []
    )


def test_address_mode_bundle_carries_inputs_and_outputs(tmp_path: Path) -> None:
    # With BundleIO the .bpte holds the .pte, the 3072 B input and the 40 B expected output.
    # .pte 1048576 - 3072 = 1045504 B: .pte + inputs = 1 MiB exactly, + 40 B outputs =
    # 1048616 B > 1 MiB. Without BundleIO the same .pte (1045504 B) fits.
    artifact = _artifact(tmp_path, pte=1045504)
    assert fit_problems(artifact, _serial(ADDRESS, program_bytes=MIB)) == []
    [problem] = fit_problems(artifact, _serial(ADDRESS, bundle_io=True, program_bytes=MIB))
    assert problem.startswith(
        "program: .bpte of at least 1048616 B (1.00 MiB) (.pte 1045504 B (1021.0 KiB) + inputs "
        "3072 B (3.0 KiB) + expected outputs 40 B) does not fit the program_bytes "
        "1048576 B (1.00 MiB) at pte_address 0x70000000"
    )


# ---------------------------------------------------------------- serial: embedded mode


def test_embedded_mode_against_flash_bytes(tmp_path: Path) -> None:
    # Alif E7's MRAM: flash_bytes = 5767168 B (5.50 MiB); the .pte is 6 MiB = 6291456 B.
    spec = _serial(EMBEDDED, flash_bytes=5767168)
    [problem] = fit_problems(_artifact(tmp_path, pte=6 * MIB), spec)
    assert problem == (
        "program: .pte 6291456 B (6.00 MiB) does not fit the flash_bytes 5767168 B (5.50 MiB), "
        "where the embedded-mode firmware links it into its image (network_model_sec)"
    )


def test_embedded_mode_prefers_program_bytes(tmp_path: Path) -> None:
    # program_bytes (4 MiB, the section the linker script gives network_model_sec) is the
    # tighter, truer room: a 4.5 MiB .pte fits the 5.5 MiB flash but not the 4 MiB section.
    spec = _serial(EMBEDDED, flash_bytes=5767168, program_bytes=4 * MIB)
    [problem] = fit_problems(_artifact(tmp_path, pte=4 * MIB + MIB // 2), spec)
    assert "does not fit the program_bytes 4194304 B (4.00 MiB)" in problem


def test_serial_planned_memory_against_method_pool_else_ddr(tmp_path: Path) -> None:
    # planned 3 MiB = 3145728 B; a 2 MiB method pool is too small; 256 MiB DDR is not.
    artifact = _artifact(tmp_path, pte=KIB, planned=3 * MIB)
    [problem] = fit_problems(
        artifact, _serial(ADDRESS, method_pool_bytes=2 * MIB, ddr_bytes=256 * MIB)
    )
    assert problem == (
        "planned memory 3145728 B (3.00 MiB) exceeds the method allocator pool "
        "(ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE) of 2097152 B (2.00 MiB), where the "
        "runner allocates the method and its planned buffers"
    )
    # No method_pool_bytes: DDR bounds the pool. 3 MiB > 2 MiB DDR; 3 MiB < 256 MiB DDR.
    [problem] = fit_problems(artifact, _serial(ADDRESS, ddr_bytes=2 * MIB))
    assert problem.startswith(
        "planned memory 3145728 B (3.00 MiB) exceeds the ddr_bytes 2097152 B (2.00 MiB) that "
        "hold the method allocator pool"
    )
    assert fit_problems(artifact, _serial(ADDRESS, ddr_bytes=256 * MIB)) == []
    # No FVP default on real boards: without sizes nothing is checked.
    assert (
        fit_problems(_artifact(tmp_path, pte=100 * MIB, planned=100 * MIB), _serial(ADDRESS)) == []
    )


# ---------------------------------------------------------------- host and tosa


@pytest.mark.parametrize("kind", ["host", "tosa"])
def test_host_and_tosa_have_no_device_memory(tmp_path: Path, kind: str) -> None:
    # Without a [memory] table nothing is checked, however large: no pool defaults here.
    spec = BoardSpec(name="b", kind=kind, target="portable")
    assert fit_problems(_artifact(tmp_path, pte=500 * MIB, planned=500 * MIB), spec) == []


def test_host_memory_stands_for_a_device(tmp_path: Path) -> None:
    # A host board that declares 4096 B of flash (a small device it stands in for):
    # a 5000 B .pte does not fit; the message keeps the "flash is" wording.
    spec = BoardSpec(
        name="small-host", kind="host", target="portable", memory={"flash_bytes": 4096}
    )
    [problem] = fit_problems(_artifact(tmp_path, pte=5000), spec)
    assert problem == (
        "program: .pte is 5000 B (4.9 KiB), flash is 4096 B (4.0 KiB) "
        "(flash_bytes of the device this host board stands in for)"
    )


# ---------------------------------------------------------------- preflight


def test_preflight_names_model_board_and_memory(tmp_path: Path) -> None:
    from et_hil.errors import FitError
    from et_hil.verdict.check import preflight

    board: Any = types.SimpleNamespace(spec=_fvp())
    # .pte 70 MiB and planned 61 MiB: both pools overflow, both named in one error.
    artifact = _artifact(tmp_path, pte=70 * MIB, planned=61 * MIB)
    with pytest.raises(FitError) as info:
        preflight(artifact, board, require_full_delegation=False)
    message = str(info.value)
    assert message.startswith(
        "model 'm' does not fit board 'fvp-board' (checked before running): program: .pte"
    )
    assert re.search(r"semihosting file pool .*; planned memory .* method allocator pool", message)
    preflight(_artifact(tmp_path, pte=MIB), board, require_full_delegation=False)  # fits
