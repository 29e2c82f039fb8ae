"""``et-hil firmware build``: build (or find in the cache) the runner firmware.

Either what a QEMU board file's ``[qemu.firmware]`` describes (``--board NAME``)
or what the options say. The ELF lands in the build cache
(``<cache>/firmware/<key>/``) with its build record beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from et_hil.errors import ConfigError


def byte_size(text: str) -> int:
    """``2097152``, ``0x200000``, ``2M`` or ``512K`` as a number of bytes."""
    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:].upper(), 1)
    try:
        return int(text[:-1] if scale > 1 else text, 0) * scale
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 2M, 0x200000)") from exc


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The ``firmware`` subcommand of ``et-hil``."""
    firmware = sub.add_parser(
        "firmware", parents=[common], help="build the upstream runner firmware for QEMU boards"
    )
    firmware.add_argument(
        "action",
        choices=("build", "bundle"),
        help="build: the runner; bundle: make the source bundle from git checkouts "
        "(--out, --executorch, --cmsis6, --cmsis-nn, --core-driver)",
    )
    for flag, what in (
        ("--out", "bundle: the folder to write (then ET_HIL_THIRD_PARTY=it)"),
        ("--executorch", "bundle: an ExecuTorch checkout, its submodules checked out"),
        ("--cmsis6", "bundle: a CMSIS_6 checkout"),
        ("--cmsis-nn", "bundle: a CMSIS-NN checkout"),
        ("--core-driver", "bundle: an Ethos-U core driver checkout"),
    ):
        firmware.add_argument(flag, type=Path, metavar="DIR", help=what)
    firmware.add_argument(
        "--board",
        action="append",
        default=[],
        metavar="NAME",
        help="build what this QEMU board's [qemu.firmware] describes (repeatable)",
    )
    firmware.add_argument("--ops", help="a selected kernel list: aten::add.out,aten::mm.out,...")
    firmware.add_argument(
        "--ops-from",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="select the kernels the programs here call: a .pte/.bpte, or a folder searched "
        "for them (e.g. the build cache after a --et-build-only run); repeatable",
    )
    firmware.add_argument(
        "--wide", action="store_true", help="every portable and quantized kernel (the default)"
    )
    firmware.add_argument(
        "--no-cmsis", action="store_true", help="without the cortex_m (CMSIS-NN) kernels"
    )
    firmware.add_argument(
        "--intermediate-buffer",
        type=byte_size,
        default=0,
        metavar="BYTES",
        help="ETDump intermediate-output buffer (default 0: no intermediate outputs)",
    )
    firmware.add_argument(
        "--method-pool", type=byte_size, metavar="BYTES", help="method allocator pool"
    )
    firmware.add_argument(
        "--executorch-src",
        type=Path,
        metavar="DIR",
        default=os.environ.get("ET_HIL_EXECUTORCH_SRC"),
        help="ExecuTorch source tree (default: $ET_HIL_EXECUTORCH_SRC, else the pinned bundle)",
    )
    firmware.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    firmware.set_defaults(func=cmd_firmware)


def _selected_ops(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The kernel list of ``--ops`` and ``--ops-from`` together; ``None``: wide."""
    from et_hil.firmware.ops import ops_in_program
    from et_hil.firmware.service import parse_ops

    ops = set(parse_ops(args.ops)) if args.ops else set()
    for path in args.ops_from:
        if not path.exists():
            raise ConfigError(f"--ops-from {path}: no such file or folder")
        programs = [path] if path.is_file() else sorted(path.rglob("*.pte"))
        if not programs:
            raise ConfigError(f"--ops-from {path}: no .pte programs in it")
        for program in programs:
            data = program.read_bytes()
            if data[4:8] == b"BP08":
                raise ConfigError(f"--ops-from {program}: a bundle; give its .pte")
            try:
                ops.update(ops_in_program(data))
            except Exception as exc:  # the deserializer raises assorted types
                raise ConfigError(f"--ops-from {program}: not a readable program ({exc})") from exc
    return tuple(sorted(ops)) if ops else None


def _say(message: str) -> None:
    """A build step, as it happens (the build runs in this process's thread)."""
    print(f"  {message}", flush=True)


def cmd_bundle(args: argparse.Namespace) -> int:
    """Make the source bundle from git checkouts; say how to use it."""
    from et_hil.firmware.bundle_make import make_bundle, parts

    named = {
        "--out": args.out,
        "--executorch": args.executorch,
        "--cmsis6": args.cmsis6,
        "--cmsis-nn": args.cmsis_nn,
        "--core-driver": args.core_driver,
    }
    if missing := [flag for flag, value in named.items() if value is None]:
        raise ConfigError(f"et-hil firmware bundle needs {', '.join(missing)}")
    found = parts(args.executorch, args.cmsis6, args.cmsis_nn, args.core_driver)
    for tarball in make_bundle(args.out, found):
        print(f"  {tarball.name}  {tarball.stat().st_size / 1e6:.1f} MB")
    print(f"wrote {args.out} (SHA256SUMS beside the tarballs); use it with:")
    print(f"  export ET_HIL_THIRD_PARTY={args.out.resolve()}")
    return 0


def cmd_firmware(args: argparse.Namespace) -> int:
    """Build each requested runner; print where it is and what it holds."""
    if args.action == "bundle":
        return cmd_bundle(args)
    from et_hil.boards.qemu.kind import QemuSettings
    from et_hil.firmware.service import (
        FirmwareRequest,
        describe,
        ensure_runner,
        request_for,
    )
    from et_hil.firmware.settings import StepTimeouts
    from et_hil.programs.cache import default_cache_dir

    cache_dir = Path(args.build_cache) if args.build_cache else default_cache_dir()
    requests: list[tuple[str, FirmwareRequest, StepTimeouts]] = []
    if args.board:
        from et_hil.boards.spec import load_boards

        boards = load_boards([Path(p) for p in args.board_file])
        for name in args.board:
            spec = boards.get(name)
            if spec is None:
                raise ConfigError(f"--board {name}: unknown board (known: {', '.join(boards)})")
            if spec.kind != "qemu":
                raise ConfigError(
                    f"--board {name}: kind '{spec.kind}' boards take no et-hil firmware build; "
                    "QEMU boards do"
                )
            settings = spec.settings_of(QemuSettings) or QemuSettings()
            firmware = settings.firmware
            requests.append((f"board '{name}'", request_for(firmware), firmware.timeouts()))
    else:
        requests.append(
            (
                "runner",
                FirmwareRequest(
                    ops=_selected_ops(args),
                    cmsis=not args.no_cmsis,
                    intermediate_buffer_bytes=args.intermediate_buffer,
                    method_pool_bytes=args.method_pool,
                ),
                StepTimeouts(),
            )
        )
    for what, request, timeouts in requests:
        print(f"{what}: looking in {cache_dir / 'firmware'} (a cold build takes minutes)")
        sys.stdout.flush()
        built = ensure_runner(
            request,
            cache_dir=cache_dir,
            executorch_src=args.executorch_src,
            jobs=args.jobs,
            progress=_say,
            timeouts=timeouts,
        )
        for line in describe(built):
            print(f"  {line}")
    return 0
