"""Board kinds: what a board file's ``kind`` names, as plug-ins.

A kind declares its Board class, the fidelities its timings can have, its own
table in a board file with the type that validates it, and (for built-in kinds)
its command-line options. The plugin, ``et-hil boards``/``doctor`` and board-file
validation all read this registry; nothing else lists kinds.

Third-party kinds register from a ``conftest.py`` or a pytest plugin through the
``pytest_et_hil_board_kinds`` hook (see :mod:`et_hil.pytest_plugin.hooks`), or, for the
``et-hil`` command, through the ``et_hil.board_kinds`` entry-point group::

    def pytest_et_hil_board_kinds():
        return [BoardKind(name="toy", board=ToyBoard, summary="...", fidelities={...})]

This module stays light (no numpy, no torch): the plugin imports it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from et_hil.boards.kind import BoardKind
from et_hil.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from et_hil.boards.base import Board, BoardOptions
    from et_hil.boards.board_spec import BoardSpec

__all__ = ["BoardKind", "get", "kinds", "load_entry_points", "make_board", "register"]

ENTRY_POINT_GROUP = "et_hil.board_kinds"


_kinds: dict[str, BoardKind] = {}


def _builtin_kinds() -> list[BoardKind]:
    from et_hil.boards.fvp.kind import FVP_KIND
    from et_hil.boards.qemu.kind import QEMU_KIND
    from et_hil.boards.serial.kind import SERIAL_KIND

    host = BoardKind(
        name="host",
        board="et_hil.boards.host:HostBoard",
        summary="ExecuTorch's portable runtime on this machine (a worker process)",
        fidelities={"host-wall": "wall time of the host CPU running the portable runtime"},
        host_memory=True,
        golden_reference=False,  # ExecuTorch's own runtime is the portable kernels' reference
    )
    tosa = BoardKind(
        name="tosa",
        board="et_hil.boards.tosa:TosaBoard",
        summary="the TOSA reference model running the delegated part, host runtime the rest",
        fidelities={"tosa-reference": "wall time of the TOSA reference model: not a device"},
        host_memory=True,
        golden_reference=False,  # the TOSA reference model is the specification's
        fixed_shapes="TOSA delegates are compiled for one static shape",
    )
    return [host, tosa, FVP_KIND, QEMU_KIND, SERIAL_KIND]


def _ensure_builtins() -> None:
    if not _kinds:
        for kind in _builtin_kinds():
            _kinds[kind.name] = kind


def register(kinds: Iterable[BoardKind], *, source: str = "") -> None:
    """Add kinds. Registering the same object again is harmless; another kind of
    an existing name is refused (two plug-ins would fight over board files).

    Raises:
        ConfigError: naming the kind and where it came from.
    """
    _ensure_builtins()
    for kind in kinds:
        if not isinstance(kind, BoardKind):
            raise ConfigError(
                f"board kind plug-in {source or '?'} returned {kind!r}: return BoardKind values"
            )
        known = _kinds.get(kind.name)
        if known is not None and known != kind:
            raise ConfigError(
                f"board kind '{kind.name}' from {source or 'a plug-in'} is already registered "
                f"({known.board!r}); pick another kind name"
            )
        _kinds[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind (tests and plug-ins that register for one session)."""
    _kinds.pop(name, None)


def kinds() -> dict[str, BoardKind]:
    """Every registered kind by name: the built-in ones first."""
    _ensure_builtins()
    return dict(_kinds)


def get(name: str, *, where: str = "") -> BoardKind:
    """The kind called ``name``.

    Raises:
        ConfigError: an unknown kind, listing the known ones and how to add one.
    """
    known = kinds()
    if name not in known:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}unknown board kind '{name}' (known: {', '.join(known)}). A kind of your "
            "own registers through the pytest_et_hil_board_kinds hook (README: 'A board kind "
            "of your own')"
        )
    return known[name]


def load_entry_points() -> None:
    """Register the kinds of installed packages (``et_hil.board_kinds`` entry points);
    each entry point is a BoardKind, a list of them, or a function returning either."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        package = entry.dist.name if entry.dist is not None else "an installed package"
        source = f"entry point '{entry.name} = {entry.value}' of {package}"
        try:
            value = entry.load()
            if callable(value) and not isinstance(value, BoardKind):
                value = value()
        except Exception as error:  # a plug-in's import or factory failed
            raise ConfigError(
                f"board kind {source} failed to load: {type(error).__name__}: {error}. "
                f"Fix or uninstall {package}"
            ) from error
        if isinstance(value, BoardKind):
            value = [value]
        elif not isinstance(value, Iterable):
            raise ConfigError(
                f"board kind {source} gave {value!r}: give a BoardKind, a list of them, "
                "or a function returning either"
            )
        register(value, source=source)


def make_board(spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None) -> Board:
    """The board object for ``spec``; ``work_dir`` holds its logs."""
    from et_hil.boards.base import BoardOptions

    kind = get(spec.kind, where=f"board file {spec.path}")
    return kind.board_factory()(spec, work_dir, options or BoardOptions())
