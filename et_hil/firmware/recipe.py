"""Build upstream ExecuTorch's ``arm_executor_runner`` for QEMU's ``mps3-an547``.

The genuine runner (``examples/arm/executor_runner``), built by upstream's own
``backends/arm/scripts/build_executor_runner.sh`` as a semihosting build with
ETDump, against et-hil's platform layer (``et_hil/firmware/platforms/mps3-an547``) in place of
Arm's ``core_platform``. What the script takes as flags::

    --pte=semihosting --target=ethos-u55-128 --system_config=Ethos_U55_High_End_Embedded
    --memory_mode=Shared_Sram --etdump --select_ops_list=<ops>
    --ethosu_tools_dir=<out>/sdk --output=<out>/cmake-out
    --extra_build_flags="-C <out>/et-hil.cmake"

and what goes through the initial-cache file ``et-hil.cmake`` (the script splits
``--extra_build_flags`` at blanks, so values with blanks cannot go there)::

    EXECUTORCH_BUILD_ARM_ETDUMP=ON     the preset otherwise turns the event tracer off
    ET_DUMP_INTERMEDIATE_OUTPUTS, ET_DEBUG_BUFFER_SIZE         intermediate outputs or none
    ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE                 method pool (default 60 MiB)
    CMAKE_{C,CXX}_FLAGS_RELEASE        -O3, or -Os -fno-if-conversion(2) if asked
    MPS3_AN547_KERNEL_CODE             bram (upstream's place, 1 MiB) or ddr (long op lists)
    PYTHON_EXECUTABLE                  this Python (torchgen and PyYAML for the code generator)

The ELF runs with ``qemu-system-arm -machine mps3-an547 -semihosting-config
enable=on,target=native,arg=runner,arg=-m,arg=<pte>,arg=-i,arg=<in>,arg=-o,arg=out
-kernel <elf>`` (see ``et_hil/firmware/platforms/README.md``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from et_hil.errors import ConfigError
from et_hil.executor_runner.elf import berkeley_sizes
from et_hil.firmware import ops as oplists
from et_hil.firmware.sdk import assemble_sdk, default_platform_dir
from et_hil.firmware.settings import StepTimeouts
from et_hil.firmware.sources import resolve_sources
from et_hil.firmware.steps import FirmwareBuildError, run_step
from et_hil.firmware.toolchain import cmake_executable

ELF_NAME = "arm_executor_runner"
SCRIPT = "backends/arm/scripts/build_executor_runner.sh"
SETUP_PATH = "examples/arm/arm-scratch/setup_path.sh"
# Op lists longer than this run their kernel code from DDR: at -O3 about 60 kernels
# fill the 1 MiB BRAM where upstream's layout puts them.
KERNELS_IN_DDR_ABOVE = 60
O3_FLAGS = "-O3 -DNDEBUG"
OS_FLAGS = "-Os -fno-if-conversion -fno-if-conversion2 -DNDEBUG"
BUILD_LOCK_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class BuildResult:
    """One finished runner build."""

    elf: Path
    elapsed_s: float
    log: Path
    ops: tuple[str, ...]
    sizes: dict[str, int] = field(default_factory=dict)  # text, data, bss, as binutils' size


def _cache_file(
    python: str,
    *,
    etdump: bool,
    intermediate_buffer_bytes: int | None,
    method_pool_bytes: int | None,
    size_optimized: bool,
    kernels_in_ddr: bool,
) -> str:
    """The ``-C`` initial-cache script; every entry FORCEd so a rebuild follows it."""

    def entry(name: str, value: str | int, kind: str = "STRING") -> str:
        return f'set({name} "{value}" CACHE {kind} "et-hil firmware recipe" FORCE)\n'

    flags = OS_FLAGS if size_optimized else O3_FLAGS
    text = "# Written by et_hil/firmware/recipe.py; read with cmake -C.\n"
    text += entry("PYTHON_EXECUTABLE", python, "FILEPATH")
    text += entry("EXECUTORCH_BUILD_ARM_ETDUMP", "ON" if etdump else "OFF", "BOOL")
    text += entry("EXECUTORCH_ENABLE_EVENT_TRACER", "ON" if etdump else "OFF", "BOOL")
    dump = etdump and intermediate_buffer_bytes is not None
    text += entry("ET_DUMP_INTERMEDIATE_OUTPUTS", "ON" if dump else "OFF", "BOOL")
    if intermediate_buffer_bytes is not None:
        text += entry("ET_DEBUG_BUFFER_SIZE", intermediate_buffer_bytes)
    pool = "OFF" if method_pool_bytes is None else method_pool_bytes  # OFF: source default
    text += entry("ET_ARM_BAREMETAL_METHOD_ALLOCATOR_POOL_SIZE", pool)
    text += entry("CMAKE_C_FLAGS_RELEASE", flags)
    text += entry("CMAKE_CXX_FLAGS_RELEASE", flags)
    text += entry("MPS3_AN547_KERNEL_CODE", "ddr" if kernels_in_ddr else "bram")
    return text


def _check_tools() -> str:
    """The cmake to use; raises when the cross compiler or cmake is missing."""
    if shutil.which("arm-none-eabi-gcc") is None:
        raise FirmwareBuildError(
            "arm-none-eabi-gcc is not on PATH: apt-get install gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
        )
    cmake = cmake_executable()
    if cmake is None:
        raise FirmwareBuildError("cmake is not installed: pip install cmake")
    return cmake


def _ensure_setup_path(executorch: Path) -> None:
    """The script sources ``arm-scratch/setup_path.sh`` (written by upstream's setup.sh).

    If there is none, write an empty one: PATH is set by the caller instead.
    Upstream's ``backends/arm/scripts/build_executor_runner.sh`` (the pinned source
    bundle's) exits when the file is missing (upstream's ``examples/arm/setup.sh``
    writes it to put the tools it downloads on PATH); no upstream issue was found.
    """
    path = executorch / SETUP_PATH
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Written by et-hil's firmware recipe: tools come from PATH.\n")


def build_runner(
    executorch_src: Path | None,
    out_dir: Path,
    *,
    ops: Sequence[str] | None,
    intermediate_buffer_bytes: int | None,
    method_pool_bytes: int | None,
    cmsis: bool,
    jobs: int,
    etdump: bool = True,
    size_optimized: bool = False,
    kernels_in_ddr: bool | None = None,
    cache_dir: Path | None = None,
    platform_dir: Path | None = None,
    timeouts: StepTimeouts | None = None,
) -> BuildResult:
    """Configure and build the runner into ``out_dir``; reuses ``out_dir``'s build tree.

    ``ops``: operators to register (``aten::add.out`` or ``aten.add.out``), ``None``
    for all portable and quantized kernels. ``cmsis`` adds the cortex_m (CMSIS-NN)
    kernels. Prim ops are always included. ``intermediate_buffer_bytes``: size of
    the ETDump debug buffer for intermediate outputs, ``None`` for no intermediate
    outputs. ``method_pool_bytes``: the method allocator pool, ``None`` for
    upstream's 60 MiB. ``size_optimized``: ``-Os -fno-if-conversion`` instead of
    ``-O3``. ``kernels_in_ddr``: run kernel code from DDR instead of BRAM; ``None``
    decides from the length of the op list. ``cache_dir`` holds the unpacked
    source bundle (default ``out_dir/../sources-cache``). ``timeouts``: each
    step's time limit (default :class:`~et_hil.firmware.settings.StepTimeouts`).
    A second call with another op list only regenerates the registration and
    relinks.

    Raises:
        FirmwareStepTimeout: a step ran past its limit (names it, its command and log).
        FirmwareBuildError: the build failed (names its log).
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cmake = _check_tools()
    timeouts = timeouts or StepTimeouts()
    sources = resolve_sources(
        executorch_src,
        cache_dir=cache_dir or out_dir.parent / "sources-cache",
        unpack_timeout_s=timeouts.unpack_s,
    )
    chosen = oplists.select(sources.executorch, ops, cortex_m=cmsis)
    if kernels_in_ddr is None:
        kernels_in_ddr = len(chosen) > KERNELS_IN_DDR_ABOVE
    tools_dir = assemble_sdk(sources, platform_dir or default_platform_dir(), out_dir / "sdk")
    cache_file = out_dir / "et-hil.cmake"
    cache_file.write_text(
        _cache_file(
            sys.executable,
            etdump=etdump,
            intermediate_buffer_bytes=intermediate_buffer_bytes,
            method_pool_bytes=method_pool_bytes,
            size_optimized=size_optimized,
            kernels_in_ddr=kernels_in_ddr,
        )
    )
    build_dir = out_dir / "cmake-out"
    command = [
        "bash",
        str(sources.executorch / SCRIPT),
        "--pte=semihosting",
        "--target=ethos-u55-128",
        "--system_config=Ethos_U55_High_End_Embedded",
        "--memory_mode=Shared_Sram",
        "--build_type=Release",
        *(["--etdump"] if etdump else []),
        # BundleIO: a program without inputs can only reach the runner as a bundle
        # (et_hil/executor_runner/command_line.py).
        "--bundleio",
        f"--ethosu_tools_dir={tools_dir}",
        f"--output={build_dir}",
        f"--select_ops_list={','.join(chosen)}",
        f"--extra_build_flags=-C {cache_file}",
    ]
    env = dict(os.environ)
    # This Python first (the script finds flatc through python3's executorch),
    # then cmake's folder; GNU nproc, the script's -j, honours OMP_NUM_THREADS.
    path = [str(Path(sys.executable).parent), str(Path(cmake).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    env["OMP_NUM_THREADS"] = str(jobs)
    log = out_dir / "build.log"
    start = time.monotonic()
    # flatcc's host build writes into its source folder: one build per tree at a time.
    lock = filelock.FileLock(str(sources.executorch / ".et-hil-build.lock"))
    with lock.acquire(timeout=BUILD_LOCK_TIMEOUT_S):
        _ensure_setup_path(sources.executorch)
        finished = run_step(
            "runner build",
            command,
            log_path=log,
            timeout_s=timeouts.build_s,
            setting="[qemu.firmware] build_timeout_s",
            env=env,
        )
    elapsed = time.monotonic() - start
    elf = build_dir / ELF_NAME
    if finished.returncode != 0 or not elf.is_file():
        raise FirmwareBuildError(
            f"runner build failed (exit {finished.returncode}) after {elapsed:.0f} s; see {log}"
        )
    return BuildResult(
        elf=elf, elapsed_s=elapsed, log=log, ops=tuple(chosen), sizes=berkeley_sizes(elf)
    )
