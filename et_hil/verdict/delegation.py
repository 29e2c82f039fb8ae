"""What a test states must be delegated and what may stay on the CPU.

Upstream's backend test pipelines check counts (``check_count`` of delegate
calls, ``check_not`` of ops that must be gone); ``et_full_delegation`` is
all-or-nothing. A :class:`DelegationSpec` says it per test::

    @pytest.mark.et_delegation(partitions=1, delegated=["aten.convolution"],
                               cpu=["aten.mean"])

* ``partitions``: how many delegated subgraphs the program has, exactly;
* ``delegated``: ops that must run in a delegate (with a count: at least that
  many there), and none of them left on the CPU;
* ``cpu``: the only ops that may stay on the CPU besides the boundary
  quantize/dequantize (with a count: at most that many); ``None`` sets no limit.

An op is named as the partition report names it (``aten.convolution.default``);
a name without its overload (``aten.convolution``) matches every overload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


def _counts(value: Any, where: str, field: str) -> dict[str, int | None]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence):
        items = [(name, None) for name in value]
    else:
        raise ValueError(f"{where}: {field} takes op names, or a dict of op name to count")
    counts: dict[str, int | None] = {}
    for name, count in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: {field}: op names are strings, got {name!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError(f"{where}: {field}: the count of {name!r} must be an int")
        counts[name.replace("::", ".")] = count
    return counts


def _matches(pattern: str, op: str) -> bool:
    return op == pattern or op.startswith(pattern + ".")


@dataclasses.dataclass(frozen=True)
class DelegationSpec:
    """What must be delegated and what may stay on the CPU (see the module docstring)."""

    partitions: int | None = None
    delegated: Mapping[str, int | None] = dataclasses.field(default_factory=dict)
    cpu: Mapping[str, int | None] | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> DelegationSpec:
        """From marker keywords or a dict, naming ``where`` in errors.

        Raises:
            ValueError: an unknown key or a value of the wrong kind.
        """
        unknown = sorted(set(data) - {"partitions", "delegated", "cpu"})
        if unknown:
            raise ValueError(
                f"{where}: et_delegation takes partitions, delegated and cpu; got {unknown}"
            )
        partitions = data.get("partitions")
        if partitions is not None and (
            isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 0
        ):
            raise ValueError(f"{where}: partitions must be a count, got {partitions!r}")
        cpu = data.get("cpu")
        return cls(
            partitions=partitions,
            delegated=_counts(data.get("delegated"), where, "delegated"),
            cpu=None if cpu is None else _counts(cpu, where, "cpu"),
        )

    def problems(self, delegation: Mapping[str, Any]) -> list[str]:
        """What the partition report (an artifact's ``delegation``) breaks, one line each."""
        found: list[str] = []
        parts = delegation.get("partitions") or []
        if self.partitions is not None and len(parts) != self.partitions:
            found.append(f"{len(parts)} delegated partition(s), {self.partitions} required")
        inside: dict[str, int] = {}
        for part in parts:
            for op, n in (part.get("ops") or {}).items():
                inside[op] = inside.get(op, 0) + int(n)
        fallback: Mapping[str, int] = delegation.get("cpu_fallback") or {}
        for pattern, least in self.delegated.items():
            delegated = sum(n for op, n in inside.items() if _matches(pattern, op))
            left = {op: n for op, n in fallback.items() if _matches(pattern, op)}
            if left:
                found.append(f"{pattern} must be delegated; on the CPU: {_listed(left)}")
            elif delegated == 0:
                found.append(f"{pattern} must be delegated; no partition holds it")
            elif least is not None and delegated < least:
                found.append(f"{pattern}: {delegated} delegated, at least {least} required")
        if self.cpu is not None:
            allowed = self.cpu
            for op, n in fallback.items():
                if not any(_matches(p, op) for p in allowed):
                    found.append(f"{op} x{n} stays on the CPU; allowed: {_allowed(allowed)}")
            for pattern, most in allowed.items():
                count = sum(n for op, n in fallback.items() if _matches(pattern, op))
                if most is not None and count > most:
                    found.append(f"{pattern}: {count} on the CPU, at most {most} allowed")
        return found


def _listed(ops: Mapping[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items())


def _allowed(allowed: Mapping[str, int | None]) -> str:
    return ", ".join(allowed) or "the boundary quantize/dequantize"
