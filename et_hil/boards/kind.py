"""What a board kind declares (:class:`BoardKind`); :mod:`et_hil.boards.registry`
keeps the registered ones."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from et_hil.boards.memory import MemoryLayout, StandIn

if TYPE_CHECKING:
    from pathlib import Path

    from et_hil.boards.base import Board
    from et_hil.boards.board_spec import KindSettings


class OptionAdder(Protocol):
    """What a kind's ``add_options`` hook is handed: the plugin's option group
    (:class:`et_hil.pytest_plugin.options.EtOptionGroup`)."""

    def addoption(self, name: str, *, deprecated: Sequence[str] = (), **kwargs: Any) -> None:
        """Add ``--et-...`` with argparse's keywords; ``deprecated``: old spellings."""


@dataclasses.dataclass(frozen=True)
class BoardKind:
    """One kind of board.

    Attributes:
        name: the board file's ``kind``.
        board: the Board class (called as ``board(spec, work_dir, options)``), or
            ``"module:attribute"`` naming it, imported only when a board is made.
        summary: one line for ``et-hil boards --kinds``.
        fidelities: each fidelity its run timings can have, and what it means.
            Timings of different fidelities are never compared.
        settings_table: the name of the kind's own table in a board file
            (``[fvp]``, ``[serial]``), or ``None``.
        settings_type: the type that table is validated and converted to (a
            ``msgspec.Struct``; see :mod:`et_hil.validation`), kept in
            :attr:`BoardSpec.settings` (read with ``spec.settings_of(type)``).
            ``None``: the table is checked by :attr:`check_settings` alone and
            kept as a plain table in :attr:`BoardSpec.sections`.
        settings_required: a board of this kind must have the table.
        check_settings: problems across fields (one string each), given the
            converted table (the plain table without a :attr:`settings_type`) and
            the file's path; runs after types check.
        memory_fields: ``[memory]`` fields that mean something only for this kind,
            with what they are.
        memory_fields_refused: ``[memory]`` fields this kind has no use for, with why.
        memory_layout: where the kind's runner puts a program, which the fit check
            asks (:mod:`et_hil.boards.memory`); default: a stand-in for a device
            (the program runs in host memory; ``[memory]`` is the device's).
        host_memory: the board runs programs in this machine's memory, so the
            per-layer pass taps every layer in one build without a fit check.
        golden_reference: a golden reference applies to its quantized programs
            (:mod:`et_hil.verdict.golden`); False for a board that is itself a
            reference implementation (host: ExecuTorch's runtime; tosa: the TOSA
            reference model).
        fixed_shapes: why the kind's runner cannot run a dynamic-shape program at
            another size than the one it was planned for (the reason a test of
            :mod:`et_hil.verdict.dynamic` skips with); ``None`` when it can, given
            the ``dynamic_shapes`` capability in the board file.
        debug_reducer: what the per-layer pass asks of each tapped layer:
            ``FULL_TENSOR``, or ``STATS`` (13 statistics a layer: what a UART carries
            in reasonable time).
        add_options: adds the kind's command-line options to the plugin's option
            group (an :class:`OptionAdder`): each starts with ``--et-`` like every
            et-hil option; a renamed one lists its old spelling as ``deprecated``.
        options_from: the kind's options object from ``pytest.Config.option``
            (handed to its boards as ``BoardOptions.for_kind(name)``).
        options_type: the dataclass ``options_from`` returns (repro folders save
            and restore it).
        options_from_environment: the kind's options from the environment alone,
            for ``et-hil`` commands, which have no pytest options.
        add_commands: ``"module:function"`` adding the kind's own ``et-hil``
            subcommands, given argparse's subparsers and the parent parser of the
            common options; imported only when the command line is built.
        doctor: the module with the kind's ``et-hil doctor`` checks:
            ``machine_checks(boards)`` and ``board_checks(board, runs, required)``,
            each returning ``(ok, what, detail)`` rows (``ok`` None: a warning).
    """

    name: str
    board: str | Callable[..., Board]
    summary: str
    fidelities: Mapping[str, str]
    settings_table: str | None = None
    settings_type: type[KindSettings] | None = None
    settings_required: bool = False
    check_settings: Callable[[Any, Path], list[str]] | None = None
    memory_fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    memory_fields_refused: Mapping[str, str] = dataclasses.field(default_factory=dict)
    memory_layout: MemoryLayout = dataclasses.field(default_factory=StandIn)
    host_memory: bool = False
    golden_reference: bool = True
    fixed_shapes: str | None = None
    debug_reducer: str = "FULL_TENSOR"
    add_options: Callable[[OptionAdder], None] | None = None
    options_from: Callable[[Any], Any] | None = None
    options_type: type | None = None
    options_from_environment: Callable[[], Any] | None = None
    add_commands: str | None = None
    doctor: str | None = None

    def board_factory(self) -> Callable[..., Board]:
        """The Board class, importing its module the first time."""
        if not isinstance(self.board, str):
            return self.board
        module, _, attribute = self.board.partition(":")
        factory: Callable[..., Board] = getattr(importlib.import_module(module), attribute)
        return factory

    def command_adder(self) -> Callable[[Any, Any], None] | None:
        """The function of :attr:`add_commands`, importing its module, or ``None``."""
        if self.add_commands is None:
            return None
        module, _, attribute = self.add_commands.partition(":")
        adder: Callable[[Any, Any], None] = getattr(importlib.import_module(module), attribute)
        return adder

    def doctor_module(self) -> Any:
        """The module of :attr:`doctor`, imported on first use."""
        return importlib.import_module(self.doctor) if self.doctor else None
