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

from et_hil import plugins
from et_hil.errors import BuildError, ConfigError
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

_kinds: dict[str, TargetKind] = {}
_entry_points_read = False


def _ensure_builtins() -> None:
    if not _kinds:  # the built-in kinds come first: they win a name both match
        from et_hil.programs.targets import BUILTIN_KINDS

        _kinds.update((kind.name, kind) for kind in BUILTIN_KINDS)


def register(kinds: Iterable[TargetKind], *, source: str = "") -> None:
    """Add target kinds. Registering the same object again is harmless; another
    kind of an existing name is refused (two plug-ins would fight over names).

    Raises:
        ConfigError: naming the kind and where it came from.
    """
    _ensure_builtins()
    for kind in kinds:
        if not isinstance(kind, TargetKind):
            raise ConfigError(
                f"compile target plug-in {source or '?'} returned {kind!r}: return "
                "TargetKind values"
            )
        known = _kinds.get(kind.name)
        if known is not None and known != kind:
            raise ConfigError(
                f"compile target kind '{kind.name}' from {source or 'a plug-in'} is already "
                f"registered (pattern {known.pattern!r}); pick another kind name"
            )
        _kinds[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind (tests and plug-ins that register for one session)."""
    _kinds.pop(name, None)


def kinds() -> dict[str, TargetKind]:
    """Every registered kind by name: the built-in ones first."""
    _ensure_builtins()
    if not _entry_points_read:
        load_entry_points()
    return dict(_kinds)


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
    global _entry_points_read
    _ensure_builtins()
    _entry_points_read = True  # a failing one is reported once, not at every lookup
    for entry in plugins.group(ENTRY_POINT_GROUP):
        source, values = plugins.load(entry, TargetKind, "compile target")
        register(values, source=source)
