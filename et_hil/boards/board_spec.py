"""One board, as typed data: :class:`BoardSpec`.

What a board file says once it is read and checked, and nothing about how it
is read: this module imports no board kind and no registry, so that a kind's
own modules (its settings, its memory layout) can name ``BoardSpec`` without an
import cycle through the registry that lists the kinds. The loader, which
reads a file, looks its kind up and checks the kind's table, is
:mod:`et_hil.boards.spec`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, TypeVar, get_args

import msgspec

from et_hil.baseline_limits import LimitWritten
from et_hil.errors import ConfigError
from et_hil.tolerance import TolerancePolicy

Capability = Literal[
    "npu",
    "etdump",
    "intermediate_outputs",
    "cycle_counts",
    "bundled_io",
    "dynamic_shapes",  # runs a program at any input size within its bounds
]
CAPABILITIES: tuple[str, ...] = get_args(Capability)

KindSettings: TypeAlias = msgspec.Struct
"""What a kind's own table is converted to: the ``msgspec.Struct`` the kind declares
(:attr:`et_hil.boards.kind.BoardKind.settings_type`)."""

K = TypeVar("K", bound=KindSettings)

_Bytes = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer (bytes)"})]


class Memory(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A board file's ``[memory]``: capacities in bytes, where known. Which ones the
    fit check uses depends on the runner mode (see :mod:`et_hil.verdict.fit`)."""

    sram_bytes: _Bytes | None = None
    flash_bytes: _Bytes | None = None
    ddr_bytes: _Bytes | None = None
    program_bytes: _Bytes | None = None
    file_pool_bytes: _Bytes | None = None
    method_pool_bytes: _Bytes | None = None


MEMORY_FIELDS = tuple(f.name for f in msgspec.structs.fields(Memory))


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """One board, as read from its file.

    Attributes:
        name: the name used with ``--et-board``.
        kind: which registered kind drives it (``host``, ``tosa``, ``fvp``, ``serial`` ...).
        target: compile target of the programs it runs (``portable``, ``ethos-u85-256`` ...).
        description: one line for humans.
        cpu: the board's CPU (``cortex-m55`` ...), or ``None`` for the host.
        capabilities: features tests can require with ``@pytest.mark.et_needs``
            (:data:`CAPABILITIES`).
        run_timeout_s: default wall-clock limit of one run.
        require_full_delegation: fail programs that leave ops (other than the
            boundary quantize/dequantize) to the CPU.
        memory: capacities in bytes (:data:`MEMORY_FIELDS`; :mod:`et_hil.verdict.fit`
            says which one each runner mode uses).
        tolerance: default tolerances of the board.
        baseline_limits: regression limits over the defaults, per figure, as
            written (:mod:`et_hil.baseline_limits`; checked when the file was read).
        sections: the file's ``[vela]`` and kind tables, as plain tables.
        settings: the kind's own table converted to the kind's settings type
            (``FvpSettings`` ...; read it with :meth:`settings_of`), or ``None``.
        path: the file it came from.
    """

    name: str
    kind: str
    target: str
    description: str = ""
    cpu: str | None = None
    capabilities: frozenset[str] = frozenset()
    run_timeout_s: float = 60.0
    require_full_delegation: bool = False
    memory: Mapping[str, int] = dataclasses.field(default_factory=dict)
    tolerance: TolerancePolicy = dataclasses.field(default_factory=TolerancePolicy)
    baseline_limits: Mapping[str, LimitWritten] = dataclasses.field(default_factory=dict)
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    settings: KindSettings | None = None
    path: Path | None = None

    def settings_of(self, settings_type: type[K]) -> K | None:
        """The kind's settings as its own type, or ``None`` when the file has none.

        Raises:
            ConfigError: the spec holds settings of another type (a spec made in
                code for another kind).
        """
        if self.settings is None or isinstance(self.settings, settings_type):
            return self.settings
        raise ConfigError(
            f"board '{self.name}' (kind '{self.kind}'): its settings are a "
            f"{type(self.settings).__name__}, not the {settings_type.__name__} its kind reads"
        )

    def file_path(self, value: str | Path | None) -> Path | None:
        """A path the board file names (a runner ELF ...): relative to the file's
        folder, absolute as given; ``None`` stays ``None``."""
        if value is None or value == "":
            return None
        path = Path(value)
        if self.path is not None and not path.is_absolute():
            path = self.path.parent / path
        return path.resolve()
