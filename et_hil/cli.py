"""The ``et-hil`` command: what boards exist and can run here, and whether this machine is ready."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from et_hil.boards import Availability, Board, BoardOptions, make_board, registry
from et_hil.boards.command_options import board_options
from et_hil.boards.spec import BoardSpec, load_boards, resolve_board_names
from et_hil.errors import ConfigError, HarnessError
from et_hil.programs.cache import default_cache_dir
from et_hil.tables import text_table
from et_hil.versions import PINNED, installed_version

if TYPE_CHECKING:
    pass


def _cache_dir(args: argparse.Namespace) -> Path:
    return Path(args.build_cache or default_cache_dir())


def _board_options(
    args: argparse.Namespace, boards: Mapping[str, BoardSpec], selected: Sequence[str]
) -> dict[str, BoardOptions]:
    """Each board's options as a pytest run would set them from the environment, plus
    ``--runner-elf [BOARD=]PATH`` (see :func:`et_hil.boards.command_options.board_options`)."""
    return board_options(
        boards,
        selected,
        cache_dir=_cache_dir(args),
        runner_elves=getattr(args, "runner_elf", None) or (),
    )


def _make_boards(
    args: argparse.Namespace, boards: Mapping[str, BoardSpec], names: Sequence[str]
) -> dict[str, Board]:
    """The board objects of ``names``, with their options (logs go to a temp folder)."""
    options = _board_options(args, boards, names)
    work_dir = Path(tempfile.gettempdir()) / "et-hil-cli"
    return {name: make_board(boards[name], work_dir, options[name]) for name in names}


def _why_not(availability: Availability) -> str:
    """A board's reasons and fixes, as pytest's skip message puts them."""
    if availability.ok:
        return ""
    hint = f" (to fix: {availability.hint})" if availability.hint else ""
    return availability.reason + hint


def _kinds_table() -> str:
    """Each registered board kind: its table in a board file, fidelities and summary."""

    rows = [("kind", "table", "fidelities", "what it is")]
    for kind in registry.kinds().values():
        table = f"[{kind.settings_table}]" if kind.settings_table else "-"
        rows.append((kind.name, table, ", ".join(kind.fidelities), kind.summary))
    return text_table(rows)


def cmd_boards(args: argparse.Namespace) -> int:
    """List known boards and whether each can run on this machine (``--kinds``: the
    registered board kinds)."""
    if args.kinds:
        print(_kinds_table())
        return 0
    boards = load_boards(args.board_file)
    rows = [("board", "kind", "target", "runs here", "why not / how to fix")]
    for name, board in _make_boards(args, boards, sorted(boards)).items():
        availability = board.availability()
        runs = "yes" if availability.ok else "no"
        spec = boards[name]
        rows.append((name, spec.kind, spec.target, runs, _why_not(availability)))
    print(text_table(rows))
    return 0


def _check(ok: bool | None, what: str, detail: str) -> tuple[str, str, str]:
    status = {True: "ok", False: "FAIL", None: "warn"}[ok]
    return status, what, detail


def _basic_checks(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """What every use needs: Python, the pinned stack, a writable cache."""
    rows = []
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
    cache = _cache_dir(args)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache):
            pass
        rows.append(_check(True, "build cache", f"{cache} writable"))
    except OSError as exc:
        rows.append(_check(False, "build cache", f"{cache}: {exc.strerror}; set ET_HIL_CACHE_DIR"))
    return rows


def _summary(verdicts: Mapping[str, Availability]) -> str:
    """One line naming the boards that can run here and, with reasons, those that cannot."""
    ready = [name for name, a in verdicts.items() if a.ok]
    blocked = [f"{name} ({a.reason})" for name, a in verdicts.items() if not a.ok]
    parts = [f"ready for: {', '.join(ready)}"] if ready else []
    if blocked:
        lead = "cannot run here: " if ready else "no board can run here: "
        parts.append(lead + ", ".join(blocked))
    return "; ".join(parts)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check this machine: Python, the pinned stack, the cache, Docker, FVPs, each board
    and its runner ELF.

    Exit status 1 when a basic check fails (Python, the pinned stack, the cache, the
    host board) or, with ``--board``, when a named board cannot run here.
    """

    boards = load_boards(args.board_file)
    named = resolve_board_names(args.board, boards)
    # Boards are made before anything is printed: a bad board file is a usage error.
    made = _make_boards(args, boards, named or sorted(boards))
    rows = [("status", "check", "detail"), *_basic_checks(args)]
    doctors = {}
    for kind in registry.kinds().values():  # each kind's own checks of this machine
        of_kind = [b for name, b in made.items() if boards[name].kind == kind.name]
        if kind.doctor is not None:
            doctors[kind.name] = doctor = kind.doctor_module()
            rows += [_check(*row) for row in doctor.machine_checks(of_kind)]
    verdicts: dict[str, Availability] = {}
    for name, board in made.items():
        availability = verdicts[name] = board.availability()
        # Without --board only the host board is required; others are optional equipment.
        required = name in named if named else name == "host"
        ok = True if availability.ok else (False if required else None)
        detail = "can run here" if availability.ok else _why_not(availability)
        rows.append(_check(ok, f"board {name}", detail))
        if boards[name].kind in doctors:
            found = doctors[boards[name].kind].board_checks(board, availability.ok, required)
            rows += [_check(*row) for row in found]
    print(text_table(rows))
    print()
    failed = any(r[0] == "FAIL" for r in rows[1:])
    if failed:
        print("problems found: fix the FAIL lines above")
    print(_summary(verdicts))
    return 1 if failed else 0


