"""The one place that finds the data files et-hil ships.

The built-in board files and the FVP platform files are data, not code: they live
at the top of the checkout, in ``boards/`` (beside the example board files under
``boards/examples/``) and ``fvp/``, where a lab admin looks for them. The wheel
carries them inside the package, as ``et_hil/_data/boards`` and
``et_hil/_data/fvp`` (pyproject.toml maps the folders at build time), so a
pip-installed et-hil has every built-in board too. Data that belongs to one part
of the code stays beside it: the runner's failure patterns
(``et_hil/executor_runner/failures.toml``), the QEMU machine files, the firmware
platform layer.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def data_dir(package: str, folder: str = "") -> Path:
    """The folder ``folder`` of ``package`` (a dotted name) as a filesystem path."""
    root = importlib.resources.files(package)
    return Path(str(root / folder)) if folder else Path(str(root))


#: the checkout this module runs from (an editable install or a source tree)
CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_dir(folder: str) -> Path:
    """The top-level data folder ``folder`` (``boards``, ``fvp``): its copy inside
    an installed wheel, else the checkout's own."""
    installed = data_dir("et_hil", "_data") / folder
    return installed if installed.is_dir() else CHECKOUT / folder


def builtin_board_dir() -> Path:
    """Folder of the built-in board files (``boards/*.toml``; examples are below it)."""
    return shipped_dir("boards")


def fvp_platform_dir() -> Path:
    """Folder of the FVP platform files (``fvp/``: one TOML per Corstone FVP product)."""
    return shipped_dir("fvp")


def runner_failures_file() -> Path:
    """The runner's failure patterns (regular expressions over its log)."""
    return data_dir("et_hil.executor_runner") / "failures.toml"


def qemu_machine_dir() -> Path:
    """Folder of the QEMU machine files (one TOML per ``-machine``: CPU, memory map)."""
    return data_dir("et_hil.boards.qemu", "machines")


def firmware_platform_dir(name: str) -> Path:
    """The platform layer (startup, device header, linker script) runner builds use."""
    return data_dir("et_hil.firmware", "platforms") / name
