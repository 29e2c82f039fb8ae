"""Installed plug-ins: the entry points of et-hil's groups (board kinds, compile
targets), read once per process.

Reading entry points scans every installed distribution's metadata (~12 ms in a
venv of 300 packages); every pytest run and ``et-hil`` command reads two groups,
so the scan is made once and shared.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

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
