"""Runner firmware on demand: built once per content, kept in the build cache.

A build is named by what decides its bytes: the ExecuTorch sources (the bundle's
checksums, or a checkout's git revision and changes), the recipe (our platform
layer and build scripts, hashed), and the settings (kernel list, buffer sizes).
The same request from any process, any worker, any day finds the same ELF; two
at once build it once (a file lock per request). Builds share one CMake tree per
source tree, so another kernel list costs a relink, not a rebuild.

Each ELF gets its build record beside it (:mod:`et_hil.executor_runner.build_record`),
which boards put in every result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from et_hil.errors import ConfigError
from et_hil.executor_runner.build_record import record_path
from et_hil.firmware.progress import BuildProgress
from et_hil.firmware.steps import query

if TYPE_CHECKING:
    from et_hil.firmware.settings import FirmwareSettings, StepTimeouts

ELF_FILE = "arm_executor_runner.elf"
LOCK_TIMEOUT_S = 3600.0  # a cold build takes ~6 min on 2 cores; others wait for it
RECIPE_FILES = ("recipe.py", "ops.py", "sdk.py")


@dataclasses.dataclass(frozen=True)
class FirmwareRequest:
    """What runner to build.

    Attributes:
        ops: the kernels to register (``aten::add.out`` ...); ``None``: wide (every
            portable and quantized kernel and, with ``cmsis``, every cortex_m one).
        cmsis: add the cortex_m (CMSIS-NN) kernels.
        intermediate_buffer_bytes: the ETDump intermediate-output buffer; 0: none.
        method_pool_bytes: the method allocator pool; ``None``: the runner's default.
    """

    ops: tuple[str, ...] | None = None
    cmsis: bool = True
    intermediate_buffer_bytes: int = 0
    method_pool_bytes: int | None = None

    def flags(self) -> list[str]:
        """The ``et-hil firmware build`` options that make this request."""
        flags = ["--wide"] if self.ops is None else ["--ops", ",".join(self.ops)]
        flags += [] if self.cmsis else ["--no-cmsis"]
        flags += ["--intermediate-buffer", str(self.intermediate_buffer_bytes)]
        if self.method_pool_bytes is not None:
            flags += ["--method-pool", str(self.method_pool_bytes)]
        return flags


@dataclasses.dataclass(frozen=True)
class BuiltRunner:
    """A runner ELF in the cache, its record, and whether this call built it."""

    elf: Path
    record: dict[str, Any]
    built: bool
    seconds: float


def request_for(settings: FirmwareSettings) -> FirmwareRequest:
    """The request a board file's ``[qemu.firmware]`` describes."""
    return FirmwareRequest(
        ops=tuple(settings.ops) if settings.ops else None,
        cmsis=settings.kernels == "wide",
        intermediate_buffer_bytes=settings.intermediate_buffer_bytes,
        method_pool_bytes=settings.method_pool_bytes,
    )


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def recipe_digest() -> str:
    """A hash of the recipe: the platform layer's files and the build modules."""
    from et_hil.firmware.sdk import default_platform_dir

    here = Path(__file__).resolve().parent
    platform = default_platform_dir()
    files = [here / name for name in RECIPE_FILES]
    files += sorted(p for p in platform.rglob("*") if p.is_file())
    return _digest(*(str(p.relative_to(here)).encode() + p.read_bytes() for p in files))


def sources_id(executorch_src: Path | None) -> str:
    """What the sources are: the bundle's checksums, or a checkout's revision
    (plus a hash of its uncommitted changes), or, without git, its path.

    Raises:
        ConfigError: the sources cannot be found (what is missing, and the fix).
    """
    from et_hil.firmware.sources import CHECKSUMS, default_bundle, find_sources_problem

    problem = find_sources_problem(executorch_src)
    if problem is not None:
        what, fix = problem
        raise ConfigError(f"{what}: {fix}")
    bundle = (default_bundle() / CHECKSUMS).read_bytes()
    if executorch_src is None:
        return "bundle:" + _digest(bundle)[:16]
    src = executorch_src.resolve()

    def git(*args: str) -> str:
        result = query(f"git {args[0]} of {src}", ["git", "-C", str(src), *args])
        return result.stdout.strip() if result.returncode == 0 else ""

    revision = git("rev-parse", "HEAD")
    if not revision:
        return "tree:" + _digest(str(src).encode(), bundle)[:16]
    changes = git("diff", "HEAD")
    return f"git:{revision[:12]}:" + _digest(changes.encode(), bundle)[:12]


def firmware_dir(cache_dir: Path) -> Path:
    """Where firmware builds live: ``<cache>/firmware``."""
    return cache_dir / "firmware"


