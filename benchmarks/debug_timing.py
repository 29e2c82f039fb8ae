"""Benchmark: the cost of the per-layer debug pass against the check it explains.

    python benchmarks/debug_timing.py [--board host] [--board tosa] [--layers 20]

For a chain of conv+relu layers (``--layers`` of them) built int8, on each board
and with a fresh cache: the check itself (build + run + compare), then the debug
pass tapping every layer, then the debug pass bisecting (3x weights in a late
layer, so the search has something to find). Prints seconds and builds. A
benchmark, not a test: numbers go to closing notes and the README.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from et_hil.boards import make_board
from et_hil.boards.spec import builtin_board_dir, load_board_file
from et_hil.errors import BuildError
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache
from et_hil.programs.taps import Fault
from et_hil.verdict.check import check_model
from et_hil.verdict.debug import debug_model


class Chain(nn.Module):
    """``layers`` conv+relu layers of 8 channels and a linear head."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        blocks: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()]
        for _ in range(layers - 2):
            blocks += [nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--layers", type=int, default=20)
    args = parser.parse_args()
    model = Chain(args.layers).eval()
    x = (torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)
    for name in args.board or ["host", "tosa"]:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            builder = Builder(ArtifactCache(work / "cache"))
            board = make_board(load_board_file(builtin_board_dir() / f"{name}.toml"), work)
            try:
                t0 = time.perf_counter()
                check_model(builder, board, model, x, run_dir=work / "check", quantize="int8")
                check_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                every = debug_model(builder, board, model, x, run_dir=work / "all", quantize="int8")
                all_s = time.perf_counter() - t1
                # Deep in the chain: randomly initialised layers attenuate an early
                # error until the output no longer fails (seen: 114 LSB at layer 11
                # of 22 is 1 LSB at the output), and then there is nothing to find.
                # The latest row a weighted layer computes (tosa quantizes some
                # outputs between a conv and its relu: those rows have no weights).
                t2 = time.perf_counter()
                for row in reversed(every.rows[:-3]):
                    middle = row.node
                    try:
                        bisected = debug_model(
                            builder, board, model, x, run_dir=work / "bisect",
                            quantize="int8", fault=Fault(middle, factor=3.0),
                            strategy="bisect",
                        )  # fmt: skip
                        break
                    except BuildError:
                        t2 = time.perf_counter()  # not a weighted layer: next one
                bisect_s = time.perf_counter() - t2
            finally:
                board.close()
        print(
            f"{name}: {len(every.rows)} layers; check {check_s:.1f} s; "
            f"debug (all taps, 1 build) {all_s:.1f} s = {all_s / check_s:.1f}x the check "
            f"[{every.timings}]; bisect (fault at {middle}) {bisect_s:.1f} s, "
            f"{bisected.timings['builds']} builds, found "
            f"{bisected.first_divergent.node if bisected.first_divergent else None}"
        )


if __name__ == "__main__":
    main()
