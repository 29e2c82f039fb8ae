"""Pre-flight fit check: does a program fit the memory its board's runner really
puts it in? Answered before any run, from the artifact's metadata and the board
file's ``[memory]`` (bytes).

Where the program lives depends on how the board runs it (upstream
``arm_executor_runner``, ``examples/arm/executor_runner/Corstone-3x0.ld``):

* ``fvp``: the semihosting runner reads the ``.pte`` and every input file into its
  semihosting file pool (``ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE``,
  ``file_pool_bytes``, 60 MiB unless the board says otherwise) and runs the program
  from there; the planned memory comes from the method allocator pool
  (``ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE``, ``method_pool_bytes``, 60 MiB
  unless the board says otherwise). Both pools are in DDR; flash holds nothing of
  the program, so ``flash_bytes`` and ``ddr_bytes`` are not checked.
* ``serial``, address mode: the program is written at ``pte_address`` and read
  there; ``program_bytes`` is the room at that address. A BundleIO ``.bpte`` also
  carries the inputs and the expected outputs.
* ``serial``, embedded mode: the program is linked into the firmware image
  (``network_model_sec``); checked against ``program_bytes``, else ``flash_bytes``.
* ``serial``: the planned memory against ``method_pool_bytes``, else ``ddr_bytes``
  (the pool lies in DDR, so DDR bounds it).
* ``host`` and ``tosa`` have no device memory: a ``[memory]`` their file gives
  stands for the device they stand in for (the program against ``program_bytes``,
  else ``flash_bytes``; the planned memory against ``method_pool_bytes``, else
  ``ddr_bytes``).
* every kind: Vela's SRAM use against ``sram_bytes`` (the NPU's SRAM).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from harness import dtypes
from harness.boards.spec import BoardSpec
from harness.build.artifact import Artifact

MIB = 1024 * 1024
# Upstream's defaults (arm_executor_runner.cpp), used when an FVP board gives no size.
FVP_FILE_POOL_BYTES = 60 * MIB
FVP_METHOD_POOL_BYTES = 60 * MIB
FILE_POOL = "the semihosting file pool (ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE)"
METHOD_POOL = "the method allocator pool (ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE)"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n} B ({n / MIB:.2f} MiB)" if n >= MIB else f"{n} B ({n / 1024:.1f} KiB)"


def _tensor_bytes(sizes: Sequence[int], dtype: str) -> int:
    count = 1
    for size in sizes:
        count *= int(size)
    return count * dtypes.itemsize(dtype)


def _io_bytes(metadata: Mapping[str, Any], which: str) -> list[int]:
    """Bytes of each tensor the program takes (``inputs``) or gives (``outputs``),
    from the program's own description; non-tensor values count 0."""
    io = (metadata.get("program_io") or {}).get(which)
    if io is not None:
        return [
            _tensor_bytes(v.get("sizes") or [], str(v.get("dtype")))
            if v.get("kind") == "tensor"
            else 0
            for v in io
        ]
    if which == "inputs":  # artifacts without program_io: the example inputs
        specs = metadata.get("input_specs") or []
        return [_tensor_bytes(s.get("shape") or [], str(s.get("dtype"))) for s in specs]
    return []


@dataclasses.dataclass(frozen=True)
class _Program:
    """Sizes of one program, in bytes: the ``.pte``, its planned memory, and the sum
    of its inputs and of its outputs."""

    pte: int
    planned: int
    inputs: int
    outputs: int


def input_bytes(artifact: Artifact) -> list[int]:
    """Bytes of each input file a runner reads (``i<k>.bin`` on the FVP)."""
    return _io_bytes(artifact.metadata, "inputs")


def fit_problems(
    artifact: Artifact, spec: BoardSpec, inputs: Sequence[int] | None = None
) -> list[str]:
    """What does not fit ``spec``'s memories, with the numbers, and which memory and
    why (see the module docstring); empty when the program fits.

    Args:
        artifact: the built program (sizes from its metadata).
        spec: the board; its kind and firmware mode say where the program lives.
        inputs: bytes of each input; default: from the program's metadata.
    """
    meta = artifact.metadata
    program = _Program(
        pte=int(meta.get("pte_bytes") or 0),
        planned=int(meta.get("planned_memory_bytes") or 0),
        inputs=sum(input_bytes(artifact) if inputs is None else inputs),
        outputs=sum(_io_bytes(meta, "outputs")),
    )
    memory = spec.memory
    problems = _sram_problems(meta, memory)
    if spec.kind == "fvp":
        problems += _fvp_problems(program, memory)
    elif spec.kind == "serial":
        problems += _serial_problems(program, spec)
    else:
        problems += _stand_in_problems(program, memory, spec.kind)
    return problems


def _sram_problems(meta: Mapping[str, Any], memory: Mapping[str, int]) -> list[str]:
    vela = (meta.get("vela") or {}).get("total") or {}
    used = int(vela.get("sram_bytes") or 0)
    if "sram_bytes" in memory and used > memory["sram_bytes"]:
        return [
            f"NPU SRAM: Vela plans {_size(used)}, the board has {_size(memory['sram_bytes'])} "
            "(sram_bytes, the NPU's SRAM)"
        ]
    return []


def _default_note(memory: Mapping[str, int], key: str) -> str:
    return "" if key in memory else f" (upstream's default; the board file sets it with {key})"


