"""What a runner build needs on this machine, and what is missing.

The Arm bare-metal GCC with newlib (Debian: ``gcc-arm-none-eabi``,
``libnewlib-arm-none-eabi``, ``libstdc++-arm-none-eabi-newlib``), CMake 3.24 or
newer (the ``cmake`` wheel installed with et-hil; Debian bookworm's 3.25 also
works), and ExecuTorch sources: a tree given by the user, or the pinned bundle.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

APT_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"


def cmake_executable() -> str | None:
    """The ``cmake`` beside this Python (the wheel's) first, else on ``PATH``."""
    beside = Path(sys.executable).parent / "cmake"
    return str(beside) if beside.exists() else shutil.which("cmake")


def missing_build_tools(executorch_src: Path | None) -> list[tuple[str, str]]:
    """Each missing build input as ``(what, how to get it)``; empty when a build can start."""
    from et_hil.firmware.sources import find_sources_problem

    missing: list[tuple[str, str]] = []
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++"):
        if shutil.which(tool) is None:
            missing.append(
                (
                    f"{tool} is not on PATH (runner firmware is built here)",
                    f"apt-get install {APT_PACKAGES}",
                )
            )
            break
    if cmake_executable() is None:
        missing.append(("cmake is not installed", "pip install cmake (or apt-get install cmake)"))
    problem = find_sources_problem(executorch_src)
    if problem is not None:
        missing.append(problem)
    return missing
