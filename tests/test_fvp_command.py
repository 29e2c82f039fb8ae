"""The FVP command lines we render are upstream's, parameter by parameter.

Upstream's ``run_corstone`` (executorch 1.5.1 wheel, backends/arm/test/runner_utils.py)
is called for real, with its process runner swapped for one that records the
argv and stops; our rendering from fvp/*.toml must give the same list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from et_hil.boards.fvp import platform as fvp
from et_hil.boards.spec import load_boards

pytestmark = pytest.mark.slow


class _Captured(Exception):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("captured")
        self.argv = argv


def upstream_command(board: str, tmp_path: Path, elf: Path, inputs: int) -> list[str]:
    from executorch.backends.arm.test import runner_utils
    from executorch.exir import to_edge

    class TwoInputs(torch.nn.Module):
        def forward(self, *xs: torch.Tensor) -> torch.Tensor:
            return sum(xs)  # type: ignore[return-value]

    example = tuple(torch.ones(2) for _ in range(inputs))
    program = to_edge(torch.export.export(TwoInputs(), example)).to_executorch()

    def capture(cmd: list[str], **_: object) -> None:
        raise _Captured(list(cmd))

    original = runner_utils._run_cmd
    runner_utils._run_cmd = capture
    try:
        runner_utils.run_corstone(program, example, tmp_path, board, elf, timeout=120)
    except _Captured as captured:
        return captured.argv
    finally:
        runner_utils._run_cmd = original
    raise AssertionError("upstream did not start a process")


@pytest.mark.parametrize(
    ("upstream_board", "our_board"),
    [
        ("corstone-300", "corstone300"),
        ("corstone-300-u65", "corstone300-u65"),
        ("corstone-320", "corstone320"),
    ],
)
def test_semihosting_command_matches_upstream(upstream_board, our_board, tmp_path):
    elf = tmp_path / "arm_executor_runner"
    elf.write_bytes(b"\x7fELF")
    upstream = upstream_command(upstream_board, tmp_path, elf, inputs=2)

    spec = load_boards()[our_board]
    platform = fvp.load_platform(spec.sections["fvp"]["platform"])
    # Upstream fixes 128 MACs for U85; our corstone320 board is U85-256, and the
    # FVP must match the compile target. Compare with upstream's value for the
    # parameter, then check ours separately.
    upstream_macs = int(next(a for a in upstream if "num_macs=" in a).rsplit("=", 1)[1])
    ours = fvp.render_command(
        platform,
        executable=platform.executable,
        elf=str(elf),
        num_macs=upstream_macs,
        timeout_s=120,
        semihosting_cwd=str(tmp_path),
        input_count=2,
    )
    assert ours == upstream


@pytest.mark.parametrize(
    ("board_name", "target", "macs"),
    [
        ("corstone320", None, 256),  # ethos-u85-256: the FVP must match the compile target
        ("corstone300-u65", None, 256),
        ("corstone320", "portable", 128),  # no Ethos-U target: the platform default
        ("corstone300-u65", "portable", 256),  # U65 FVPs take 256 or 512 only
    ],
)
def test_board_num_macs(board_name, target, macs, tmp_path):
    import dataclasses

    from et_hil.boards.fvp.board import FvpBoard

    spec = load_boards()[board_name]
    if target:
        spec = dataclasses.replace(spec, target=target)
    assert FvpBoard(spec, tmp_path).num_macs == macs
