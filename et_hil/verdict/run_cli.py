"""``et-hil run PROGRAM --board NAME``: a program file on a board, without its model.

Prints what the program is, where it ran, its outputs and timings, where the
ETDump and the run's files are, and the verdict against the bundle's expected
outputs (:mod:`et_hil.verdict.program_check`). Exit status: 0 when it ran and
matched (or there was nothing to compare with), 1 when it did not, 2 for a bad
command line, program or board file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``run`` subcommand of ``et-hil``."""
    run = sub.add_parser(
        "run",
        parents=[common],
        help="run a .pte or BundleIO .bpte on a board: outputs, timings, ETDump, verdict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("program", type=Path, metavar="PROGRAM", help="a .pte or .bpte file")
    run.add_argument("--board", required=True, metavar="NAME", help="the board to run it on")
    run.add_argument(
        "--inputs",
        type=Path,
        metavar="NPZ",
        help="inputs as .npz (in_0, in_1...); default: the bundle's, else all ones",
    )
    run.add_argument("--case", type=int, default=0, help="the bundle's test case to run")
    run.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="where the run's files go (default: et-hil-results/run/<program>)",
    )
    run.add_argument("--run-timeout", type=float, metavar="SECONDS", help="time limit of the run")
    run.add_argument(
        "--runner-elf",
        action="append",
        default=[],
        metavar="[BOARD=]PATH",
        help="runner ELF of an FVP or QEMU board, as pytest's --et-runner-elf",
    )
    run.set_defaults(func=cmd_run)


def _summary(array: np.ndarray[Any, Any]) -> str:
    if array.size == 0:
        return "empty"
    values = array.astype(np.float64)
    return f"min {values.min():.6g}, max {values.max():.6g}, mean {values.mean():.6g}"


def cmd_run(args: argparse.Namespace) -> int:
    """Run the program once and print what happened."""
    from et_hil.boards import make_board
    from et_hil.boards.command_options import board_options
    from et_hil.boards.spec import load_boards, resolve_board_names
    from et_hil.errors import ConfigError, HarnessError
    from et_hil.programs.cache import default_cache_dir
    from et_hil.programs.program_file import describe_line, read_program, save_outputs
    from et_hil.verdict.program_check import run_program

    program = read_program(args.program)
    boards = load_boards(args.board_file)
    [name] = resolve_board_names([args.board], boards)
    inputs = None
    if args.inputs is not None:
        try:
            with np.load(args.inputs, allow_pickle=False) as npz:
                inputs = [npz[f"in_{k}"] for k in range(len(npz.files))]
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"--inputs {args.inputs}: not an .npz of in_0, in_1... ({exc})"
            ) from exc
    out = args.output or Path("et-hil-results") / "run" / program.name
    out = out.resolve()
    cache_dir = Path(args.build_cache) if args.build_cache else default_cache_dir()
    options = board_options(boards, [name], cache_dir=cache_dir, runner_elves=args.runner_elf)[name]
    board = make_board(boards[name], out / "logs", options)
    availability = board.availability()
    if not availability.ok:
        hint = f" (to fix: {availability.hint})" if availability.hint else ""
        print(f"et-hil: error: board '{name}' cannot run here: {availability.reason}{hint}",
              file=sys.stderr)  # fmt: skip
        return 1
    started = time.perf_counter()
    board.open()
    try:
        result = run_program(
            board,
            program,
            run_dir=out,
            inputs=inputs,
            timeout_s=args.run_timeout,
            case=args.case,
        )
    except HarnessError as exc:
        print(f"verdict: {exc.failure_class}\n{exc}")
        return 1
    finally:
        board.close()
    print(describe_line(program, result.artifact))
    print(f"board {name} (kind {boards[name].kind}); inputs: {result.inputs_from}")
    for i, array in enumerate(result.run.outputs):
        print(f"  out[{i}] {array.dtype} {list(array.shape)}: {_summary(np.asarray(array))}")
    save_outputs(out / "outputs.npz", result.run.outputs)
    run = result.run
    print(
        f"timings: load {run.load_s * 1e3:.3f} ms, execute {run.execute_s * 1e3:.3f} ms "
        f"({run.fidelity}); {time.perf_counter() - started:.2f} s in all"
    )
    print(f"etdump: {run.etdump_path or 'none (this board writes none)'}")
    print(f"files: {out} (outputs.npz, run/)")
    print(result.table())
    if not result.compared:
        print("verdict: ran (no reference)")
        return 0
    print(f"verdict: {'pass' if result.passed else 'numeric_mismatch'}")
    return 0 if result.passed else 1
