"""Where a serial board's firmware puts the program (:class:`SerialFirmwareMemory`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from et_hil.boards.memory import ProgramSizes, Use, device_uses, planned_problems, size_text

if TYPE_CHECKING:
    from et_hil.boards.board_spec import BoardSpec


@dataclasses.dataclass(frozen=True)
class SerialFirmwareMemory:
    """The UART runner's program, by firmware mode:

    * address mode: written at ``pte_address`` and read there; ``program_bytes`` is
      the room at that address. A BundleIO ``.bpte`` also carries the inputs and
      the expected outputs.
    * embedded mode: linked into the firmware image (``network_model_sec``); checked
      against ``program_bytes``, else ``flash_bytes``.
    * both: the planned memory against ``method_pool_bytes``, else ``ddr_bytes``
      (the pool lies in DDR, so DDR bounds it).
    """

    def problems(self, program: ProgramSizes, spec: BoardSpec) -> list[str]:
        """The program (or bundle) against its room, by firmware mode; the planned
        memory against the method pool."""
        from et_hil.boards.serial.settings import serial_settings

        settings = serial_settings(spec)  # checked at load
        memory = spec.memory
        problems = []
        if settings.bundle_io:  # the .bpte holds the .pte, the inputs and the expected outputs
            size = program.pte + program.inputs + program.outputs
            what = (
                f".bpte of at least {size_text(size)} (.pte {size_text(program.pte)} + inputs "
                f"{size_text(program.inputs)} + expected outputs {size_text(program.outputs)})"
            )
        else:
            size, what = program.pte, f".pte {size_text(program.pte)}"
        if settings.firmware_mode == "address":
            if "program_bytes" in memory and size > memory["program_bytes"]:
                problems.append(
                    f"program: {what} does not fit the program_bytes "
                    f"{size_text(memory['program_bytes'])} at pte_address "
                    f"{settings.pte_address:#x}, where the address-mode firmware reads it "
                    "(ET_MODEL_PTE_ADDR)"
                )
        else:
            key = "program_bytes" if "program_bytes" in memory else "flash_bytes"
            if key in memory and size > memory[key]:
                problems.append(
                    f"program: {what} does not fit the {key} {size_text(memory[key])}, where "
                    "the embedded-mode firmware links it into its image (network_model_sec)"
                )
        return problems + planned_problems(program, memory, "the runner")

    def uses(self, program: ProgramSizes, spec: BoardSpec) -> list[Use]:
        """The ``.pte`` against its room (else flash), the planned memory against the
        method pool (else DDR)."""
        return device_uses(program, spec.memory)
