"""Board kinds: what a board file's ``kind`` names, as plug-ins.

A kind declares its Board class, the fidelities its timings can have, its own
table in a board file with the type that validates it, and (for built-in kinds)
its command-line options. The plugin, ``et-hil boards``/``doctor`` and board-file
validation all read this registry; nothing else lists kinds.

Every installed package's kinds register through the ``et_hil.board_kinds``
entry-point group, et-hil's own built-in kinds too (its pyproject.toml declares
each, from the kind's folder): the registry names no kind. A ``conftest.py`` or a
pytest plugin can also add kinds for one session through the
``pytest_et_hil_board_kinds`` hook (see :mod:`et_hil.pytest_plugin.hooks`)::

    def pytest_et_hil_board_kinds():
        return [BoardKind(name="toy", board=ToyBoard, summary="...", fidelities={...})]

This module stays light (no numpy, no torch): the plugin imports it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from et_hil import plugins
from et_hil.boards.kind import BoardKind
from et_hil.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from et_hil.boards.base import Board, BoardOptions
    from et_hil.boards.board_spec import BoardSpec

__all__ = ["BoardKind", "get", "kinds", "load_entry_points", "make_board", "register"]

ENTRY_POINT_GROUP = "et_hil.board_kinds"


_kinds: dict[str, BoardKind] = {}
_loaded = False


def _ensure_loaded() -> None:
    """Register the installed kinds (et-hil's own first) on first use."""
    global _loaded
    if not _loaded:
        _loaded = True  # before loading: register() calls back here
        load_entry_points()


def register(kinds: Iterable[BoardKind], *, source: str = "") -> None:
    """Add kinds. Registering the same object again is harmless; another kind of
    an existing name is refused (two plug-ins would fight over board files).

    Raises:
        ConfigError: naming the kind and where it came from.
    """
    _ensure_loaded()
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
    _ensure_loaded()
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
            "own registers through the pytest_et_hil_board_kinds hook "
            "(docs/boards/your-own-kind.md)"
        )
    return known[name]


def load_entry_points() -> None:
    """Register the kinds of installed packages (``et_hil.board_kinds`` entry points),
    et-hil's own built-in kinds first: they are declared in et-hil's pyproject.toml
    exactly as another package declares its kinds. Each entry point is a BoardKind,
    a list of them, or a function returning either.

    Raises:
        ConfigError: et-hil's own kinds are missing (a checkout used without being
            installed), or a package's entry point fails to load or gives no kinds.
    """
    found = plugins.group(ENTRY_POINT_GROUP)
    if not any(plugins.distribution(e) == plugins.OWN_DISTRIBUTION for e in found):
        raise ConfigError(
            "et-hil's built-in board kinds are not registered: its package metadata (the "
            f"'{ENTRY_POINT_GROUP}' entry points) is missing or stale. Install et-hil "
            "(in a checkout: make install, or pip install -e .)"
        )
    for entry in found:
        source, values = plugins.load(entry, BoardKind, "board kind")
        register(values, source=source)


def make_board(spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None) -> Board:
    """The board object for ``spec``; ``work_dir`` holds its logs."""
    from et_hil.boards.base import BoardOptions

    kind = get(spec.kind, where=f"board file {spec.path}")
    return kind.board_factory()(spec, work_dir, options or BoardOptions())
