"""The corstone boards' FVP code path on the genuine runner (tests/genuine_fvp):
a program, a program without inputs, and the FVP's --timelimit, each with the
genuine runner's own output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from et_hil.boards import BoardOptions, make_board
from et_hil.boards.fvp.board import FvpBoard
from et_hil.boards.qemu.kind import QemuSettings
from et_hil.boards.spec import load_board_file
from et_hil.errors import RunTimeout
from et_hil.firmware.service import ensure_runner, request_for
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache, default_cache_dir
from et_hil.verdict.check import check_model
from tests.test_qemu_board import Constant, SmallCNN, _need_tools, image

# 600 s: the first test builds the runner if the firmware cache lacks it (3.5 minutes
# here; CI builds it before the tests); with it built, the longest took 35 s.
pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.timeout(600)]

GENUINE_FVP = Path(__file__).resolve().parent / "genuine_fvp"


@pytest.fixture
def fvp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FvpBoard:
    """Corstone-300 with portable programs, its FVP answered by the genuine runner."""
    _need_tools()
    monkeypatch.setenv("PATH", f"{GENUINE_FVP}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ET_HIL_DOUBLE_PYTHON", sys.executable)
    elf = ensure_runner(request_for(QemuSettings().firmware), cache_dir=default_cache_dir()).elf
    spec = load_board_file(GENUINE_FVP / "corstone300-portable.toml")
    board = make_board(spec, tmp_path / "logs", BoardOptions(runner_elf=elf))
    assert isinstance(board, FvpBoard)
    assert board.availability().ok, board.availability()
    return board


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(ArtifactCache(tmp_path_factory.mktemp("cache")))


def test_a_program_runs_through_the_fvp_path(
    fvp: FvpBoard, builder: Builder, tmp_path: Path
) -> None:
    result = check_model(
        builder, fvp, SmallCNN(), (image(),), run_dir=tmp_path / "run", quantize="int8"
    )
    assert result.passed, result.summary()
    assert result.run.fidelity == "fvp-fast"
    command = (tmp_path / "run" / "command.txt").read_text()
    assert "FVP_Corstone_SSE-300_Ethos-U55" in command
    assert "cpu0.semihosting-cmd_line=" in command
    assert "executor_runner -m program.pte -o out -i i0.bin" in command
    assert "Program complete, exiting." in result.run.log


def test_a_program_without_inputs_runs_through_the_fvp_path(
    fvp: FvpBoard, builder: Builder, tmp_path: Path
) -> None:
    result = check_model(builder, fvp, Constant(), (), run_dir=tmp_path / "run")
    assert result.passed, result.summary()
    np.testing.assert_array_equal(result.run.outputs[0], [[0, 0, 0], [3, 8, 15]])


class Heavy(torch.nn.Module):
    """~150 M multiply-adds of float convolution: seconds on QEMU's emulated M55."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.convs = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


def test_the_fvp_timelimit_ends_a_run_as_a_timeout(
    fvp: FvpBoard, builder: Builder, tmp_path: Path
) -> None:
    x = torch.randn(1, 32, 64, 64, generator=torch.Generator().manual_seed(0))
    artifact = builder.build(Heavy(), (x,), target="portable", board=fvp.spec.name)
    with pytest.raises(RunTimeout) as caught:
        fvp.run(artifact, [x.numpy()], run_dir=tmp_path / "run", timeout_s=1)
    assert "the FVP's --timelimit was reached" in caught.value.message
    assert "--timelimit 1" in (tmp_path / "run" / "command.txt").read_text()
