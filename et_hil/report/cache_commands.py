"""``et-hil cache``: what the build cache holds, a full check, clearing and pruning.

``info`` (the default) shows artifacts (and the exported fronts they were
lowered from), runner firmware builds and their build trees, and unpacked
source bundles; ``verify`` hashes every artifact file and every runner ELF
against its build record; ``prune`` removes artifacts and fronts by age and
least recent use, never one a live session holds; ``clear`` empties the
artifacts and fronts.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from et_hil.programs import cache_admin
from et_hil.programs.cache_admin import mb


def _size(text: str) -> int:
    try:
        return cache_admin.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _age(text: str) -> float:
    try:
        return cache_admin.parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``cache`` subcommand of ``et-hil``."""
    cache = sub.add_parser(
        "cache",
        parents=[common],
        help="show, check, prune or clear the build cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache.add_argument(
        "action", choices=("info", "verify", "prune", "clear"), nargs="?", default="info"
    )
    cache.add_argument(
        "--max-size",
        type=_size,
        metavar="SIZE",
        help="prune: remove the least recently used artifacts until they take at most "
        "SIZE (500M, 2G; powers of 1024)",
    )
    cache.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="prune: remove artifacts not used for AGE (30d, 12h, 45m)",
    )
    cache.add_argument(
        "--remove", action="store_true", help="verify: also remove what fails the check"
    )
    cache.set_defaults(func=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    """Run one ``et-hil cache`` action on ``--build-cache`` (or the default cache)."""
    from et_hil.errors import ConfigError
    from et_hil.programs.cache import default_cache_dir

    root = Path(args.build_cache or default_cache_dir())
    if args.action != "prune" and (args.max_size is not None or args.older_than is not None):
        raise ConfigError("--max-size and --older-than go with 'et-hil cache prune'")
    if args.action != "verify" and args.remove:
        raise ConfigError("--remove goes with 'et-hil cache verify'")
    if args.action == "clear":
        entries = cache_admin.entries(root)
        # Only what the cache made: the root may be a folder the user also uses,
        # and lock files may be held by running builds.
        for part in ("entries", "tmp"):
            shutil.rmtree(root / part, ignore_errors=True)
        print(f"removed {cache_admin.counted(entries)} from {root}")
        return 0
    if args.action == "prune":
        return _prune(root, args.max_size, args.older_than)
    if args.action == "verify":
        return _verify(root, args.remove)
    _info(root)
    return 0


def _info(root: Path) -> None:
    from et_hil.firmware.service import build_trees, cached_runners
    from et_hil.firmware.sources import unpacked_bundles

    entries = cache_admin.entries(root)
    artifacts = [e for e in entries if e.kind == "artifact"]
    fronts = [e for e in entries if e.kind == "front"]
    total, shared = cache_admin.disk_usage(entries)
    runners = cached_runners(root)
    trees = build_trees(root)
    bundles = unpacked_bundles(root)
    sizes = {
        "firmware": sum(cache_admin.folder_size(elf.parent) for elf in runners),
        "trees": sum(cache_admin.folder_size(t) for t in trees),
        "sources": sum(cache_admin.folder_size(b) for b in bundles),
    }
    print(f"{root}: {mb(total + sum(sizes.values()))}")
    line = f"  artifacts:               {len(artifacts):4d}  {mb(total)}"
    if entries:
        days = (time.time() - entries[0].last_used) / 86400
        line += f" (least recently used {days:.1f} days ago"
        line += f"; {mb(shared)} also linked from repro folders)" if shared else ")"
    print(line)
    if fronts:
        # Their programs are linked from the artifacts built from them: counted above once.
        print(f"    and the fronts they were lowered from: {len(fronts)}")
    print(f"  runner firmware builds:  {len(runners):4d}  {mb(sizes['firmware'])}")
    for elf in runners:
        print(f"    {elf.parent.name}  {mb(elf.stat().st_size)} ELF")
    print(f"  firmware build trees:    {len(trees):4d}  {mb(sizes['trees'])}")
    print(f"  unpacked source bundles: {len(bundles):4d}  {mb(sizes['sources'])}")
    print(
        "prune artifacts with 'et-hil cache prune --max-size SIZE --older-than AGE'; "
        "firmware builds and sources are remade in minutes: remove them by hand if need be"
    )


def _prune(root: Path, max_bytes: int | None, older_than_s: float | None) -> int:
    from et_hil.errors import ConfigError

    if max_bytes is None and older_than_s is None:
        raise ConfigError("et-hil cache prune needs --max-size SIZE, --older-than AGE or both")
    pruned = cache_admin.prune(root, max_bytes=max_bytes, older_than_s=older_than_s)
    print(
        f"removed {cache_admin.counted(pruned.removed)}, least recently used first "
        f"({mb(pruned.freed)} freed); {mb(pruned.remaining)} of artifacts left in {root}"
    )
    linked = sum(e.shared for e in pruned.removed)
    if linked:
        print(f"  {mb(linked)} of them stays on disk, linked from repro folders")
    if pruned.in_use:
        print(
            f"  kept {cache_admin.counted(pruned.in_use)} a running session holds "
            f"({mb(sum(e.size for e in pruned.in_use))}); prune again when it has ended"
        )
    if max_bytes is not None and pruned.remaining > max_bytes:
        print(f"  still over {mb(max_bytes)}: what is left is in use")
        return 1
    return 0


def _verify(root: Path, remove: bool) -> int:
    from et_hil.firmware.service import cached_runners, runner_problem

    problems: list[tuple[str, Path, str]] = []
    entries = cache_admin.entries(root)
    for entry, reason in cache_admin.verify(root):
        problems.append((entry.kind, entry.folder, reason))
    runners = cached_runners(root)
    for elf in runners:
        if (trouble := runner_problem(elf)) is not None:
            problems.append(("runner", elf, trouble))
    for what, path, reason in problems:
        print(f"{what} {path}: {reason}")
        if remove:
            if what in ("artifact", "front"):
                done = cache_admin.remove_entry(root, _entry_of(entries, path))
            else:
                shutil.rmtree(path.parent, ignore_errors=True)
                done = not path.parent.exists()
            print(f"  {'removed' if done else 'in use by a session: not removed'}")
    print(
        f"checked {cache_admin.counted(entries)} and {len(runners)} runner builds in {root}: "
        + (f"{len(problems)} broken" if problems else "all intact")
        + ("" if remove or not problems else " (--remove deletes them; they are rebuilt on use)")
    )
    return 1 if problems else 0


def _entry_of(entries: list[cache_admin.Entry], folder: Path) -> cache_admin.Entry:
    return next(e for e in entries if e.folder == folder)
