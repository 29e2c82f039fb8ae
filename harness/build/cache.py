"""Content-addressed store of built artifacts, safe across processes.

Layout under the cache root::

    entries/<key[:2]>/<key>/      one finished entry (files + manifest.json)
    locks/<key>.lock              held while the entry is being built
    tmp/                          entries being written, renamed into place when done

An entry appears only by an atomic ``rename`` of a complete folder, and its
``manifest.json`` (written last) records the size and SHA-256 of every file.
A lookup verifies the manifest; an entry that fails it is removed and rebuilt,
never used. Builders of the same key serialize on a file lock, so concurrent
xdist workers and separate pytest runs build each key once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from harness.errors import InfrastructureError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK_TIMEOUT_S = 1800.0  # a cold build of a large model under a slow lowering


def default_cache_dir() -> Path:
    """``$ET_HIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/et-hil``, else ``~/.cache/et-hil``."""
    if env := os.environ.get("ET_HIL_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "et-hil"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record size and SHA-256 of every file in ``folder`` (call when it is complete)."""
    files = {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def verify_entry(folder: Path) -> str | None:
    """Why the entry at ``folder`` cannot be used, or ``None`` when it is intact."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "manifest missing or unreadable"
    for name, info in files.items():
        path = folder / name
        try:
            if path.stat().st_size != info["size"]:
                return f"{name}: size differs from the manifest"
        except OSError:
            return f"{name}: missing"
        if _sha256(path) != info["sha256"]:
            return f"{name}: content differs from the manifest"
    return None


class ArtifactCache:
    """A content-addressed folder store.

    Args:
        root: the cache folder (created when needed).
        enabled: when False every lookup misses and builds go to a private
            temporary folder (``--no-cache``).
    """

    def __init__(self, root: Path, *, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self._scratch: Path | None = None

    def entry_dir(self, key: str) -> Path:
        """Where the entry for ``key`` lives once built."""
        return self.root / "entries" / key[:2] / key

    def lookup(self, key: str) -> Path | None:
        """The verified entry for ``key``, or ``None`` (a corrupt entry is logged here
        and replaced by the next :meth:`get_or_build`)."""
        if not self.enabled:
            return None
        folder = self.entry_dir(key)
        if not folder.exists():
            return None
        problem = verify_entry(folder)
        if problem is None:
            return folder
        log.warning("cache entry %s is corrupt (%s); rebuilding it", folder, problem)
        return None

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(lock_dir / f"{key}.lock"), timeout=LOCK_TIMEOUT_S)
        try:
            with lock:
                yield
        except filelock.Timeout as exc:
            raise InfrastructureError(
                f"cache {self.root}: waited {LOCK_TIMEOUT_S:.0f} s for another process "
                f"building {key[:12]}; remove {lock_dir / (key + '.lock')} if no build is running"
            ) from exc

    def get_or_build(self, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return the entry for ``key``, building it with ``build(folder)`` on a miss.

        ``build`` writes the entry's files into the empty folder it is given.

        Returns:
            (entry folder, True when it came from the cache).
        """
        if not self.enabled:
            return self._build_uncached(key, build), False
        if (hit := self.lookup(key)) is not None:
            return hit, True
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfrastructureError(
                f"cache folder {self.root} cannot be created ({exc.strerror}); "
                "choose another with --build-cache DIR or ET_HIL_CACHE_DIR"
            ) from exc
        with self._lock(key):
            # Another process may have finished it while we waited for the lock.
            if (hit := self.lookup(key)) is not None:
                return hit, True
            final = self.entry_dir(key)
            tmp_root = self.root / "tmp"
            tmp_root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{key[:12]}-", dir=tmp_root))
            staging.chmod(0o755)  # mkdtemp makes it 0700; a shared cache must be readable
            try:
                build(staging)
                write_manifest(staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():  # corrupt: move aside atomically, then delete
                    trash = tmp_root / f"corrupt-{uuid.uuid4().hex}"
                    os.rename(final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                os.rename(staging, final)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return final, False

    def _build_uncached(self, key: str, build: Callable[[Path], None]) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="et-hil-nocache-"))
        folder = self._scratch / f"{key[:16]}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        build(folder)
        write_manifest(folder)
        return folder

    def close(self) -> None:
        """Delete the scratch folder of ``--no-cache`` builds."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
