"""Compile targets by name: the built-in kinds and the ones others register.

A board file's ``target`` (or ``--et-compile-target``) is looked up here, by the
build, the check, board-file validation and the plugin; nothing else lists
targets. Each family of targets is a :class:`~et_hil.programs.target_kind.TargetKind`.
The built-in ones (:data:`et_hil.programs.targets.BUILTIN_KINDS`) are registered
exactly as a third party's are.

A target of one's own registers from a ``conftest.py`` or a pytest plugin through
the ``pytest_et_hil_compile_targets`` hook (see :mod:`et_hil.pytest_plugin.hooks`),
from a script by :func:`register`, or from an installed package through the
``et_hil.compile_targets`` entry-point group (read on the first lookup)::

    def pytest_et_hil_compile_targets():
        return [TargetKind(name="toy", pattern="toy", spelled="toy", make=make_toy)]

This module stays light (no torch, no ExecuTorch): board files are checked
against it at collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from et_hil.errors import BuildError
from et_hil.plugins import PluginRegistry
from et_hil.programs.target_kind import TargetKind

if TYPE_CHECKING:
    from et_hil.programs.compile_target import CompileTarget

__all__ = [
    "ENTRY_POINT_GROUP",
    "TargetKind",
    "check_target_name",
    "get_target",
    "has_delegate",
    "kind_of",
    "kinds",
    "load_entry_points",
    "register",
    "unregister",
]

ENTRY_POINT_GROUP = "et_hil.compile_targets"
HOW_TO_ADD = (
    "a target of your own registers through the pytest_et_hil_compile_targets hook or "
    f"the {ENTRY_POINT_GROUP} entry-point group (et_hil/programs/target_registry.py)"
)


def _builtin_kinds() -> tuple[TargetKind, ...]:
    from et_hil.programs.targets import BUILTIN_KINDS

    return BUILTIN_KINDS


#: the registered kinds; the functions below are its public face. The built-in kinds
#: come first, from code (they win a name both match); other packages' entry points
#: are read on the first lookup, after what the pytest hook registers at start-up.
REGISTRY = PluginRegistry(
    group=ENTRY_POINT_GROUP,
    item_type=TargetKind,
    what="compile target",
    item_what="compile target kind",
    key=lambda kind: kind.name,
    how_to_add=HOW_TO_ADD,
    describe=lambda kind: f"pattern {kind.pattern!r}",
    builtins=_builtin_kinds,
)


def register(kinds: Iterable[TargetKind], *, source: str = "") -> None:
    """Add target kinds. Registering the same object again is harmless; another
    kind of an existing name is refused (two plug-ins would fight over names).

    Raises:
        ConfigError: naming the kind and where it came from.
    """
    REGISTRY.register(kinds, source=source)


def unregister(name: str) -> None:
    """Remove a kind (tests and plug-ins that register for one session)."""
    REGISTRY.unregister(name)


def kinds() -> dict[str, TargetKind]:
    """Every registered kind by name: the built-in ones first."""
    return REGISTRY.by_name()


def kind_of(name: str) -> TargetKind | None:
    """The kind that makes the target called ``name`` (the first registered that
    matches it), or ``None``."""
    return next((kind for kind in kinds().values() if kind.matches(name)), None)


def _problem(name: str, kind: TargetKind | None) -> str | None:
    if kind is None:
        known = ", ".join(k.spelled for k in kinds().values())
        return f"not a known compile target (known: {known}); {HOW_TO_ADD}"
    return kind.problem(name) if kind.problem is not None else None


def check_target_name(name: str) -> str | None:
    """What is wrong with the compile target ``name``, or ``None`` when it names one.

    Cheap (no torch, no ExecuTorch): the board file loader calls it for every
    board at collection, and :func:`get_target` calls it too, so both say the same.
    """
    return _problem(name, kind_of(name))


def has_delegate(name: str) -> bool:
    """False for targets whose programs have no delegate (every op on the CPU kernels)."""
    kind = kind_of(name)
    return kind is not None and kind.delegates


def get_target(name: str, *, board: str, vela: Mapping[str, Any] | None = None) -> CompileTarget:
    """The target called ``name`` (from the board file of ``board``).

    Raises:
        BuildError: the target is unknown or badly configured.
    """
    kind = kind_of(name)
    problem = _problem(name, kind)
    if kind is None or problem:
        raise BuildError(f"board '{board}': target '{name}': {problem}")
    return kind.make(name, board, vela or {})


def load_entry_points() -> None:
    """Register the target kinds of installed packages (``et_hil.compile_targets``
    entry points), once per process; each entry point is a TargetKind, a list of
    them, or a function returning either.

    Raises:
        ConfigError: an entry point failed to load or gave something else, naming
            it and its package.
    """
    REGISTRY.load_entry_points()
