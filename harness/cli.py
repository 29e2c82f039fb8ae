"""The ``et-hil`` command: what boards exist and can run here, and whether this machine is ready."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.boards import make_board
from harness.boardspec import load_boards
from harness.cache import default_cache_dir
from harness.errors import ConfigError
from harness.versions import installed_version

# The stack this version is built and tested against.
PINNED = {
    "torch": "2.13.0",
    "executorch": "1.5.1",
    "ethos-u-vela": "5.1.0",
    "tosa-tools": "2026.5.0",
}


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_boards(args: argparse.Namespace) -> int:
    """List known boards and whether each can run on this machine."""
    boards = load_boards(args.board_file)
    work_dir = Path(tempfile.gettempdir()) / "et-hil-cli"
    rows = [("board", "kind", "target", "runs here", "why not / how to fix")]
    for name, spec in sorted(boards.items()):
        availability = make_board(spec, work_dir).availability()
        note = "" if availability.ok else availability.reason
        if availability.hint:
            note += f"; {availability.hint}"
        rows.append((name, spec.kind, spec.target, "yes" if availability.ok else "no", note))
    print(_table(rows))
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    """The units of each serial board: port present, free or held, and by whom."""
    from harness import board_lock
    from harness.serial_config import parse_serial

    rows = [("board", "unit", "port", "present", "lock")]
    for name, spec in sorted(load_boards(args.board_file).items()):
        if spec.kind != "serial":
            continue
        for unit in parse_serial(spec.sections.get("serial"), spec.path).units:
            present = "://" in unit.port or Path(unit.port).exists()
            _, who = board_lock.unit_status(unit)
            rows.append((name, unit.name, unit.port, "yes" if present else "no", who))
    if len(rows) == 1:
        print("no serial boards (add a board file with --board-file)")
        return 0
    print(_table(rows))
    print(f"locks: {board_lock.lock_dir()}")
    return 0


def _check(ok: bool | None, what: str, detail: str) -> tuple[str, str, str]:
    status = {True: "ok", False: "FAIL", None: "warn"}[ok]
    return status, what, detail


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check this machine: Python, the pinned stack, the cache, boards, Docker, FVPs."""
    rows = [("status", "check", "detail")]
    py_ok = sys.version_info[:2] == (3, 11)
    rows.append(
        _check(py_ok, "python", f"{sys.version.split()[0]}" + ("" if py_ok else " (need 3.11)"))
    )
    for dist, pinned in PINNED.items():
        version = installed_version(dist)
        if version is None:
            rows.append(_check(False, dist, f"not installed; pip install '{dist}=={pinned}'"))
        else:
            same = version.split("+")[0] == pinned
            rows.append(
                _check(same or None, dist, version + ("" if same else f" (tested with {pinned})"))
            )
    cache = args.build_cache or default_cache_dir()
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache):
            pass
        rows.append(_check(True, "build cache", f"{cache} writable"))
    except OSError as exc:
        rows.append(_check(False, "build cache", f"{cache}: {exc.strerror}; set ET_HIL_CACHE_DIR"))
    try:
        boards = load_boards(args.board_file)
        work_dir = Path(tempfile.gettempdir()) / "et-hil-cli"
        for name, spec in sorted(boards.items()):
            a = make_board(spec, work_dir).availability()
            detail = "can run here" if a.ok else f"{a.reason}; {a.hint}".rstrip("; ")
            # Only the host board is required; others are optional equipment.
            rows.append(_check(a.ok if name == "host" else (a.ok or None), f"board {name}", detail))
    except ConfigError as exc:
        rows.append(_check(False, "board files", str(exc)))
    rows.append(_docker_check())
    for fvp in (
        "FVP_Corstone_SSE-300_Ethos-U55",
        "FVP_Corstone_SSE-300_Ethos-U65",
        "FVP_Corstone_SSE-320",
    ):
        path = shutil.which(fvp)
        rows.append(
            _check(
                True if path else None,
                fvp,
                path or "not on PATH (Arm FVP, EULA download; see README 'Corstone FVPs')",
            )
        )
    print(_table(rows))
    failed = any(r[0] == "FAIL" for r in rows[1:])
    print("\n" + ("problems found: fix the FAIL lines above" if failed else "ready"))
    return 1 if failed else 0


