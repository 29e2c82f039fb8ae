"""Keeping files as evidence without copying them: hard links, copies where links fail.

A repro folder needs the program it ran, which is already in the build cache. A
hard link keeps those bytes alive for as long as the repro folder does (pruning
or clearing the cache removes only the cache's name for them) and costs no
space while both exist. Where a link cannot be made (another filesystem, a
cache owned by another user) the file is copied.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path


def keep_file(source: Path, target: Path) -> bool:
    """``target`` becomes ``source``'s bytes: linked if possible (True), else copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link(source, target)
        return True
    except OSError:
        shutil.copyfile(source, target)
        return False


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def keep_tree(source: Path, target: Path, known: list[Path]) -> None:
    """Copy the folder ``source`` to ``target``, linking each file that holds the
    same bytes as one of ``known`` (a run folder's copy of the program) to it."""
    sizes: dict[int, list[Path]] = {}
    for path in known:
        sizes.setdefault(path.stat().st_size, []).append(path)
    digests: dict[Path, str] = {}
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir() and not path.is_symlink():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        if not path.is_file() or path.is_symlink():
            continue
        same = None
        for candidate in sizes.get(path.stat().st_size, []):
            if candidate not in digests:
                digests[candidate] = _digest(candidate)
            if digests[candidate] == _digest(path):
                same = candidate
                break
        if same is not None:
            keep_file(same, destination)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def own_bytes(folder: Path, shared_with: Path | None = None) -> int:
    """Bytes of ``folder``'s files that are its own: files hard-linked to a file
    under ``shared_with`` (the build cache) do not count, nor does a second link
    to one inode inside the folder."""
    outside: set[tuple[int, int]] = set()
    if shared_with is not None and shared_with.is_dir():
        outside = {
            (st.st_dev, st.st_ino)
            for p in shared_with.rglob("*")
            if p.is_file() and (st := p.stat()).st_nlink > 1
        }
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        st = path.stat()
        inode = (st.st_dev, st.st_ino)
        if inode in outside or inode in seen:
            continue
        seen.add(inode)
        total += st.st_size
    return total