def _fvp_problems(program: _Program, memory: Mapping[str, int]) -> list[str]:
    problems = []
    pool = memory.get("file_pool_bytes", FVP_FILE_POOL_BYTES)
    if program.pte + program.inputs > pool:
        problems.append(
            f"program: .pte {_size(program.pte)} + inputs {_size(program.inputs)} exceed "
            f"{FILE_POOL} of {_size(pool)}{_default_note(memory, 'file_pool_bytes')}, "
            "where the FVP runner reads them"
        )
    pool = memory.get("method_pool_bytes", FVP_METHOD_POOL_BYTES)
    if program.planned > pool:
        problems.append(
            f"planned memory {_size(program.planned)} exceeds {METHOD_POOL} of {_size(pool)}"
            f"{_default_note(memory, 'method_pool_bytes')}, where the FVP runner allocates "
            "the method and its planned buffers"
        )
    return problems


def _serial_problems(program: _Program, spec: BoardSpec) -> list[str]:
    from harness.boards.serial.settings import serial_settings

    settings = serial_settings(spec)  # checked at load
    memory = spec.memory
    problems = []
    if settings.bundle_io:  # the .bpte holds the .pte, the inputs and the expected outputs
        size = program.pte + program.inputs + program.outputs
        what = (
            f".bpte of at least {_size(size)} (.pte {_size(program.pte)} + inputs "
            f"{_size(program.inputs)} + expected outputs {_size(program.outputs)})"
        )
    else:
        size, what = program.pte, f".pte {_size(program.pte)}"
    if settings.firmware_mode == "address":
        if "program_bytes" in memory and size > memory["program_bytes"]:
            problems.append(
                f"program: {what} does not fit the program_bytes {_size(memory['program_bytes'])}"
                f" at pte_address {settings.pte_address:#x}, where the address-mode firmware "
                "reads it (ET_MODEL_PTE_ADDR)"
            )
    else:
        key = "program_bytes" if "program_bytes" in memory else "flash_bytes"
        if key in memory and size > memory[key]:
            problems.append(
                f"program: {what} does not fit the {key} {_size(memory[key])}, where the "
                "embedded-mode firmware links it into its image (network_model_sec)"
            )
    return problems + _planned_problems(program, memory, "the runner")


def _planned_problems(program: _Program, memory: Mapping[str, int], runner: str) -> list[str]:
    """The planned memory against the method allocator pool, else against the DDR
    that holds it (a bound: the pool cannot be larger)."""
    if "method_pool_bytes" in memory:
        where = f"{METHOD_POOL} of {_size(memory['method_pool_bytes'])}"
        room = memory["method_pool_bytes"]
    elif "ddr_bytes" in memory:
        where = f"the ddr_bytes {_size(memory['ddr_bytes'])} that hold {METHOD_POOL}"
        room = memory["ddr_bytes"]
    else:
        return []
    if program.planned <= room:
        return []
    return [
        f"planned memory {_size(program.planned)} exceeds {where}, where {runner} allocates "
        "the method and its planned buffers"
    ]


def _stand_in_problems(program: _Program, memory: Mapping[str, int], kind: str) -> list[str]:
    """A host or tosa board runs in host memory; a ``[memory]`` it gives is the
    device it stands in for."""
    problems = []
    device = f"of the device this {kind} board stands in for"
    key = "program_bytes" if "program_bytes" in memory else "flash_bytes"
    if key in memory and program.pte > memory[key]:
        room = "flash" if key == "flash_bytes" else "the program's room"
        problems.append(
            f"program: .pte is {_size(program.pte)}, {room} is {_size(memory[key])} "
            f"({key} {device})"
        )
    return problems + _planned_problems(program, memory, f"the runtime {device}")


@dataclasses.dataclass(frozen=True)
class Use:
    """What a program takes of one memory its board's runner puts it in.

    Attributes:
        what: the memory, in words (``file pool``, ``NPU SRAM``).
        used: bytes the program needs there.
        limit: bytes the board has there (``None``: the board file gives none).
    """

    what: str
    used: int
    limit: int | None

    def text(self) -> str:
        """``48.0 KiB of 384.0 KiB NPU SRAM (13%)``, or the use alone without a limit."""
        if self.limit is None:
            return f"{self.what} {_short(self.used)}"
        share = f"{100 * self.used / self.limit:.0f}%" if self.limit else "-"
        return f"{self.what} {_short(self.used)} of {_short(self.limit)} ({share})"


def _short(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def memory_use(artifact: Artifact, spec: BoardSpec) -> list[Use]:
    """What the program takes of each memory :func:`fit_problems` checks on ``spec``,
    against the board's limit where it has one (for the ``--build-only`` line)."""
    meta = artifact.metadata
    memory = spec.memory
    pte = int(meta.get("pte_bytes") or 0)
    planned = int(meta.get("planned_memory_bytes") or 0)
    inputs = sum(input_bytes(artifact))
    uses: list[Use] = []
    if spec.kind == "fvp":
        uses += [
            Use("file pool", pte + inputs, memory.get("file_pool_bytes", FVP_FILE_POOL_BYTES)),
            Use("method pool", planned, memory.get("method_pool_bytes", FVP_METHOD_POOL_BYTES)),
        ]
    else:
        room = memory.get("program_bytes", memory.get("flash_bytes"))
        uses += [
            Use(".pte", pte, room),
            Use("planned", planned, memory.get("method_pool_bytes", memory.get("ddr_bytes"))),
        ]
    vela = (meta.get("vela") or {}).get("total") or {}
    if vela.get("sram_bytes") is not None:
        uses.append(Use("NPU SRAM", int(vela["sram_bytes"]), memory.get("sram_bytes")))
    return uses
