"""Content-addressed store of built artifacts, safe across processes.

Layout under the cache root::

    entries/<key[:2]>/<key>/      one finished entry (files + manifest.json)
    locks/<key>.lock              held while the entry is being built
    tmp/                          entries being written, renamed into place when done

An entry appears only by an atomic ``rename`` of a complete folder, and its
``manifest.json`` (written last) records the size, modification time
(``mtime_ns``) and SHA-256 of every file. A lookup checks sizes and times
against the manifest, hashes the files that decide what runs (the program and
its metadata, :data:`HASHED_ON_EVERY_HIT`) every time, and hashes any other
file only when its time differs (or could not be recorded: see
:func:`write_manifest`); an entry that fails is removed and rebuilt, never
used. ``verify_entry(folder, full=True)`` hashes every file (bit rot, or a
file rewritten with its old time restored). Builders of the same key
serialize on a file lock, so concurrent xdist workers and separate pytest runs
build each key once.

Each process holds the entries it uses (:mod:`et_hil.programs.cache_use`), and
each hit stamps its entry folder's time: ``et-hil cache prune`` removes the
least recently used first and never an entry a session holds
(:mod:`et_hil.programs.cache_admin`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import filelock

from et_hil.errors import InfrastructureError
from et_hil.programs.artifact import METADATA_NAME, PTE_NAME
from et_hil.programs.cache_use import EntryUses

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK_TIMEOUT_S = 1800.0  # a cold build of a large model under a slow lowering
# Hashed on every hit, whatever their times say: a program rewritten in place
# with its size and time kept would otherwise be served, and crash, on every
# rerun. SHA-256 of a 10 MB program takes about 8 ms here (SHA-NI); the other
# files (ETRecord, the fake-quant reference) are checked by size and time, and
# hashed by `et-hil cache verify`.
HASHED_ON_EVERY_HIT = (PTE_NAME, METADATA_NAME)


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


# How long write_manifest waits for the filesystem clock to pass the files'
# times (Linux stamps files from a clock with a tick of a few ms; filesystems
# with 1-2 s stamps would wait too long, so their files are hashed on hits).
SETTLE_MAX_S = 0.05


def _records(folder: Path, hashes: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Size, mtime_ns and SHA-256 of every file of ``folder`` but the manifest
    (``hashes``: SHA-256 already known by name, not computed again)."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == MANIFEST:
            continue
        name = path.relative_to(folder).as_posix()
        st = path.stat()
        known = (hashes or {}).get(name)
        records[name] = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": known or _sha256(path),
        }
    return records


def _stamp(manifest: Path, records: dict[str, dict[str, Any]]) -> str:
    """The manifest text for ``records``, written to ``manifest``.

    A hit trusts a file whose size and time match the manifest. That holds only
    if any later write gives the file a different time: timestamps are coarse,
    so a write in the same clock tick as the build would keep the recorded
    time. The manifest's own time tells when the tick is over: wait (briefly)
    until it is later than every file's, and record no time (hash on every
    hit) for a file still in the manifest's tick.
    """
    manifest.write_text("{}")
    newest = max((r["mtime_ns"] for r in records.values()), default=0)
    deadline = time.monotonic() + SETTLE_MAX_S
    while manifest.stat().st_mtime_ns <= newest and time.monotonic() < deadline:
        time.sleep(0.002)
        os.utime(manifest)  # now, on the filesystem's clock
    settled = manifest.stat().st_mtime_ns
    for record in records.values():
        if record["mtime_ns"] >= settled:
            record["mtime_ns"] = None
    text = json.dumps({"files": records}, indent=1)
    manifest.write_text(text)
    return text


def write_manifest(folder: Path) -> None:
    """Record size, mtime_ns and SHA-256 of every file in ``folder`` (call when
    it is complete; takes up to ``SETTLE_MAX_S`` more, see :func:`_stamp`)."""
    _stamp(folder / MANIFEST, _records(folder))


def _read_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
        for info in files.values():
            if not isinstance(info["size"], int) or not isinstance(info["sha256"], str):
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return files if isinstance(files, dict) else None


def verify_entry(folder: Path, *, full: bool = False, always: Collection[str] = ()) -> str | None:
    """Why the entry at ``folder`` cannot be used, or ``None`` when it is intact.

    Every file must exist with the size in the manifest. A file whose
    modification time is the recorded one is taken as unchanged, unless it is
    named in ``always``; any other (and every file when ``full``) is hashed and
    compared.
    """
    return _check(folder, full=full, always=always)[0]


def _check(folder: Path, *, full: bool, always: Collection[str] = ()) -> tuple[str | None, bool]:
    """(problem or None, whether some file's time differed but its content matched)."""
    files = _read_manifest(folder)
    if files is None:
        return "manifest missing or unreadable", False
    stale = False
    for name, info in files.items():
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            return f"{name}: missing", False
        if st.st_size != info["size"]:
            return f"{name}: size differs from the manifest", False
        same_time = info.get("mtime_ns") is not None and st.st_mtime_ns == info["mtime_ns"]
        if same_time and not full and name not in always:
            continue
        if _sha256(path) != info["sha256"]:
            return f"{name}: content differs from the manifest", False
        stale = stale or not same_time
    return None, stale


class ArtifactCache:
    """A content-addressed folder store.

    Args:
        root: the cache folder (created when needed).
        enabled: when False every lookup misses and builds go to a private
            temporary folder (``--et-no-cache``).
        full_verify: hash every file of an entry on every hit, rather than
            trusting files whose size and time match the manifest.
        hashed_on_hit: files hashed on every hit even when their size and
            time match the manifest.
    """

    def __init__(
        self,
        root: Path,
        *,
        enabled: bool = True,
        full_verify: bool = False,
        hashed_on_hit: Collection[str] = HASHED_ON_EVERY_HIT,
    ) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.full_verify = full_verify
        self.hashed_on_hit = frozenset(hashed_on_hit)
        self._scratch: Path | None = None
        self._uses = EntryUses(self.root / "locks")

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
        self._uses.hold(key)  # before the check: a prune cannot take it from here on
        problem, stale = _check(folder, full=self.full_verify, always=self.hashed_on_hit)
        if problem is None:
            if stale:
                self._restamp(folder)
            with contextlib.suppress(OSError):  # last use, for prune (read-only: skipped)
                os.utime(folder)
            return folder
        log.warning("cache entry %s is corrupt (%s); rebuilding it", folder, problem)
        return None

    def _restamp(self, folder: Path) -> None:
        """Record the current times of an intact entry whose files were touched
        or copied (a CI cache restore, ``cp -r``), so later hits need no hashing.
        Best effort: a read-only shared cache keeps hashing those files."""
        files = _read_manifest(folder)
        if files is None:
            return
        tmp_root = self.root / "tmp"
        try:
            tmp_root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="manifest-", dir=tmp_root)
            os.close(fd)
            tmp = Path(name)
            try:
                records = _records(folder, {n: info["sha256"] for n, info in files.items()})
                if set(records) != set(files):
                    return  # files added or removed since the check: leave it to the next lookup
                _stamp(tmp, records)
                tmp.chmod(0o644)  # mkstemp makes it 0600; a shared cache must be readable
                # atomic: a concurrent reader sees the old manifest or the new one
                os.replace(tmp, folder / MANIFEST)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("cache entry %s: manifest not refreshed (%s)", folder, exc)

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
                "choose another with --et-build-cache DIR or ET_HIL_CACHE_DIR"
            ) from exc
        self._uses.hold(key)
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
        """Let go of the entries this process used; delete the scratch folder of
        ``--et-no-cache`` builds."""
        self._uses.release_all()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