def _global_options(parser: argparse.ArgumentParser, suffix: str = "") -> None:
    """``--board-file`` and ``--build-cache``, which every subcommand takes.

    Given after the subcommand they go to their own ``*_after`` names: argparse copies
    the subcommand's namespace over the main one, which would drop values given before.
    """
    parser.add_argument(
        "--board-file",
        dest="board_file" + suffix,
        action="append",
        default=[],
        metavar="PATH",
        help="also load this board or lab file (repeatable)",
    )
    parser.add_argument(
        "--build-cache",
        dest="build_cache" + suffix,
        metavar="DIR",
        help="artifact cache folder (default: $ET_HIL_CACHE_DIR, then ~/.cache/et-hil)",
    )


def _runner_elf_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runner-elf",
        action="append",
        default=[],
        metavar="[BOARD=]PATH",
        help="runner ELF of an FVP board, as pytest's --et-runner-elf (repeatable)",
    )


def cmd_repro(args: argparse.Namespace) -> int:
    """Rerun one failed check from its repro folder: exit 0 when it passes now."""
    from et_hil.report import repro

    return repro.main(
        args.folder,
        args.board,
        args.board_file,
        trust_board_file=args.trust_board_file,
        cache_dir=Path(args.build_cache) if args.build_cache else None,
        runner_elf=args.runner_elf,
    )


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of board files (with the registered kinds' tables),
    or write it to ``-o FILE`` (editors validate board files with it)."""
    from et_hil.boards.spec import board_file_schema_text

    text = board_file_schema_text()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"schema -o {args.output}: cannot write it ({exc.strerror})") from exc
    print(f"wrote {args.output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML page of results files (the newest is the current run,
    all of them make the trend); ``--screenshot``: also render it in headless Chromium."""
    from et_hil.report import html

    runs = html.load_runs(args.results)
    if args.merge and len(runs) > 1:
        from et_hil.report.merge import merge_results

        merged = merge_results([run.path for run in runs])
        names = ", ".join(str(run.path) for run in runs)
        runs = [html.Run(Path(f"merged: {names}"), merged.records)]
        for line in merged.missing:
            print(f"missing: {line}")
    elif len(runs) > 1:
        print(
            f"{len(runs)} results files: the newest, {runs[-1].path}, is the current run (its "
            f"matrix, failures and baseline); the {len(runs) - 1} older ones give the trend. "
            "To report them as one run (shards, boards or workers of one run), pass --merge "
            "(or merge first: et-hil merge FILES -o merged.jsonl)"
        )
    changes = None
    if args.baseline:
        from et_hil.report.commands import baseline_changes

        changes = baseline_changes(runs[-1].records, Path(args.baseline), args.board_file)
    out = html.write_report(runs, Path(args.output), title=args.title, baseline_changes=changes)
    print(f"wrote {out}: {len(runs[-1].records)} records of {runs[-1].path}, {len(runs)} runs")
    if args.screenshot is None:
        return 0
    from et_hil.report import browser

    # tall enough for the matrix and every plot of a nightly page in one picture
    check = browser.render(out, Path(args.screenshot), window=(1400, 7000))
    for problem in check.problems():
        print(f"et-hil: page problem: {problem}", file=sys.stderr)
    if check.screenshot is not None:
        print(f"screenshot {check.screenshot}")
    return 0 if check.ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="et-hil", description="ExecuTorch hardware-in-the-loop test harness"
    )
    _global_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suffix="_after")
    sub = parser.add_subparsers(dest="command", required=True)
    boards = sub.add_parser(
        "boards", parents=[common], help="list boards and whether they can run here"
    )
    boards.add_argument(
        "--kinds", action="store_true", help="list the registered board kinds instead"
    )
    _runner_elf_option(boards)
    boards.set_defaults(func=cmd_boards)
    doctor = sub.add_parser("doctor", parents=[common], help="check this machine")
    doctor.add_argument(
        "--board",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this board, and fail when it cannot run here (repeatable)",
    )
    _runner_elf_option(doctor)
    doctor.set_defaults(func=cmd_doctor)
    from et_hil.report.cache_commands import add_parser as add_cache_parser

    add_cache_parser(sub, common)
    for kind in registry.kinds().values():  # a kind's own subcommands (units, docker...)
        if (add_commands := kind.command_adder()) is not None:
            add_commands(sub, common)
    repro_cmd = sub.add_parser(
        "repro",
        parents=[common],
        help="rerun a failed check from its repro folder and print the verdict",
    )
    repro_cmd.add_argument("folder", help="the repro folder a failure message names")
    repro_cmd.add_argument(
        "--board", metavar="NAME", help="rerun on this board instead of the one that failed"
    )
    repro_cmd.add_argument(
        "--trust-board-file",
        action="store_true",
        help="use the folder's own board file and saved board options (their flash, reset "
        "and build commands run on this machine); by default your own board of that name",
    )
    repro_cmd.add_argument(
        "--runner-elf",
        metavar="PATH",
        help="the runner ELF of an FVP or QEMU board (default: the one the case ran, while "
        "this machine has it byte for byte)",
    )
    repro_cmd.set_defaults(func=cmd_repro)
    schema_cmd = sub.add_parser(
        "schema", parents=[common], help="print the JSON Schema of board files"
    )
    schema_cmd.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write it to FILE (et_hil/boards/board-file.schema.json is the published one)",
    )
    schema_cmd.set_defaults(func=cmd_schema)
    report_cmd = sub.add_parser(
        "report", parents=[common], help="write one self-contained HTML page of results files"
    )
    report_cmd.add_argument("results", nargs="+", metavar="RESULTS", help="results .jsonl files")
    report_cmd.add_argument("-o", "--output", default="report.html", metavar="HTML")
    report_cmd.add_argument("--title", default="et-hil report", help="the page's title")
    report_cmd.add_argument(
        "--merge",
        action="store_true",
        help="the files are parts of one run (shards, boards, workers): merge them into the "
        "current run, as et-hil merge does, instead of taking the newest as the run",
    )
    report_cmd.add_argument(
        "--baseline",
        metavar="FILE",
        help="compare the newest run with this baseline (default: the changes its records "
        "carry from pytest --et-baseline)",
    )
    report_cmd.add_argument(
        "--screenshot", metavar="PNG", help="render the page in headless Chromium to this PNG"
    )
    report_cmd.set_defaults(func=cmd_report)
    from et_hil.verdict.run_cli import add_parser as add_run_parser

    add_run_parser(sub, common)
    from et_hil.report.commands import add_parsers as add_results_parsers

    add_results_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``et-hil``."""
    args = _parser().parse_args(argv)
    from et_hil.programs.quiet import quiet_third_party_logs

    quiet_third_party_logs()
    args.board_file = [*args.board_file, *args.board_file_after]
    args.build_cache = args.build_cache_after or args.build_cache
    try:
        from et_hil.boards import registry

        registry.kinds()  # board kinds of installed packages (entry points)
        return int(args.func(args))
    except ConfigError as exc:  # a usage error: bad board file, unknown board name
        print(f"et-hil: error: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:  # the machine, not the command (e.g. the lock folder)
        print(f"et-hil: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
