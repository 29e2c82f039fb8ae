"""Runner firmware: build upstream ExecuTorch's ``arm_executor_runner`` for QEMU's ``mps3-an547``.

* :mod:`~et_hil.firmware.sources`: the pinned source bundle, checked and unpacked
  into a cache (or a caller's ExecuTorch checkout);
* :mod:`~et_hil.firmware.sdk`: the Arm SDK folder upstream's build reads, with
  et-hil's platform layer (``et_hil/firmware/platforms/mps3-an547``) as its
  ``corstone-300`` target;
* :mod:`~et_hil.firmware.service`: builds on demand, cached by content, with records;
* :mod:`~et_hil.firmware.settings`: a board file's ``[<kind>.firmware]`` table;
* :mod:`~et_hil.firmware.ops`: kernel lists (given ops, "wide", cortex_m, prim ops);
* :mod:`~et_hil.firmware.recipe`: :func:`build_runner`, which drives upstream's
  ``build_executor_runner.sh``;
* :mod:`~et_hil.firmware.steps`: each step a child process group with a time limit,
  its output in a log;
* :mod:`~et_hil.firmware.toolchain`: what a build needs on this machine.

``et-hil firmware build --help`` builds from the command line (the QEMU kind's
subcommand, :mod:`et_hil.boards.qemu.firmware_cli`: the stage imports no board).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuildResult", "FirmwareBuildError", "build_runner"]


def __getattr__(name: str) -> Any:
    # Lazy: board kinds import the settings table (et_hil.firmware.settings) at
    # start-up, which must not load the build recipe.
    if name in __all__:
        from et_hil.firmware import recipe

        return getattr(recipe, name)
    raise AttributeError(f"module 'et_hil.firmware' has no attribute {name!r}")
