"""The one place that finds the data files shipped inside the package.

Built-in board files live in ``et_hil/boards/builtin/``, FVP platform files in
``et_hil/boards/fvp/platforms/``, the runner's failure patterns in
``et_hil/executor_runner/failures.toml``: the same paths in a checkout and in an
installed wheel, so nothing is remapped at packaging time.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def data_dir(package: str, folder: str = "") -> Path:
    """The folder ``folder`` of ``package`` (a dotted name) as a filesystem path."""
    root = importlib.resources.files(package)
    return Path(str(root / folder)) if folder else Path(str(root))


def builtin_board_dir() -> Path:
    """Folder of the built-in board files."""
    return data_dir("et_hil.boards", "builtin")


def fvp_platform_dir() -> Path:
    """Folder of the FVP platform files (one TOML per Corstone FVP product)."""
    return data_dir("et_hil.boards.fvp", "platforms")


def runner_failures_file() -> Path:
    """The runner's failure patterns (regular expressions over its log)."""
    return data_dir("et_hil.executor_runner") / "failures.toml"


def qemu_machine_dir() -> Path:
    """Folder of the QEMU machine files (one TOML per ``-machine``: CPU, memory map)."""
    return data_dir("et_hil.boards.qemu", "machines")


def firmware_platform_dir(name: str) -> Path:
    """The platform layer (startup, device header, linker script) runner builds use."""
    return data_dir("et_hil.firmware", "platforms") / name
