"""One line about a built program: what ``--et-build-only`` says of each test.

Partitions (and the backend of each), the operators left on the CPU, what the
program takes of each memory its board's runner puts it in against the board's
limits, and Vela's estimate for Ethos-U targets: what a build tells without a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from et_hil.boards.spec import BoardSpec
from et_hil.programs.artifact import Artifact
from et_hil.verdict.fit import memory_use

SHOWN_OPS = 4  # CPU operators named on the line; the rest counted


def _partitions(delegation: Mapping[str, Any]) -> str:
    parts = list(delegation.get("partitions") or [])
    if not parts:
        return "no partitions"
    backends = sorted({str(p.get("backend")) for p in parts})
    ops = sum(sum((p.get("ops") or {}).values()) for p in parts)
    inside = f", {ops} ops" if ops else ""
    return f"{len(parts)} partition(s) ({', '.join(backends)}{inside})"


def _cpu(delegation: Mapping[str, Any]) -> str:
    ops: dict[str, int] = dict(delegation.get("cpu_ops") or {})
    if not ops:
        return "nothing on the CPU"
    names = [f"{op} x{n}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1])]
    more = f" and {len(names) - SHOWN_OPS} more" if len(names) > SHOWN_OPS else ""
    return f"CPU ops: {', '.join(names[:SHOWN_OPS])}{more}"


def build_line(artifact: Artifact, spec: BoardSpec) -> str:
    """``2 partition(s) (EthosUBackend, 14 ops); CPU ops: ...; file pool 12.3 KiB of
    60.0 MiB (0%), ...; Vela 780 cycles (355 NPU), 3.9e-07 s``."""
    delegation = dict(artifact.metadata.get("delegation") or {})
    parts = [_partitions(delegation), _cpu(delegation)]
    parts.append(", ".join(use.text() for use in memory_use(artifact, spec)))
    vela = (artifact.metadata.get("vela") or {}).get("total") or {}
    if vela.get("cycles_total") is not None:
        parts.append(
            f"Vela {vela['cycles_total']} cycles ({vela.get('cycles_npu')} NPU), "
            f"{vela.get('inference_time_s'):.3g} s"
        )
    return "; ".join(parts)
