"""``et-hil firmware bundle``: make the source bundle from git checkouts.

The QEMU boards' runner is built from a source bundle (:mod:`et_hil.firmware.sources`):
zstd tarballs of ExecuTorch, the submodules its bare-metal configure reads, CMSIS 6,
CMSIS-NN and the Ethos-U core driver, with ``SHA256SUMS``. A user who installed
et-hil with pip has none; this makes one from checkouts they cloned (at the
commits docs/boards/qemu.md, 'The source bundle', names), each tarball
``git archive`` of the checked-out commit under the top folder the unpacker
expects. Point ``ET_HIL_THIRD_PARTY`` at it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

from et_hil.errors import ConfigError
from et_hil.firmware.steps import query, run_step

# ExecuTorch's submodules the runner build needs, by their path in the checkout.
SUBMODULES = {
    "flatbuffers": "third-party/flatbuffers",
    "flatcc": "third-party/flatcc",
    "gflags": "third-party/gflags",
    "json": "third-party/json",
    "FXdiv": "backends/xnnpack/third-party/FXdiv",
}
# tar | zstd -19 of the pinned bundle's ExecuTorch sources (19 MB with their
# submodules) measured 20 s on 2 busy cores; a checkout's are a few times larger.
ARCHIVE_TIMEOUT_S = 1800.0
LOG_NAME = "bundle.log"
# One process group for both ends of the pipe, so a timeout kills both; pipefail:
# a failing git archive fails the step, not only a failing zstd.
_ARCHIVE = (
    'set -o pipefail; git -C "$1" archive --format=tar --prefix="$2/" "$3" | zstd -q -19 -f -o "$4"'
)


@dataclasses.dataclass(frozen=True)
class Part:
    """One tarball: its top folder's name and the checkout it is made from."""

    name: str
    checkout: Path


def _commit(checkout: Path, what: str) -> str:
    done = query(f"the commit of {checkout}", ["git", "-C", str(checkout), "rev-parse", "HEAD"])
    if done.returncode != 0 or not done.stdout.strip():
        raise ConfigError(
            f"{what} {checkout} is not a git checkout ({done.stderr.strip() or 'no commit'}); "
            "clone it at the commit docs/boards/qemu.md, 'The source bundle', names"
        )
    return done.stdout.strip()


def parts(executorch: Path, cmsis6: Path, cmsis_nn: Path, core_driver: Path) -> list[Part]:
    """Every tarball of a bundle, from an ExecuTorch checkout (with its submodules) and
    the three Arm checkouts.

    Raises:
        ConfigError: a folder that is not a git checkout, or a submodule not checked out.
    """
    if not (executorch / "examples/arm/executor_runner").is_dir():
        raise ConfigError(
            f"--executorch {executorch} is not an ExecuTorch checkout with the Arm runner "
            "(examples/arm/executor_runner)"
        )
    found = [Part("executorch", executorch)]
    for name, where in SUBMODULES.items():
        path = executorch / where
        if not (path / ".git").exists():
            raise ConfigError(
                f"ExecuTorch submodule {where} is not checked out in {executorch}: "
                f"git -C {executorch} submodule update --init {where}"
            )
        found.append(Part(name, path))
    found += [Part("cmsis6", cmsis6), Part("cmsis-nn", cmsis_nn), Part("core_driver", core_driver)]
    return found


def make_bundle(out: Path, found: list[Part]) -> list[Path]:
    """Write each part as ``<name>-<commit>.tar.zst`` and ``SHA256SUMS`` into ``out``
    (what git and zstd said, in ``out/bundle.log``).

    Raises:
        ConfigError: a checkout is not a git checkout; zstd is not installed.
        FirmwareStepTimeout: archiving a checkout took over ``ARCHIVE_TIMEOUT_S``.
    """
    if shutil.which("zstd") is None:
        raise ConfigError("zstd is needed to make the bundle (apt-get install zstd)")
    out.mkdir(parents=True, exist_ok=True)
    log = out / LOG_NAME
    log.unlink(missing_ok=True)
    made = []
    for part in found:
        commit = _commit(part.checkout, part.name)
        tarball = out / f"{part.name}-{commit[:8]}.tar.zst"
        finished = run_step(
            f"archiving {part.name}",
            [
                "bash",
                "-c",
                _ARCHIVE,
                "archive",
                str(part.checkout),
                part.name,
                commit,
                str(tarball),
            ],
            log_path=log,
            timeout_s=ARCHIVE_TIMEOUT_S,
            setting="ARCHIVE_TIMEOUT_S in et_hil/firmware/bundle_make.py",
            append=True,
        )
        if finished.returncode != 0:
            raise ConfigError(f"{part.name}: git archive of {part.checkout} failed; see {log}")
        made.append(tarball)
    sums = "".join(f"{_sha256(p)}  {p.name}\n" for p in made)
    (out / "SHA256SUMS").write_text(sums)
    return made


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
