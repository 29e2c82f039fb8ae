"""Where a board's runner puts a program, and what fits there: memory layouts.

Each board kind declares its layout (:attr:`et_hil.boards.kind.BoardKind.memory_layout`);
the fit check (:mod:`et_hil.verdict.fit`) asks it, and names no kind. A layout
judges a program's sizes (:class:`ProgramSizes`) against the board file's
``[memory]`` (bytes) and says, for ``--et-build-only``, what the program takes of each
memory (:class:`Use`). The layouts of upstream's ``arm_executor_runner``
(``examples/arm/executor_runner``):

* :class:`SemihostingPools` (the FVP and QEMU boards): the semihosting runner reads
  the ``.pte`` and every input file into its file pool
  (``ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE``, ``file_pool_bytes``,
  60 MiB unless the board says otherwise) and runs the program from there; the
  planned memory comes from the method allocator pool
  (``ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE``, ``method_pool_bytes``, 60 MiB
  unless the board says otherwise). Both pools are in DDR; flash holds nothing of
  the program, so ``flash_bytes`` and ``ddr_bytes`` are not checked.
* :class:`StandIn` (host, tosa, and a kind that declares none): the program runs in
  host memory; a ``[memory]`` the file gives stands for the device the board stands
  in for (the program against ``program_bytes``, else ``flash_bytes``; the planned
  memory against ``method_pool_bytes``, else ``ddr_bytes``).
* the serial boards' layout depends on their firmware mode
  (:mod:`et_hil.boards.serial.memory`).

Every kind's NPU SRAM (Vela's plan against ``sram_bytes``) is checked by the fit
check itself: it belongs to the program, not to where the runner puts it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from et_hil.boards.board_spec import BoardSpec

MIB = 1024 * 1024
# Upstream's defaults (arm_executor_runner.cpp), used when a board gives no size.
DEFAULT_FILE_POOL_BYTES = 60 * MIB
DEFAULT_METHOD_POOL_BYTES = 60 * MIB
FILE_POOL = "the semihosting file pool (ET_ARM_BAREMETAL_SEMIHOSTING_FILE_ALLOCATOR_POOL_SIZE)"
METHOD_POOL = "the method allocator pool (ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE)"


@dataclasses.dataclass(frozen=True)
class ProgramSizes:
    """Sizes of one program, in bytes: the ``.pte``, its planned memory, and the sum
    of its inputs and of its outputs."""

    pte: int
    planned: int
    inputs: int
    outputs: int


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
            return f"{self.what} {short_size(self.used)}"
        share = f"{100 * self.used / self.limit:.0f}%" if self.limit else "-"
        return f"{self.what} {short_size(self.used)} of {short_size(self.limit)} ({share})"


class MemoryLayout(Protocol):
    """Where a kind's runner puts a program (see the module doc)."""

    def problems(self, program: ProgramSizes, spec: BoardSpec) -> list[str]:
        """What does not fit ``spec``'s ``[memory]``, one sentence each with the numbers,
        which memory and why; empty when the program fits."""
        ...

    def uses(self, program: ProgramSizes, spec: BoardSpec) -> list[Use]:
        """What the program takes of each memory :meth:`problems` checks."""
        ...


def size_text(n: int) -> str:
    """``1048576 B (1.00 MiB)``: exact bytes, and a size a person reads."""
    if n < 1024:
        return f"{n} B"
    return f"{n} B ({n / MIB:.2f} MiB)" if n >= MIB else f"{n} B ({n / 1024:.1f} KiB)"


