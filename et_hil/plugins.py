"""Plug-ins: the entry points of et-hil's groups (board kinds, compile targets),
read once per process, and the registry each group's items are kept in
(:class:`PluginRegistry`).

Reading entry points scans every installed distribution's metadata (~12 ms in a
venv of 300 packages); every pytest run and ``et-hil`` command reads two groups,
so the scan is made once and shared. This module stays light (no numpy, no torch):
the plugin's start-up imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from et_hil.errors import ConfigError

T = TypeVar("T")

#: the distribution whose own entry points declare the built-in plug-ins
OWN_DISTRIBUTION = "et-hil"


@functools.cache
def _installed() -> Any:
    """Every installed package's entry points, by group (one scan per process)."""
    return entry_points()


def distribution(entry: EntryPoint) -> str:
    """The name of the package that declares ``entry`` ("" when unknown)."""
    return entry.dist.name if entry.dist is not None else ""


def group(name: str) -> list[EntryPoint]:
    """The entry points of group ``name``: et-hil's own first, then by package, each
    package's in the order its metadata declares them."""
    found = list(_installed().select(group=name))
    found.sort(key=lambda e: (distribution(e) != OWN_DISTRIBUTION, distribution(e)))
    return found


def load(entry: EntryPoint, item_type: type[T], what: str) -> tuple[str, list[T]]:
    """Load one entry point: a ``item_type`` value, a list of them, or a function
    returning either. Returns where it came from (for messages) and the values.

    Raises:
        ConfigError: the import or factory failed, or it gave something else, naming
            the entry point and its package (``what``: e.g. "board kind").
    """
    package = distribution(entry) or "an installed package"
    source = f"entry point '{entry.name} = {entry.value}' of {package}"
    try:
        value = entry.load()
        if callable(value) and not isinstance(value, item_type):
            value = value()
    except Exception as error:  # a plug-in's import or factory failed
        raise ConfigError(
            f"{what} {source} failed to load: {type(error).__name__}: {error}. "
            f"Fix or uninstall {package}"
        ) from error
    if isinstance(value, item_type):
        return source, [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return source, list(value)
    raise ConfigError(
        f"{what} {source} gave {value!r}: give a {item_type.__name__}, a list of them, "
        "or a function returning either"
    )


class PluginRegistry(Generic[T]):
    """Items of one plug-in group by name (board kinds, compile targets): the built-in
    ones first, then installed packages' (entry points), then those registered at run
    time (a pytest hook, a script). Each registry module keeps one instance and its
    own functions in front of it.

    Built-in items come either from et-hil's own entry points of the group (no
    ``builtins``: all entry points are read on first use, register included, and
    et-hil must be installed), or from code (``builtins``: read on first use; other
    packages' entry points only on the first lookup, so that what a hook registers
    at start-up is asked before them, and et-hil's own metadata is not needed).

    Args:
        group: the entry-point group, e.g. ``et_hil.board_kinds``.
        item_type: what each item must be (an entry point or a plug-in giving
            anything else is refused).
        what: the item's sort in messages, e.g. "board kind".
        key: an item's name.
        how_to_add: how a user adds an item of their own, for the message of an
            unknown name (a clause: it is capitalised there).
        describe: an item as a refused duplicate's message shows the registered one.
        item_what: one item in that message, when not ``what`` (a compile target
            registry holds target *kinds*).
        builtins: the built-in items, when they come from code.
    """

    def __init__(
        self,
        *,
        group: str,
        item_type: type[T],
        what: str,
        key: Callable[[T], str],
        how_to_add: str,
        describe: Callable[[T], str] = repr,
        item_what: str = "",
        builtins: Callable[[], Iterable[T]] | None = None,
    ) -> None:
        self.group = group
        self.item_type = item_type
        self.what = what
        self.key = key
        self.how_to_add = how_to_add
        self.describe = describe
        self.item_what = item_what or what
        self.builtins = builtins
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._builtins_read = builtins is None
        # set before reading: a failing entry point is reported once, not at every lookup
        self._entry_points_read = False

    def _ensure_builtins(self) -> None:
        """The built-in items, first (from code, or with every entry point)."""
        if self.builtins is None:
            if not self._entry_points_read:
                self.load_entry_points()
        elif not self._builtins_read:
            self._builtins_read = True
            self._add(self.builtins(), f"et-hil's built-in {self.what}s")

    def _ensure_loaded(self) -> None:
        self._ensure_builtins()
        if not self._entry_points_read:
            self.load_entry_points()

    def _add(self, items: Iterable[T], source: str) -> None:
        for item in items:
            if not isinstance(item, self.item_type):
                raise ConfigError(
                    f"{self.what} plug-in {source or '?'} returned {item!r}: return "
                    f"{self.item_type.__name__} values"
                )
            name = self.key(item)
            known = self._items.get(name)
            if known is not None and known != item:
                raise ConfigError(
                    f"{self.item_what} '{name}' from {source or 'a plug-in'} is already "
                    f"registered from {self._sources.get(name) or 'a plug-in'} "
                    f"({self.describe(known)}); pick another kind name"
                )
            self._items[name] = item
            self._sources.setdefault(name, source)

    def register(self, items: Iterable[T], *, source: str = "") -> None:
        """Add items. Registering the same object again is harmless; another item of
        an existing name is refused (two plug-ins would fight over the name).

        Raises:
            ConfigError: an item of the wrong type, or of a name already taken,
                naming where each came from.
        """
        self._ensure_builtins()
        self._add(items, source)

    def unregister(self, name: str) -> None:
        """Remove an item (tests and plug-ins that register for one session)."""
        self._items.pop(name, None)
        self._sources.pop(name, None)

    def by_name(self) -> dict[str, T]:
        """Every registered item by name: the built-in ones first."""
        self._ensure_loaded()
        return dict(self._items)

    def get(self, name: str, *, where: str = "") -> T:
        """The item called ``name`` (``where``: what named it, for the message).

        Raises:
            ConfigError: an unknown name, listing the known ones and how to add one.
        """
        known = self.by_name()
        if name not in known:
            prefix = f"{where}: " if where else ""
            how = self.how_to_add[:1].upper() + self.how_to_add[1:]
            raise ConfigError(
                f"{prefix}unknown {self.what} '{name}' (known: {', '.join(known)}). {how}"
            )
        return known[name]

    def load_entry_points(self) -> None:
        """Register the items of installed packages (the group's entry points), et-hil's
        own first. Each entry point is an item, a list of them, or a function returning
        either.

        Raises:
            ConfigError: without ``builtins``, et-hil's own entry points are missing (a
                checkout used without being installed); or a package's entry point
                fails to load or gives something else, naming it and its package.
        """
        if self.builtins is not None:
            self._ensure_builtins()
        self._entry_points_read = True  # before reading: registering calls back here
        found = group(self.group)
        if self.builtins is None and not any(distribution(e) == OWN_DISTRIBUTION for e in found):
            raise ConfigError(
                f"et-hil's built-in {self.what}s are not registered: its package metadata "
                f"(the '{self.group}' entry points) is missing or stale. Install et-hil "
                "(in a checkout: make install, or pip install -e .)"
            )
        for entry in found:
            source, values = load(entry, self.item_type, self.what)
            self._add(values, source)
