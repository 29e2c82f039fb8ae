"""Runner firmware: build upstream ExecuTorch's ``arm_executor_runner`` for QEMU's ``mps3-an547``.

* :mod:`~harness.firmware.sources`: the pinned source bundle, checked and unpacked
  into a cache (or a caller's ExecuTorch checkout);
* :mod:`~harness.firmware.sdk`: the Arm SDK folder upstream's build reads, with
  et-hil's platform layer (``harness/firmware/platforms/mps3-an547``) as its
  ``corstone-300`` target;
* :mod:`~harness.firmware.service`: builds on demand, cached by content, with records;
* :mod:`~harness.firmware.cli`: ``et-hil firmware build``;
* :mod:`~harness.firmware.ops`: kernel lists (given ops, "wide", cortex_m, prim ops);
* :mod:`~harness.firmware.recipe`: :func:`build_runner`, which drives upstream's
  ``build_executor_runner.sh``;
* :mod:`~harness.firmware.toolchain`: what a build needs on this machine.

``et-hil firmware build --help`` builds from the command line.
"""

from __future__ import annotations

from harness.firmware.recipe import BuildResult, FirmwareBuildError, build_runner

__all__ = ["BuildResult", "FirmwareBuildError", "build_runner"]
