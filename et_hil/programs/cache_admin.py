"""What ``et-hil cache`` does with artifacts: sizes, a full check, pruning by use.

The entries are artifacts and the fronts they were lowered from (the exported,
and quantized, programs targets share: :mod:`et_hil.programs.front`); an artifact
keeps a hard link to its front's program, so removing either frees nothing of
the other. Pruning removes entries, least recently used first (a hit stamps its
entry folder's time; a front is used when an artifact is built from it), and
never one a live session holds (:mod:`et_hil.programs.cache_use`).
The firmware builds and source bundles beside them are
:mod:`et_hil.firmware.service`'s and :mod:`et_hil.firmware.sources`' to list.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import uuid
from pathlib import Path

from et_hil.programs.cache import verify_entry
from et_hil.programs.cache_use import unused
from et_hil.programs.front import FACTS_NAME


@dataclasses.dataclass(frozen=True)
class Entry:
    """One artifact in the cache.

    Attributes:
        key: its cache key.
        folder: where it is.
        size: bytes of its files.
        shared: bytes of files also linked from elsewhere (repro folders): removing
            the entry does not free them.
        last_used: when a session last found or built it (seconds since the epoch).
        kind: ``artifact``, or ``front`` (an exported program targets share).
    """

    key: str
    folder: Path
    size: int
    shared: int
    last_used: float
    kind: str = "artifact"


def _sizes(folder: Path) -> tuple[int, int]:
    """(bytes of the files under ``folder``, bytes of those with other hard links)."""
    total = shared = 0
    for path in folder.rglob("*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink():
            total += st.st_size
            shared += st.st_size if st.st_nlink > 1 else 0
    return total, shared


def entries(root: Path) -> list[Entry]:
    """The artifacts of the cache at ``root``, least recently used first."""
    found = []
    for folder in (root / "entries").glob("*/*"):
        try:
            last_used = folder.stat().st_mtime
        except OSError:
            continue  # pruned meanwhile
        size, shared = _sizes(folder)
        kind = "front" if (folder / FACTS_NAME).is_file() else "artifact"
        found.append(Entry(folder.name, folder, size, shared, last_used, kind))
    return sorted(found, key=lambda e: (e.last_used, e.key))


def counted(entries: list[Entry]) -> str:
    """``3 artifacts``, or ``3 artifacts and 2 fronts``: what ``entries`` are."""
    fronts = sum(e.kind == "front" for e in entries)
    text = f"{len(entries) - fronts} artifacts"
    return text + (f" and {fronts} fronts" if fronts else "")


def disk_usage(entries: list[Entry]) -> tuple[int, int]:
    """(bytes on disk of ``entries``' files, each linked file once; bytes of those
    also linked from outside them: repro folders)."""
    links: dict[tuple[int, int], list[int]] = {}  # inode: [size, links seen, links]
    for entry in entries:
        for path in entry.folder.rglob("*"):
            try:
                st = path.lstat()
            except OSError:
                continue
            if path.is_file() and not path.is_symlink():
                seen = links.setdefault((st.st_dev, st.st_ino), [st.st_size, 0, st.st_nlink])
                seen[1] += 1
    total = sum(size for size, _, _ in links.values())
    outside = sum(size for size, seen, nlink in links.values() if nlink > seen)
    return total, outside


@dataclasses.dataclass
class Pruned:
    """What a prune did.

    Attributes:
        removed: entries removed, oldest first.
        in_use: entries that would have gone but a session holds.
        remaining: bytes of the artifacts left.
    """

    removed: list[Entry] = dataclasses.field(default_factory=list)
    in_use: list[Entry] = dataclasses.field(default_factory=list)
    remaining: int = 0

    @property
    def freed(self) -> int:
        """Bytes given back to the disk (files not linked from elsewhere)."""
        return sum(e.size - e.shared for e in self.removed)


def remove_entry(root: Path, entry: Entry) -> bool:
    """Remove one artifact unless a session holds it; True when removed."""
    with unused(root / "locks", entry.key) as free:
        if not free:
            return False
        tmp = root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        trash = tmp / f"pruned-{uuid.uuid4().hex}"
        try:
            os.rename(entry.folder, trash)  # atomic: a lookup sees it whole or gone
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True


def prune(
    root: Path,
    *,
    max_bytes: int | None = None,
    older_than_s: float | None = None,
    now: float | None = None,
) -> Pruned:
    """Remove artifacts unused for ``older_than_s``, then the least recently used
    until the artifacts take at most ``max_bytes``; never one a session holds."""
    now = time.time() if now is None else now
    found = entries(root)
    total = sum(e.size for e in found)
    result = Pruned()
    for entry in found:
        stale = older_than_s is not None and now - entry.last_used > older_than_s
        too_big = max_bytes is not None and total > max_bytes
        if not (stale or too_big):
            continue
        if remove_entry(root, entry):
            result.removed.append(entry)
            total -= entry.size
        else:
            result.in_use.append(entry)
    result.remaining = total
    return result


def verify(root: Path) -> list[tuple[Entry, str]]:
    """Hash every file of every artifact; returns the broken ones and why."""
    return [
        (entry, reason)
        for entry in entries(root)
        if (reason := verify_entry(entry.folder, full=True)) is not None
    ]


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    return _sizes(folder)[0] if folder.is_dir() else 0


def mb(size: int) -> str:
    """``size`` bytes in MiB, as ``et-hil cache`` prints sizes."""
    return f"{size / 2**20:.1f} MiB"


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GiB``, ``800000`` (bytes) as bytes; K, M, G and T are
    powers of 1024, with or without ``i``/``B``, as ``du`` and Docker read them.

    Raises:
        ValueError: not a size.
    """
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    power = "KMGT".find(value[-1:]) + 1 if value[-1:].isalpha() else 0
    if value[-1:].isalpha() and power == 0:
        raise ValueError(f"not a size: {text!r} (e.g. 500M, 2G)")
    number = float(value[:-1] if power else value)
    if number < 0:
        raise ValueError(f"not a size: {text!r} (e.g. 500M, 2G)")
    return int(number * 1024**power)


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``45m``, ``90s`` (or seconds) as seconds.

    Raises:
        ValueError: not an age.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in units else "s"
    number = float(value[:-1] if value[-1:] in units else value)
    if number < 0:
        raise ValueError(f"not an age: {text!r} (e.g. 30d, 12h)")
    return number * units[unit]
