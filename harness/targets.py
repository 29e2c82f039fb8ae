"""Compile targets: which quantizer and partitioners a board's programs use.

A target is looked up by the name in the board file (``target = "portable"``).
This version implements ``portable``: no delegate, every operator runs on the
ExecuTorch portable (and quantized) kernels. The Arm targets (TOSA, Ethos-U,
Cortex-M) are named here so that board files can use them, and fail the build
plainly until they are implemented.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import BuildError

if TYPE_CHECKING:
    from harness.quantization import QuantConfig

_PLANNED = re.compile(
    r"^(tosa-(int|fp)|ethos-u55-(32|64|128|256)|ethos-u65-(256|512)"
    r"|ethos-u85-(128|256|512|1024|2048)|cortex-m(55|85))$"
)


class CompileTarget(Protocol):
    """What the build pipeline asks of a target."""

    @property
    def name(self) -> str:
        """The target's name, as board files spell it."""

    def quantizer(self, config: QuantConfig) -> Any:
        """A PT2E quantizer for ``config``."""

    def partitioners(self) -> list[Any]:
        """Partitioners for ``to_edge_transform_and_lower`` (empty: no delegate)."""


@dataclasses.dataclass(frozen=True)
class PortableTarget:
    """No delegate: portable kernels, with Q/DQ operators for quantized programs."""

    name: str = "portable"

    def quantizer(self, config: QuantConfig) -> Any:
        """XNNPACK's symmetric int8 quantizer: its Q/DQ graph runs on the portable
        quantized kernels, so no XNNPACK delegate is needed."""
        # Registers the out-variants of quantized_decomposed ops used by to_executorch.
        import executorch.kernels.quantized  # noqa: F401
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        if config.scheme != "int8":
            raise BuildError(
                f"target 'portable': quantization scheme '{config.scheme}' is not supported; "
                "use 'int8'"
            )
        return XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=config.per_channel)
        )

    def partitioners(self) -> list[Any]:
        """None: every operator stays on the CPU."""
        return []


def get_target(name: str, *, board: str) -> CompileTarget:
    """The target called ``name`` (from the board file of ``board``).

    Raises:
        BuildError: the target is unknown, or named but not implemented yet.
    """
    if name == "portable":
        return PortableTarget()
    if _PLANNED.match(name):
        raise BuildError(
            f"board '{board}': compile target '{name}' is not implemented in this version of "
            "et-hil (Arm lowering is planned); run on --board=host meanwhile"
        )
    raise BuildError(
        f"board '{board}': unknown compile target '{name}' "
        "(known: portable, tosa-int, tosa-fp, ethos-u55-N, ethos-u65-N, ethos-u85-N, cortex-mNN)"
    )