def ensure_runner(
    request: FirmwareRequest,
    *,
    cache_dir: Path,
    executorch_src: Path | None = None,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    timeouts: StepTimeouts | None = None,
) -> BuiltRunner:
    """The runner ELF for ``request``, from the cache or built now (``progress``
    hears each step of a build, and where its log is; ``timeouts`` limits each
    step, not part of what is built).

    Raises:
        FirmwareStepTimeout: a build step ran past its limit (names it, its
            command and its log).
        FirmwareBuildError: the build failed (the message names its log).
        ConfigError: the sources or the request are not usable (names them).
    """
    from et_hil.firmware.recipe import build_runner

    started = time.monotonic()
    source = sources_id(executorch_src)
    recipe = recipe_digest()
    settings = dataclasses.asdict(request)
    key = _digest(json.dumps([source, recipe, settings], sort_keys=True).encode())[:20]
    root = firmware_dir(cache_dir)
    out = root / key
    elf = out / ELF_FILE
    root.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(root / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if progress is not None:
            progress(f"another process is building it; waiting for it ({lock.lock_file})")
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    with lock:
        lock.release()  # held once (by the with) from here on
        record = _read_record(elf)
        # An ELF changed since its build (its SHA-256 is in the record; ~2 ms to
        # hash) is rebuilt, never run.
        if record is not None and runner_problem(elf) is None:
            return BuiltRunner(elf, record, built=False, seconds=time.monotonic() - started)
        tree = root / ("tree-" + _digest(source.encode())[:12])
        report = progress or (lambda _: None)
        report(f"building {key} (log: {tree / 'build.log'})")
        with BuildProgress(tree / "build.log", report):
            result = build_runner(
                executorch_src,
                tree,
                ops=request.ops,
                intermediate_buffer_bytes=request.intermediate_buffer_bytes or None,
                method_pool_bytes=request.method_pool_bytes,
                cmsis=request.cmsis,
                jobs=jobs or os.cpu_count() or 1,
                cache_dir=cache_dir,
                timeouts=timeouts,
            )
        out.mkdir(parents=True, exist_ok=True)
        partial = elf.with_suffix(f".tmp{os.getpid()}")
        shutil.copyfile(result.elf, partial)
        os.replace(partial, elf)
        shutil.copyfile(result.log, out / "build.log")
        record = {
            "elf_sha256": hashlib.sha256(elf.read_bytes()).hexdigest(),
            "machine": "mps3-an547",
            "source": source,
            "recipe": recipe[:16],
            "wide": request.ops is None,
            "cmsis": request.cmsis,
            "operators": list(result.ops),
            "intermediate_buffer_bytes": request.intermediate_buffer_bytes,
            "method_pool_bytes": request.method_pool_bytes,
            "bundleio": True,
            "etdump": True,
            "sizes": result.sizes,
            "build_s": round(result.elapsed_s, 1),
            "rebuild": "rebuild the runner: et-hil firmware build " + " ".join(request.flags()),
        }
        record_path(elf).write_text(json.dumps(record, indent=1) + "\n")
    return BuiltRunner(elf, record, built=True, seconds=time.monotonic() - started)


def _read_record(elf: Path) -> dict[str, Any] | None:
    """The record of a finished build (ELF and record both present and agreeing)."""
    from et_hil.executor_runner.build_record import read_build_record

    if not elf.is_file():
        return None
    record = read_build_record(elf)
    if record is None or record.get("elf_sha256") is None:
        return None
    return record


def runner_for_board(
    settings: FirmwareSettings,
    *,
    cache_dir: Path | None,
    executorch_src: Path | None,
    board: str,
) -> Path:
    """The runner a QEMU board's ``[qemu.firmware]`` describes (built on first use).

    Raises:
        InfrastructureError: the build failed, naming the board and the build log.
    """
    from et_hil.errors import InfrastructureError
    from et_hil.firmware.steps import FirmwareBuildError
    from et_hil.programs.cache import default_cache_dir

    try:
        built = ensure_runner(
            request_for(settings),
            cache_dir=cache_dir or default_cache_dir(),
            executorch_src=executorch_src,
            timeouts=settings.timeouts(),
        )
    except FirmwareBuildError as exc:
        raise InfrastructureError(f"board '{board}': runner firmware: {exc}") from exc
    except filelock.Timeout as exc:
        raise InfrastructureError(
            f"board '{board}': another process has been building the runner firmware for "
            f"over {LOCK_TIMEOUT_S:g} s ({exc.lock_file}); remove the lock if nothing is"
        ) from exc
    except ConfigError as exc:
        raise ConfigError(f"board '{board}': runner firmware: {exc}") from exc
    return built.elf


def cached_runners(cache_dir: Path) -> list[Path]:
    """The runner ELFs of finished builds in the cache at ``cache_dir``."""
    return sorted(firmware_dir(cache_dir).glob(f"*/{ELF_FILE}"))


def build_trees(cache_dir: Path) -> list[Path]:
    """The CMake trees builds share (one per source tree): relinks reuse them."""
    return sorted(p for p in firmware_dir(cache_dir).glob("tree-*") if p.is_dir())


def runner_problem(elf: Path) -> str | None:
    """Why a cached runner cannot be trusted (its bytes differ from its build
    record, or it has none), or ``None``."""
    from et_hil.executor_runner.build_record import read_build_record

    record = read_build_record(elf)
    if record is None or not record.get("elf_sha256"):
        return "build record missing or unreadable"
    digest = hashlib.sha256()
    with elf.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != record["elf_sha256"]:
        return "ELF differs from the SHA-256 in its build record"
    return None


def parse_ops(text: str) -> tuple[str, ...]:
    """``--ops a,b`` into a tuple (blanks dropped)."""
    return tuple(op.strip() for op in text.split(",") if op.strip())


def describe(built: BuiltRunner) -> Sequence[str]:
    """Lines for ``et-hil firmware build``."""
    r = built.record
    kernels = "wide" if r.get("wide") else "selected"
    sizes = r.get("sizes") or {}
    return [
        f"runner: {built.elf}",
        f"{'built' if built.built else 'cached'} in {built.seconds:.1f} s; "
        f"{kernels} kernel list of {len(r.get('operators') or [])} operators"
        f"{' with CMSIS-NN' if r.get('cmsis') else ''}; "
        f"intermediate-output buffer {r.get('intermediate_buffer_bytes') or 'none'}; "
        f"text {sizes.get('text', '?')} bytes",
        f"sha256: {r.get('elf_sha256')}",
    ]
