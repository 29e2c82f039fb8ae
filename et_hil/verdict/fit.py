"""Pre-flight fit check: does a program fit the memory its board's runner really
puts it in? Answered before any run, from the artifact's metadata and the board
file's ``[memory]`` (bytes).

Where the program lives is the board kind's to say: its memory layout
(:attr:`et_hil.boards.kind.BoardKind.memory_layout`, :mod:`et_hil.boards.memory`:
the semihosting runner's two pools on the FVP and QEMU boards, the serial
firmware's program room by mode, the device a host or tosa board stands in for).
This module names no kind: it measures the program and asks the layout. Every
kind's NPU SRAM (Vela's plan against ``sram_bytes``) is checked here, for the
program's own sake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from et_hil import dtypes
from et_hil.boards import registry
from et_hil.boards.memory import ProgramSizes, Use, size_text
from et_hil.boards.spec import BoardSpec
from et_hil.programs.artifact import Artifact

__all__ = ["Use", "fit_problems", "input_bytes", "memory_use", "program_sizes"]


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


def input_bytes(artifact: Artifact) -> list[int]:
    """Bytes of each input file a runner reads (``i<k>.bin`` on the FVP)."""
    return _io_bytes(artifact.metadata, "inputs")


def program_sizes(artifact: Artifact, inputs: Sequence[int] | None = None) -> ProgramSizes:
    """The program's sizes from its metadata (``inputs``: bytes of each input;
    default: from the program's own description)."""
    meta = artifact.metadata
    return ProgramSizes(
        pte=int(meta.get("pte_bytes") or 0),
        planned=int(meta.get("planned_memory_bytes") or 0),
        inputs=sum(input_bytes(artifact) if inputs is None else inputs),
        outputs=sum(_io_bytes(meta, "outputs")),
    )


def fit_problems(
    artifact: Artifact, spec: BoardSpec, inputs: Sequence[int] | None = None
) -> list[str]:
    """What does not fit ``spec``'s memories, with the numbers, and which memory and
    why (see the module docstring); empty when the program fits.

    Args:
        artifact: the built program (sizes from its metadata).
        spec: the board; its kind's memory layout says where the program lives.
        inputs: bytes of each input; default: from the program's metadata.
    """
    layout = registry.get(spec.kind).memory_layout
    program = program_sizes(artifact, inputs)
    return _sram_problems(artifact.metadata, spec.memory) + layout.problems(program, spec)


def _sram_problems(meta: Mapping[str, Any], memory: Mapping[str, int]) -> list[str]:
    vela = (meta.get("vela") or {}).get("total") or {}
    used = int(vela.get("sram_bytes") or 0)
    if "sram_bytes" in memory and used > memory["sram_bytes"]:
        return [
            f"NPU SRAM: Vela plans {size_text(used)}, the board has "
            f"{size_text(memory['sram_bytes'])} (sram_bytes, the NPU's SRAM)"
        ]
    return []


def memory_use(artifact: Artifact, spec: BoardSpec) -> list[Use]:
    """What the program takes of each memory :func:`fit_problems` checks on ``spec``,
    against the board's limit where it has one (for the ``--et-build-only`` line)."""
    layout = registry.get(spec.kind).memory_layout
    uses = layout.uses(program_sizes(artifact), spec)
    vela = (artifact.metadata.get("vela") or {}).get("total") or {}
    if vela.get("sram_bytes") is not None:
        uses.append(Use("NPU SRAM", int(vela["sram_bytes"]), spec.memory.get("sram_bytes")))
    return uses
