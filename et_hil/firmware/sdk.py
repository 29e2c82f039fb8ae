"""The Arm "SDK" folder upstream's runner build reads, assembled from links.

``backends/arm/scripts/build_executor_runner.sh --ethosu_tools_dir=DIR`` uses
``DIR/ethos-u`` as ``ETHOS_SDK_PATH``; ExecuTorch's CMake then reads::

    ethos-u/core_platform/targets/corstone-300/   the platform: et-hil's platforms/mps3-an547
    ethos-u/core_software/core_driver/            the Ethos-U core driver (ethosu_core_driver)
    ethos-u/core_software/cmsis/                  CMSIS 6 (the driver's CMSIS_PATH default)
    ethos-u/core_software/cmsis-nn/               CMSIS-NN (passed on as CMSIS_NN_LOCAL_PATH)

Arm's real ``core_platform`` is not public; the platform folder stands in for its
``corstone-300`` target, the slot the runner's CMake adds for Ethos-U55/U65 system
configurations (``backends/arm/scripts/corstone_utils.cmake``).
"""

from __future__ import annotations

from pathlib import Path

from et_hil.errors import ConfigError
from et_hil.firmware.sources import SourceTree

PLATFORM_SLOT = "core_platform/targets/corstone-300"


def default_platform_dir() -> Path:
    """et-hil's platform layer for QEMU's ``mps3-an547`` (shipped inside the package)."""
    from et_hil.datafiles import firmware_platform_dir

    return firmware_platform_dir("mps3-an547")


def _link(link: Path, target: Path) -> None:
    if not target.exists():
        raise ConfigError(f"{target} does not exist (needed at {link})")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)


def assemble_sdk(sources: SourceTree, platform_dir: Path, tools_dir: Path) -> Path:
    """Create ``tools_dir/ethos-u`` with links to the pieces; returns ``tools_dir``."""
    if not (platform_dir / "CMakeLists.txt").is_file():
        raise ConfigError(f"{platform_dir} is not a platform folder (no CMakeLists.txt)")
    root = tools_dir / "ethos-u"
    _link(root / PLATFORM_SLOT, platform_dir)
    _link(root / "core_software/core_driver", sources.core_driver)
    _link(root / "core_software/cmsis", sources.cmsis)
    _link(root / "core_software/cmsis-nn", sources.cmsis_nn)
    return tools_dir