def short_size(n: int) -> str:
    """``1.0 MiB``, ``3.0 KiB``, ``40 B``."""
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def planned_problems(program: ProgramSizes, memory: Mapping[str, int], runner: str) -> list[str]:
    """The planned memory against the method allocator pool, else against the DDR
    that holds it (a bound: the pool cannot be larger)."""
    if "method_pool_bytes" in memory:
        where = f"{METHOD_POOL} of {size_text(memory['method_pool_bytes'])}"
        room = memory["method_pool_bytes"]
    elif "ddr_bytes" in memory:
        where = f"the ddr_bytes {size_text(memory['ddr_bytes'])} that hold {METHOD_POOL}"
        room = memory["ddr_bytes"]
    else:
        return []
    if program.planned <= room:
        return []
    return [
        f"planned memory {size_text(program.planned)} exceeds {where}, where {runner} "
        "allocates the method and its planned buffers"
    ]


def device_uses(program: ProgramSizes, memory: Mapping[str, int]) -> list[Use]:
    """The ``.pte`` against the program's room (else flash) and the planned memory
    against the method pool (else DDR): a device that holds the program itself."""
    return [
        Use(".pte", program.pte, memory.get("program_bytes", memory.get("flash_bytes"))),
        Use("planned", program.planned, memory.get("method_pool_bytes", memory.get("ddr_bytes"))),
    ]


@dataclasses.dataclass(frozen=True)
class SemihostingPools:
    """The semihosting runner's two pools in DDR (see the module doc).

    Attributes:
        runner: how a message names the runner (``the FVP runner``).
    """

    runner: str

    def problems(self, program: ProgramSizes, spec: BoardSpec) -> list[str]:
        """The ``.pte`` and inputs against the file pool, the planned memory against
        the method pool; upstream's 60 MiB where the board file gives no size."""
        memory = spec.memory
        problems = []
        pool = memory.get("file_pool_bytes", DEFAULT_FILE_POOL_BYTES)
        if program.pte + program.inputs > pool:
            problems.append(
                f"program: .pte {size_text(program.pte)} + inputs {size_text(program.inputs)} "
                f"exceed {FILE_POOL} of {size_text(pool)}"
                f"{_default_note(memory, 'file_pool_bytes')}, where {self.runner} reads them"
            )
        pool = memory.get("method_pool_bytes", DEFAULT_METHOD_POOL_BYTES)
        if program.planned > pool:
            problems.append(
                f"planned memory {size_text(program.planned)} exceeds {METHOD_POOL} of "
                f"{size_text(pool)}{_default_note(memory, 'method_pool_bytes')}, where "
                f"{self.runner} allocates the method and its planned buffers"
            )
        return problems

    def uses(self, program: ProgramSizes, spec: BoardSpec) -> list[Use]:
        """The file pool's and the method pool's share."""
        memory = spec.memory
        return [
            Use(
                "file pool",
                program.pte + program.inputs,
                memory.get("file_pool_bytes", DEFAULT_FILE_POOL_BYTES),
            ),
            Use(
                "method pool",
                program.planned,
                memory.get("method_pool_bytes", DEFAULT_METHOD_POOL_BYTES),
            ),
        ]


@dataclasses.dataclass(frozen=True)
class StandIn:
    """A board that runs in host memory; a ``[memory]`` it gives is the device it
    stands in for (see the module doc)."""

    def problems(self, program: ProgramSizes, spec: BoardSpec) -> list[str]:
        """The ``.pte`` against the device's program room or flash, the planned memory
        against its method pool or DDR, when the board file gives them."""
        memory = spec.memory
        problems = []
        device = f"of the device this {spec.kind} board stands in for"
        key = "program_bytes" if "program_bytes" in memory else "flash_bytes"
        if key in memory and program.pte > memory[key]:
            room = "flash" if key == "flash_bytes" else "the program's room"
            problems.append(
                f"program: .pte is {size_text(program.pte)}, {room} is "
                f"{size_text(memory[key])} ({key} {device})"
            )
        return problems + planned_problems(program, memory, f"the runtime {device}")

    def uses(self, program: ProgramSizes, spec: BoardSpec) -> list[Use]:
        """The ``.pte`` and the planned memory against the device's limits."""
        return device_uses(program, spec.memory)


def _default_note(memory: Mapping[str, int], key: str) -> str:
    return "" if key in memory else f" (upstream's default; the board file sets it with {key})"
