"""A board file's ``[vela]`` table: how Vela compiles the programs of an Ethos-U target.

::

    [vela]
    system_config = "Ethos_U85_SYS_DRAM_Mid"
    memory_mode = "Shared_Sram"
    extra_flags = ["--verbose-performance"]

Declared once (:class:`VelaOptions`): the board-file loader checks a table against
it (:mod:`et_hil.validation`, every problem at once), the Ethos-U targets read
their options through it, and ``et-hil schema`` publishes it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

_Text = Annotated[str | None, msgspec.Meta(extra={"expect": "a string"})]


class VelaOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """The ``[vela]`` table; what it leaves out is upstream's default
    (``backends/arm/test/common.py``)."""

    system_config: Annotated[
        _Text, msgspec.Meta(description="Vela system configuration (vela.ini's [System_Config])")
    ] = None
    memory_mode: Annotated[
        _Text, msgspec.Meta(description="Vela memory mode (vela.ini's [Memory_Mode])")
    ] = None
    extra_flags: Annotated[
        tuple[str, ...],
        msgspec.Meta(
            description="more vela command-line flags", extra={"expect": "a list of strings"}
        ),
    ] = ()
