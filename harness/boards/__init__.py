"""Stage 2, artifact -> run result: board files (:mod:`~harness.boards.spec`), the
registry of board kinds (:mod:`~harness.boards.registry`), the Board protocol
(:mod:`~harness.boards.base`) and the kinds themselves: ``host``, ``tosa``,
``fvp/`` and ``serial/``.

The names below load on first use, so importing one board module does not
import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Availability": "harness.boards.base",
    "Board": "harness.boards.base",
    "BoardOptions": "harness.boards.base",
    "Fidelity": "harness.boards.base",
    "RunResult": "harness.boards.base",
    "BoardKind": "harness.boards.kind",
    "make_board": "harness.boards.registry",
}

__all__ = [
    "Availability",
    "Board",
    "BoardKind",
    "BoardOptions",
    "Fidelity",
    "RunResult",
    "make_board",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.boards' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from harness.boards.base import Availability, Board, BoardOptions, Fidelity, RunResult
    from harness.boards.kind import BoardKind
    from harness.boards.registry import make_board
