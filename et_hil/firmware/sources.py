"""The upstream sources the firmware recipe builds from.

Either an ExecuTorch checkout given by the caller, or the pinned source bundle
(``/work/shared/third_party`` by default, ``$ET_HIL_THIRD_PARTY`` to move it):
zstd tarballs plus ``SHA256SUMS``. The bundle is checked and unpacked once into
a cache folder keyed by the checksum file, so every build from the same bundle
shares one tree::

    <cache>/sources/<key>/executorch/   (with third-party/{flatbuffers,flatcc,gflags,json}
                                         and backends/xnnpack/third-party/FXdiv)
    <cache>/sources/<key>/cmsis6/ cmsis-nn/ core_driver/

The Arm pieces (CMSIS 6, CMSIS-NN, the Ethos-U core driver) always come from the
bundle: an ExecuTorch checkout does not contain them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import filelock

from et_hil.errors import ConfigError, InfrastructureError
from et_hil.firmware.settings import UNPACK_TIMEOUT_S
from et_hil.firmware.steps import run_step

# Where the pinned bundle is looked for when $ET_HIL_THIRD_PARTY is not set: beside
# the checkout, as the project's machines have it (../shared/third_party).
BUNDLE_BESIDE_CHECKOUT = Path("..") / "shared" / "third_party"
CHECKSUMS = "SHA256SUMS"
_COMPLETE = ".unpacked"

# Where each tarball's top folder goes, relative to the unpack root, by the
# tarball name's prefix (the part before the "-<commit>" suffix).
_DESTINATIONS = {
    "executorch": ".",
    "flatbuffers": "executorch/third-party",
    "flatcc": "executorch/third-party",
    "gflags": "executorch/third-party",
    "json": "executorch/third-party",
    "FXdiv": "executorch/backends/xnnpack/third-party",
    "cmsis6": ".",
    "cmsis-nn": ".",
    "core_driver": ".",
}


@dataclass(frozen=True)
class SourceTree:
    """Folders of one set of sources; ``executorch`` is the one that is built."""

    executorch: Path
    cmsis: Path  # CMSIS 6: CMSIS/Core/Include
    cmsis_nn: Path
    core_driver: Path


def default_bundle() -> Path:
    """``$ET_HIL_THIRD_PARTY``, else ``../shared/third_party`` beside the et-hil
    checkout (or beside the current folder)."""
    if env := os.environ.get("ET_HIL_THIRD_PARTY"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    for base in (checkout, Path.cwd()):
        candidate = (base / BUNDLE_BESIDE_CHECKOUT).resolve()
        if (candidate / CHECKSUMS).is_file():
            return candidate
    return (checkout / BUNDLE_BESIDE_CHECKOUT).resolve()


def read_checksums(bundle: Path) -> dict[str, str]:
    """``SHA256SUMS`` of ``bundle`` as {tarball name: hex digest}."""
    sums = bundle / CHECKSUMS
    if not sums.is_file():
        raise ConfigError(f"source bundle {bundle}: no {CHECKSUMS}")
    entries: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = digest.lower()
    return entries


def verify_bundle(bundle: Path) -> dict[str, str]:
    """Check every tarball of ``bundle`` against ``SHA256SUMS``; returns the sums."""
    entries = read_checksums(bundle)
    for name, expected in entries.items():
        path = bundle / name
        if not path.is_file():
            raise ConfigError(f"source bundle {bundle}: {name} is missing")
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise ConfigError(f"source bundle {bundle}: {name} fails its SHA-256 check")
    return entries


def _prefix(tarball: str) -> str:
    """``flatcc-896db547.tar.zst`` -> ``flatcc``; ``cmsis-nn-dbf45dbf...`` -> ``cmsis-nn``."""
    return tarball.removesuffix(".tar.zst").rsplit("-", 1)[0]


def _untar(tarball: Path, dest: Path, log: Path, timeout_s: float) -> None:
    if shutil.which("zstd") is None:
        raise InfrastructureError(
            "zstd is needed to unpack the source bundle (apt-get install zstd)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    finished = run_step(
        f"unpacking {tarball.name}",
        ["tar", "--zstd", "-xf", str(tarball), "-C", str(dest)],
        log_path=log,
        timeout_s=timeout_s,
        setting="[qemu.firmware] unpack_timeout_s",
        append=True,
    )
    if finished.returncode != 0:
        raise InfrastructureError(
            f"unpacking {tarball.name} failed (exit {finished.returncode}); see {log}"
        )


def _tree(root: Path, executorch: Path | None = None) -> SourceTree:
    return SourceTree(
        executorch=executorch or root / "executorch",
        cmsis=root / "cmsis6",
        cmsis_nn=root / "cmsis-nn",
        core_driver=root / "core_driver",
    )


def unpack_bundle(bundle: Path, cache_dir: Path, timeout_s: float = UNPACK_TIMEOUT_S) -> Path:
    """Unpack ``bundle`` (checked first) under ``cache_dir``; returns the unpack root.

    Reuses an earlier unpack of the same ``SHA256SUMS``. Safe when several
    processes ask at once: one unpacks into a temporary folder and renames it.
    Each tarball has ``timeout_s``; tar's messages go to
    ``<cache_dir>/sources/<key>.unpack.log``.

    Raises:
        FirmwareStepTimeout: a tarball was still unpacking at ``timeout_s``.
        InfrastructureError: tar failed, or zstd is missing.
    """
    key = hashlib.sha256((bundle / CHECKSUMS).read_bytes()).hexdigest()[:16]
    base = cache_dir / "sources"
    root = base / key
    if (root / _COMPLETE).is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(base / f"{key}.lock")):
        if (root / _COMPLETE).is_file():
            return root
        entries = verify_bundle(bundle)
        unknown = sorted(n for n in entries if _prefix(n) not in _DESTINATIONS)
        if unknown:
            raise ConfigError(f"source bundle {bundle}: unexpected tarballs {unknown}")
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=base))
        log = base / f"{key}.unpack.log"
        log.unlink(missing_ok=True)  # this unpack's messages only
        # ExecuTorch first: the submodule tarballs go inside it.
        for name in sorted(entries, key=lambda n: _prefix(n) != "executorch"):
            _untar(bundle / name, staging / _DESTINATIONS[_prefix(name)], log, timeout_s)
        (staging / _COMPLETE).write_text(key + "\n")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    return root


def unpacked_bundles(cache_dir: Path) -> list[Path]:
    """The source bundles unpacked under ``cache_dir`` (one per ``SHA256SUMS``)."""
    return sorted(p.parent for p in (cache_dir / "sources").glob(f"*/{_COMPLETE}"))


def find_sources_problem(executorch_src: Path | None) -> tuple[str, str] | None:
    """Why a build could not get its sources, as ``(what, how to fix)``; ``None`` if it can.

    Cheap: looks for the files, does not hash the tarballs.
    """
    bundle = default_bundle()
    if not (bundle / CHECKSUMS).is_file():
        return (
            f"no source bundle at {bundle} (CMSIS 6, CMSIS-NN and the Ethos-U driver come from it)",
            "set ET_HIL_THIRD_PARTY to the folder with the tarballs and SHA256SUMS, or make "
            "one from git checkouts with 'et-hil firmware bundle' "
            "(docs/boards/qemu.md, 'The source bundle')",
        )
    missing = sorted(n for n in read_checksums(bundle) if not (bundle / n).is_file())
    if missing:
        return (f"source bundle {bundle} lacks {', '.join(missing)}", "restore the bundle")
    if (
        executorch_src is not None
        and not (
            executorch_src / "examples/arm/executor_runner/standalone/CMakeLists.txt"
        ).is_file()
    ):
        return (
            f"{executorch_src} is not an ExecuTorch source tree with the Arm runner",
            "pass an ExecuTorch checkout (1.5 or newer), or none to use the bundle",
        )
    return None


def resolve_sources(
    executorch_src: Path | None,
    *,
    bundle: Path | None = None,
    cache_dir: Path,
    unpack_timeout_s: float = UNPACK_TIMEOUT_S,
) -> SourceTree:
    """The sources to build: ``executorch_src`` if given, else the bundle's ExecuTorch.

    The Arm pieces come from the bundle in both cases.
    """
    root = unpack_bundle(bundle or default_bundle(), cache_dir, unpack_timeout_s)
    if executorch_src is None:
        return _tree(root)
    src = executorch_src.resolve()
    if not (src / "examples/arm/executor_runner/standalone/CMakeLists.txt").is_file():
        raise ConfigError(f"{src} is not an ExecuTorch source tree with the Arm runner")
    return _tree(root, executorch=src)
