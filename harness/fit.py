"""Pre-flight fit check: does a program fit the board's memories? Answered before any run."""

from __future__ import annotations

from collections.abc import Mapping

from harness.artifact import Artifact

MIB = 1024 * 1024


def _size(n: int) -> str:
    return f"{n} B ({n / MIB:.2f} MiB)" if n >= MIB else f"{n} B ({n / 1024:.1f} KiB)"


def fit_problems(artifact: Artifact, memory: Mapping[str, int]) -> list[str]:
    """What does not fit, with the numbers; empty when the program fits.

    Checked where the board file gives the capacity:

    * the NPU's SRAM use from Vela against ``sram_bytes``;
    * the ``.pte`` against ``flash_bytes`` (where firmware keeps the program);
    * the ``.pte`` plus the planned activation memory against ``ddr_bytes``.
    """
    problems = []
    meta = artifact.metadata
    pte = int(meta.get("pte_bytes") or 0)
    planned = int(meta.get("planned_memory_bytes") or 0)
    vela = (meta.get("vela") or {}).get("total") or {}
    sram_used = int(vela.get("sram_bytes") or 0)
    if "sram_bytes" in memory and sram_used > memory["sram_bytes"]:
        problems.append(
            f"NPU SRAM: Vela plans {_size(sram_used)}, the board has {_size(memory['sram_bytes'])}"
        )
    if "flash_bytes" in memory and pte > memory["flash_bytes"]:
        problems.append(f"program: .pte is {_size(pte)}, flash is {_size(memory['flash_bytes'])}")
    if "ddr_bytes" in memory and pte + planned > memory["ddr_bytes"]:
        problems.append(
            f"DDR: .pte {_size(pte)} + planned memory {_size(planned)} "
            f"exceed {_size(memory['ddr_bytes'])}"
        )
    return problems
