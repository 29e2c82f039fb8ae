"""What a family of compile targets declares (:class:`TargetKind`);
:mod:`et_hil.programs.target_registry` keeps the registered ones."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from et_hil.programs.compile_target import CompileTarget


class TargetFactory(Protocol):
    """Makes the target a board file names (:attr:`TargetKind.make`)."""

    def __call__(self, name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
        """The target called ``name``, for board ``board`` (named in build errors),
        with the board file's ``[vela]`` table (empty when it has none).

        Raises:
            BuildError: the board file's settings for it are wrong.
        """


@dataclasses.dataclass(frozen=True)
class TargetKind:
    """One family of compile targets: the names it answers to and how it makes them.

    A board file's ``target`` is looked up by name: the first registered kind
    whose :attr:`pattern` matches the whole name makes it (built-in kinds come
    first, then others in the order they were registered).

    Attributes:
        name: the family's name, unique in the registry (``ethos-u``).
        pattern: a regular expression the whole target name must match
            (``ethos-(u55|u65|u85)-\\d+``).
        spelled: the names it makes, as a person writes them, for the message
            of an unknown name (``cortex-m55, cortex-m85``).
        make: makes the target (:class:`TargetFactory`); called only when a
            program is built, so it may import torch and ExecuTorch.
        problem: what is wrong with a name :attr:`pattern` matches (Ethos-U55
            with 100 MACs), or ``None``; must be cheap (no torch, no
            ExecuTorch): board files are checked with it at collection.
        delegates: its programs can have delegates, so a board's full-delegation
            requirement can apply (asked of the name, without building).
    """

    name: str
    pattern: str
    spelled: str
    make: TargetFactory
    problem: Callable[[str], str | None] | None = None
    delegates: bool = True

    def matches(self, target: str) -> bool:
        """True when this kind makes the target called ``target``."""
        return _compiled(self.pattern).fullmatch(target) is not None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