def _docker_check() -> tuple[str, str, str]:
    try:
        import docker

        client = docker.from_env(timeout=5)  # type: ignore[attr-defined]
        version = client.version().get("Version", "?")
        return _check(True, "docker", f"engine {version} at {client.api.base_url}")
    except ImportError:
        return _check(None, "docker", "the docker Python package is missing (pip install docker)")
    except Exception as exc:  # any engine problem: say it, it is optional equipment
        from harness.boards.docker_fvp import engine_problem

        problem = engine_problem(exc)
        return _check(None, "docker", f"{problem.reason}; {problem.hint}".rstrip("; "))


def cmd_cache(args: argparse.Namespace) -> int:
    """Show or clear the artifact cache."""
    root = Path(args.build_cache or default_cache_dir())
    entries = list((root / "entries").glob("*/*")) if root.exists() else []
    if args.action == "clear":
        # Only what the cache made: the root may be a folder the user also uses,
        # and lock files may be held by running builds.
        for part in ("entries", "tmp"):
            shutil.rmtree(root / part, ignore_errors=True)
        print(f"removed {len(entries)} entries from {root}")
        return 0
    size = sum(p.stat().st_size for e in entries for p in e.rglob("*") if p.is_file())
    print(f"{root}: {len(entries)} entries, {size / 1e6:.1f} MB")
    return 0


def _docker_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "docker"


def cmd_docker(args: argparse.Namespace) -> int:
    """Build the FVP image, or remove containers left by killed sessions."""
    import docker
    import docker.errors

    from harness.boards.docker_fvp import DockerFvpExecutor, default_image

    tag = args.tag or default_image()
    if args.action == "reap":
        try:
            removed = DockerFvpExecutor(tag).reap_leftovers()
        except docker.errors.DockerException as exc:
            from harness.boards.docker_fvp import engine_problem

            problem = engine_problem(exc)
            print(f"et-hil: error: {problem.reason}; {problem.hint}", file=sys.stderr)
            return 1
        print(f"removed {len(removed)} leftover containers" + (f": {removed}" if removed else ""))
        return 0
    if not args.accept_eula:
        print(
            "The image holds the Arm Corstone FVPs and the Arm GNU toolchain, licensed under "
            "Arm's EULA (https://developer.arm.com/downloads/-/arm-ecosystem-fvps).\n"
            "Read it, then run again with --accept-eula to accept it and build.",
            file=sys.stderr,
        )
        return 2
    context = _docker_dir()
    if not (context / "Dockerfile").exists():
        print(
            f"et-hil: error: {context}/Dockerfile not found (run from a checkout)", file=sys.stderr
        )
        return 2
    print(f"building {tag} from {context} (FVP downloads and runner builds take a while)")
    try:
        client = docker.from_env()  # type: ignore[attr-defined]
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            buildargs={"ACCEPT_ARM_EULA": "yes"},
            rm=True,
            decode=True,
        ):
            if "stream" in chunk:
                sys.stdout.write(chunk["stream"])
            if "error" in chunk:
                print(f"et-hil: error: image build failed: {chunk['error']}", file=sys.stderr)
                return 1
    except docker.errors.DockerException as exc:
        print(f"et-hil: error: {exc}", file=sys.stderr)
        return 1
    print(f"built {tag}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``et-hil``."""
    parser = argparse.ArgumentParser(
        prog="et-hil", description="ExecuTorch hardware-in-the-loop test harness"
    )
    parser.add_argument(
        "--board-file",
        action="append",
        default=[],
        metavar="PATH",
        help="also load this board file (repeatable)",
    )
    parser.add_argument("--build-cache", metavar="DIR", help="artifact cache folder")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("boards", help="list boards and whether they can run here").set_defaults(
        func=cmd_boards
    )
    sub.add_parser("doctor", help="check this machine").set_defaults(func=cmd_doctor)
    sub.add_parser(
        "units", help="serial boards' units: present, free or held, and by whom"
    ).set_defaults(func=cmd_units)
    cache = sub.add_parser("cache", help="show or clear the artifact cache")
    cache.add_argument("action", choices=("info", "clear"), nargs="?", default="info")
    cache.set_defaults(func=cmd_cache)
    docker_cmd = sub.add_parser("docker", help="build the FVP image; reap leftover containers")
    docker_cmd.add_argument("action", choices=("build", "reap"))
    docker_cmd.add_argument("--accept-eula", action="store_true", help="accept Arm's EULA")
    docker_cmd.add_argument("--tag", help="image tag (default: the versioned et-hil-fvp tag)")
    docker_cmd.set_defaults(func=cmd_docker)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"et-hil: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
