"""Versions of the tools that shape a program, read without importing them."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

TOOL_DISTRIBUTIONS = ("torch", "executorch", "torchao", "ethos-u-vela", "tosa-tools")

# Bump when the build pipeline changes what it produces for the same inputs:
# it is part of every cache key.
PIPELINE_VERSION = "4"  # 4: metadata lists tap candidates (harness.verdict.debug)


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
