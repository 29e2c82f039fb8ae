"""A board's memories, as its platform data gives them (light: board kinds load it at
start-up; :mod:`et_hil.executor_runner.elf` checks runner ELFs against it)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MemoryRegion:
    """A memory of a board's map (from its platform data)."""

    name: str
    base: int
    size: int

    def holds(self, start: int, size: int) -> bool:
        """True when ``[start, start + size)`` lies inside this region."""
        return self.base <= start and start + size <= self.base + self.size
