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

from et_hil.boards.kind import BoardKind
from et_hil.plugins import PluginRegistry

if TYPE_CHECKING:
    from pathlib import Path

    from et_hil.boards.base import Board, BoardOptions
    from et_hil.boards.board_spec import BoardSpec

__all__ = ["BoardKind", "get", "kinds", "load_entry_points", "make_board", "register"]

ENTRY_POINT_GROUP = "et_hil.board_kinds"

#: the registered kinds; the functions below are its public face. The built-in kinds
#: are et-hil's own entry points, so et-hil must be installed (or the message says so).
REGISTRY = PluginRegistry(
    group=ENTRY_POINT_GROUP,
    item_type=BoardKind,
    what="board kind",
    key=lambda kind: kind.name,
    how_to_add=(
        "a kind of your own registers through the pytest_et_hil_board_kinds hook "
        "(docs/boards/your-own-kind.md)"
    ),
    describe=lambda kind: repr(kind.board),
)


def register(kinds: Iterable[BoardKind], *, source: str = "") -> None:
    """Add kinds. Registering the same object again is harmless; another kind of
    an existing name is refused (two plug-ins would fight over board files).

    Raises:
        ConfigError: naming the kind and where it came from.
    """
    REGISTRY.register(kinds, source=source)


def unregister(name: str) -> None:
    """Remove a kind (tests and plug-ins that register for one session)."""
    REGISTRY.unregister(name)


def kinds() -> dict[str, BoardKind]:
    """Every registered kind by name: the built-in ones first."""
    return REGISTRY.by_name()


def get(name: str, *, where: str = "") -> BoardKind:
    """The kind called ``name``.

    Raises:
        ConfigError: an unknown kind, listing the known ones and how to add one.
    """
    return REGISTRY.get(name, where=where)


def load_entry_points() -> None:
    """Register the kinds of installed packages (``et_hil.board_kinds`` entry points),
    et-hil's own built-in kinds first: they are declared in et-hil's pyproject.toml
    exactly as another package declares its kinds. Each entry point is a BoardKind,
    a list of them, or a function returning either.

    Raises:
        ConfigError: et-hil's own kinds are missing (a checkout used without being
            installed), or a package's entry point fails to load or gives no kinds.
    """
    REGISTRY.load_entry_points()


def make_board(spec: BoardSpec, work_dir: Path, options: BoardOptions | None = None) -> Board:
    """The board object for ``spec``; ``work_dir`` holds its logs."""
    from et_hil.boards.base import BoardOptions

    kind = get(spec.kind, where=f"board file {spec.path}")
    return kind.board_factory()(spec, work_dir, options or BoardOptions())
