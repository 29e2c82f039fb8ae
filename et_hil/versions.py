"""Versions of the tools that shape a program, read without importing them."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

TOOL_DISTRIBUTIONS = ("torch", "executorch", "torchao", "ethos-u-vela", "tosa-tools")

# The stack this version is built and tested against: the one source of these
# numbers. The CLI's doctor and image build, the boards' hints, the Makefile
# (``python et_hil/versions.py torch``) and docker/Dockerfile (build args)
# take them from here; pyproject.toml must repeat them (pip reads it without
# running code), and tests/test_versions.py checks that it does.
PINNED = {
    "torch": "2.13.0",
    "executorch": "1.5.1",
    "ethos-u-vela": "5.1.0",
    "tosa-tools": "2026.5.0",
}

# Bump when the build pipeline changes what it produces for the same inputs:
# it is part of every cache key.
# 8: exported and quantized fronts shared by targets of one quantizer.
# 9: dynamic_dims metadata; the lowered program kept for quantized Cortex-M only
# (the golden reference), no longer for tosa targets (the tosa board runs the .pte).
PIPELINE_VERSION = "9"


def installed_version(distribution: str) -> str | None:
    """Version of an installed distribution, or ``None`` when absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def tool_versions() -> dict[str, str | None]:
    """Versions of every tool that can change a built program, plus the harness's."""
    versions: dict[str, str | None] = {d: installed_version(d) for d in TOOL_DISTRIBUTIONS}
    versions["et-hil"] = installed_version("et-hil")
    versions["pipeline"] = PIPELINE_VERSION
    versions["python"] = platform.python_version()
    return versions


def docker_build_args() -> dict[str, str]:
    """The pins docker/Dockerfile takes as build args (``et-hil docker build``)."""
    return {"TORCH_VERSION": PINNED["torch"], "EXECUTORCH_VERSION": PINNED["executorch"]}


if __name__ == "__main__":  # for the Makefile, before anything is installed
    import sys

    print(PINNED[sys.argv[1]])
