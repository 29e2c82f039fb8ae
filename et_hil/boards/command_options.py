"""Board options as a command (``et-hil boards``, ``doctor``, ``run``, ``repro``) sets
them: the build cache, each kind's environment settings, and ``--runner-elf``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from et_hil.boards import registry
from et_hil.boards.base import BoardOptions
from et_hil.boards.spec import BoardSpec
from et_hil.errors import ConfigError


def environment_options(cache_dir: Path) -> BoardOptions:
    """What a pytest run would set from this machine's environment."""
    return BoardOptions(
        cache_dir=cache_dir.expanduser().resolve(),
        kind_options={
            kind.name: kind.options_from_environment()
            for kind in registry.kinds().values()
            if kind.options_from_environment is not None
        },
    )


def board_options(
    boards: Mapping[str, BoardSpec],
    selected: Sequence[str],
    *,
    cache_dir: Path,
    runner_elves: Sequence[str] = (),
) -> dict[str, BoardOptions]:
    """Each board's options, plus ``--runner-elf [BOARD=]PATH`` values (without
    ``BOARD=`` a path applies to every selected board).

    Raises:
        ConfigError: ``--runner-elf`` names an unknown board.
    """
    elves: dict[str, Path] = {}
    for value in runner_elves:
        name, sep, path = value.rpartition("=")
        if sep and name not in boards:
            raise ConfigError(f"--runner-elf {value}: unknown board '{name}'")
        for target in [name] if sep else selected:
            elves[target] = Path(path).expanduser().resolve()
    common = environment_options(cache_dir)
    return {name: dataclasses.replace(common, runner_elf=elves.get(name)) for name in boards}
