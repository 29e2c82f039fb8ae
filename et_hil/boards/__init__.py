"""Stage 2, artifact -> run result: board files (:mod:`~et_hil.boards.spec`), the
registry of board kinds (:mod:`~et_hil.boards.registry`), the Board protocol
(:mod:`~et_hil.boards.base`) and the kinds themselves: ``host``, ``tosa``,
``fvp/`` and ``serial/``.

The names below load on first use, so importing one board module does not
import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Availability": "et_hil.boards.base",
    "BaseBoard": "et_hil.boards.base",
    "Board": "et_hil.boards.base",
    "BoardOptions": "et_hil.boards.base",
    "Fidelity": "et_hil.boards.base",
    "RunRequest": "et_hil.boards.base",
    "RunResult": "et_hil.boards.base",
    "BoardKind": "et_hil.boards.kind",
    "make_board": "et_hil.boards.registry",
}

__all__ = [
    "Availability",
    "BaseBoard",
    "Board",
    "BoardKind",
    "BoardOptions",
    "Fidelity",
    "RunRequest",
    "RunResult",
    "make_board",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'et_hil.boards' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from et_hil.boards.base import (
        Availability,
        BaseBoard,
        Board,
        BoardOptions,
        Fidelity,
        RunRequest,
        RunResult,
    )
    from et_hil.boards.kind import BoardKind
    from et_hil.boards.registry import make_board
