"""What the build pipeline asks of a compile target (:class:`CompileTarget`).

Its own module, below both the targets (:mod:`et_hil.programs.targets`) and what a
family of them declares (:mod:`et_hil.programs.target_kind`, whose factories return
one): with the protocol in either, the two would import each other.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from et_hil.programs.quantization import QuantConfig


class CompileTarget(Protocol):
    """What the build pipeline asks of a target."""

    @property
    def name(self) -> str:
        """The target's name, as board files spell it."""

    @property
    def int_only(self) -> bool:
        """True when the target runs quantized programs only."""

    @property
    def delegates(self) -> bool:
        """True when a backend can take ops off the CPU (full delegation can apply)."""

    def options(self) -> dict[str, Any]:
        """Settings that change the built program (part of the cache key)."""

    def quantizer(self, config: QuantConfig) -> Any:
        """A PT2E quantizer for ``config``."""

    def quantizer_family(self) -> str:
        """Names the quantizer: targets of one family quantize a model identically, so
        they share its exported and quantized program (:mod:`et_hil.programs.front`)."""

    def partitioners(self, folder: Path) -> list[Any]:
        """Partitioners for ``to_edge_transform_and_lower``; ``folder`` takes compiler files."""

    def lowering(self, folder: Path) -> contextlib.AbstractContextManager[None]:
        """Context in which lowering runs (per-partition compiler output folders)."""

    def edge_compile_config(self, quantized: bool) -> Any:
        """The ``EdgeCompileConfig`` for ``to_edge_transform_and_lower`` of a quantized
        or float program; ``None`` for ExecuTorch's default."""

    def edge_passes(self, edge: Any, quantized: bool) -> Any:
        """The lowered ``EdgeProgramManager`` after the target's own passes (run before
        ``to_executorch``); ``edge`` itself for targets without passes."""

    def reports(self, folder: Path) -> dict[str, Any]:
        """Compiler estimates gathered after lowering (Vela cycles, memory)."""
