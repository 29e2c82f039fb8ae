"""The qemu board kind on the genuine upstream runner: built from the pinned
sources by the firmware recipe, run on ``qemu-system-arm -machine mps3-an547``.

Every fault here is the genuine runner's own behaviour (its own log lines), not a
double's. The runner is built once per content (the first run on a machine takes
minutes; CI builds it before the tests, with ``et-hil firmware build``).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from et_hil.boards import BoardOptions, make_board
from et_hil.boards.base import RUN_FACTS
from et_hil.boards.qemu.board import QemuBoard
from et_hil.boards.spec import load_board_file
from et_hil.datafiles import builtin_board_dir
from et_hil.errors import ConfigError, RunCrashed, RunnerConfigError, RunTimeout
from et_hil.firmware.service import FirmwareRequest, ensure_runner
from et_hil.firmware.toolchain import missing_build_tools
from et_hil.programs.artifact import Artifact
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache, default_cache_dir
from et_hil.verdict.check import CheckResult, check_model

# 600 s: the first test builds the runner if the firmware cache lacks it (3.5 minutes
# here; CI builds it before the tests); with it built, the longest took 35 s.
pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.timeout(600)]


def _need_tools() -> None:
    """Skip where QEMU or the toolchain is missing, unless CI requires them."""
    missing = [what for what, _ in missing_build_tools(None)]
    if shutil.which("qemu-system-arm") is None:
        missing.append("qemu-system-arm is not on PATH")
    if missing:
        if os.environ.get("ET_HIL_REQUIRE_QEMU") == "1":
            pytest.fail("; ".join(missing) + " [ET_HIL_REQUIRE_QEMU=1]")
        pytest.skip("; ".join(missing))


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(ArtifactCache(tmp_path_factory.mktemp("cache")))


def qemu_board(tmp_path: Path, name: str = "qemu-m55", **options: object) -> QemuBoard:
    """A built-in QEMU board, opened (its runner from the shared firmware cache)."""
    _need_tools()
    spec = load_board_file(builtin_board_dir() / f"{name}.toml")
    board = make_board(
        spec, tmp_path / "logs", BoardOptions(cache_dir=default_cache_dir(), **options)
    )
    assert isinstance(board, QemuBoard)
    assert board.availability().ok, board.availability()
    board.open()
    return board


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[QemuBoard]:
    the_board = qemu_board(tmp_path)
    yield the_board
    the_board.close()


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class Constant(torch.nn.Module):
    """A program without inputs: the runner's argument check would refuse it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3))
        self.bias = torch.nn.Parameter(torch.full((2, 3), -2.0))

    def forward(self) -> torch.Tensor:
        return torch.relu(self.weight + self.bias) * self.weight


class Cumsum(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)


def image(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def check(
    builder: Builder,
    board: QemuBoard,
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    tmp_path: Path,
    **kw: object,
) -> CheckResult:
    return check_model(builder, board, model, inputs, run_dir=tmp_path / "run", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_a_program_runs_on_the_genuine_runner(
    builder: Builder, qemu: QemuBoard, tmp_path: Path, quantize: str | None
) -> None:
    result = check(builder, qemu, SmallCNN(), (image(),), tmp_path, quantize=quantize)
    assert result.passed, result.table()
    run = result.run
    assert run.fidelity == "qemu"
    assert run.etdump_path is not None
    assert run.etdump_path.stat().st_size > 0
    assert "Program complete, exiting." in run.log  # the genuine runner's last line
    assert run.timings["qemu_wall_s"] == run.execute_s  # QEMU's wall time: the one timing
    facts = run.facts
    assert set(facts) <= set(RUN_FACTS)  # every fact the board gives is documented
    assert facts["machine"] == "mps3-an547"
    assert facts["firmware"]["elf_sha256"] == facts["runner_elf_sha256"]
    assert facts["firmware"]["intermediate_buffer_bytes"] == 0
    assert facts["pmu_note"].startswith("not recorded")


def test_a_program_without_inputs_runs_as_a_bundle(
    builder: Builder, qemu: QemuBoard, tmp_path: Path
) -> None:
    """The runner wants at least one -i; the harness sends a BundleIO program instead."""
    result = check(builder, qemu, Constant(), (), tmp_path)
    assert result.passed, result.table()
    # relu([0..5] - 2) * [0..5], worked by hand
    np.testing.assert_array_equal(result.run.outputs[0], [[0, 0, 0], [3, 8, 15]])
    command = (tmp_path / "run" / "command.txt").read_text()
    assert "arg=-m,arg=program.bpte,arg=-o,arg=out,arg=-o,arg=out" in command
    assert "[----BP08]" in result.run.log  # the runner saw a bundle


def copy_of_program(builder: Builder, tmp_path: Path) -> Artifact:
    """SmallCNN's artifact, copied to a folder of the test's own (to corrupt)."""
    artifact = builder.build(SmallCNN(), (image(),), target="portable", board="qemu-m55")
    folder = tmp_path / "broken"
    shutil.copytree(artifact.folder, folder)
    return replace(artifact, folder=folder)


def test_a_corrupt_program_is_a_crash_with_the_runners_lines(
    builder: Builder, qemu: QemuBoard, tmp_path: Path
) -> None:
    broken = copy_of_program(builder, tmp_path)
    data = bytearray(broken.pte_path.read_bytes())
    data[4:8] = b"XX99"  # the program identifier
    broken.pte_path.write_bytes(bytes(data))
    with pytest.raises(RunCrashed) as caught:
        qemu.run(broken, [image().numpy()], run_dir=tmp_path / "run")
    assert "Program identifier 'XX99' != expected 'ET12'" in caught.value.message
    assert caught.value.failure_class == "crash"


def test_a_run_past_its_time_limit_is_a_timeout(
    builder: Builder, qemu: QemuBoard, tmp_path: Path
) -> None:
    artifact = builder.build(SmallCNN(), (image(),), target="portable", board="qemu-m55")
    # QEMU takes longer than 1 ms to start the runner at all
    with pytest.raises(RunTimeout, match=r"no result after 0\.001 s; QEMU was killed"):
        qemu.run(artifact, [image().numpy()], run_dir=tmp_path / "run", timeout_s=0.001)


def test_a_missing_operator_names_it_and_the_runners_list(builder: Builder, tmp_path: Path) -> None:
    """A runner built with a short kernel list (a relink of the wide build's tree)."""
    _need_tools()
    built = ensure_runner(
        FirmwareRequest(ops=("aten::add.out", "aten::mul.out"), cmsis=False),
        cache_dir=default_cache_dir(),
    )
    qemu = qemu_board(tmp_path, runner_elf=built.elf)
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with pytest.raises(RunnerConfigError) as caught:
        check(builder, qemu, Cumsum(), (x,), tmp_path)
    message = caught.value.message
    assert "kernel 'aten::cumsum.out' not found." in message  # the runner's own line
    assert "operator 'aten::cumsum.out' is not in the runner's kernel list" in message
    assert "aten::add.out" in message
    assert "et-hil firmware build --ops aten::add.out,aten::mul.out" in message
    assert caught.value.failure_class == "runner_config"


class Wide(torch.nn.Module):
    """Intermediate tensors of 4 x 16 KiB: more than a 16 KiB debug buffer holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(x * 2.0) + 1.0) - 3.0


def test_a_full_intermediate_buffer_names_its_size(builder: Builder, tmp_path: Path) -> None:
    _need_tools()
    built = ensure_runner(
        FirmwareRequest(intermediate_buffer_bytes=16384), cache_dir=default_cache_dir()
    )
    qemu = qemu_board(tmp_path, runner_elf=built.elf)
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(RunnerConfigError) as caught:
        check(builder, qemu, Wide(), (x,), tmp_path)
    message = caught.value.message
    assert "Ran out of space to store intermediate outputs." in message
    assert "debug buffer (16384 bytes)" in message


def test_a_runner_linked_for_another_machine_is_refused_before_the_run(tmp_path: Path) -> None:
    from tests.fvp_double.make_elf import write_elf

    elf = tmp_path / "corstone320-runner.elf"
    # Corstone-320.ld's BRAM at 0x12000000: no memory of mps3-an547
    write_elf(elf, "cortex-m55", segments=[(0x12000000, 0x1000)])
    spec = load_board_file(builtin_board_dir() / "qemu-m55.toml")
    board = make_board(spec, tmp_path, BoardOptions(runner_elf=elf))
    answer = board.availability()
    assert not answer.ok
    assert "does not fit the QEMU machine 'mps3-an547' memory map" in answer.reason
    assert "runs at 0x12000000: is in no memory of the board" in answer.reason


def test_an_unknown_machine_is_a_board_file_error(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    lines = ['name = "b"', 'kind = "qemu"', 'target = "portable"', "[qemu]", 'machine = "vexpress"']
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"\[qemu\] machine 'vexpress' is unknown"):
        load_board_file(path)


def _corrupt_first_plan_offset(pte: Path) -> None:
    """Point the program's first execution plan 2 GiB past the program: reading it
    leaves every memory of the machine (a precise bus fault, escalated to HardFault).

    Flatbuffer layout: the root table's offset is the file's first word; its vtable
    gives field 1 (``execution_plan``, a vector of table offsets); the vector's
    first element follows its length word.
    """
    data = bytearray(pte.read_bytes())
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    field = struct.unpack_from("<H", data, vtable + 4 + 2 * 1)[0]
    vector = root + field + struct.unpack_from("<I", data, root + field)[0]
    struct.pack_into("<I", data, vector + 4, 0x7FFF0000)
    pte.write_bytes(bytes(data))


def test_a_hard_fault_is_a_crash_with_the_fault_report(
    builder: Builder, qemu: QemuBoard, tmp_path: Path
) -> None:
    broken = copy_of_program(builder, tmp_path)
    _corrupt_first_plan_offset(broken.pte_path)
    with pytest.raises(RunCrashed) as caught:
        qemu.run(broken, [image().numpy()], run_dir=tmp_path / "run")
    message = caught.value.message
    assert "CPU hard fault" in message
    # the platform layer's fault report: CFSR 0x8200 = BFARVALID | PRECISERR
    assert "Hard fault. irq=3" in message
    assert "cfsr=0x00008200" in caught.value.log_tail


# ---------------------------------------------------------------- Cortex-M programs at scale


@pytest.fixture
def cmsis(tmp_path: Path) -> Iterator[QemuBoard]:
    """qemu-m55-cmsis: the same wide runner, Cortex-M (CMSIS-NN) programs."""
    the_board = qemu_board(tmp_path, "qemu-m55-cmsis")
    yield the_board
    the_board.close()


def test_a_runner_failure_message_keeps_its_numbers(
    cmsis: QemuBoard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream's lowering of a 5-D int8 transpose (the harness's fix taken out), which
    the CMSIS-NN kernel refuses at run time. Its log lines are printed with %zu, which
    Debian's newlib does not know: before the firmware's printf_formats.c they read
    "expected tensor rank in [1, zu], got zu" and "KernelCall failed at instruction
    zu:zu in operator (null)" (the %s read from the wrong place)."""
    from et_hil.programs import cortex_m_passes
    from tests.test_cortex_m_target import self_attention, token_sequence

    upstream = cortex_m_passes.pass_list
    monkeypatch.setattr(
        cortex_m_passes,
        "pass_list",
        lambda explicit_layout: [
            p
            for p in upstream(explicit_layout)
            if p is not cortex_m_passes.PortableTransposeAboveRank4
        ],
    )
    own_cache = Builder(ArtifactCache(tmp_path / "cache"))  # not the fixed program's
    with pytest.raises(RunCrashed) as caught:
        check(own_cache, cmsis, self_attention(), token_sequence(), tmp_path, quantize="int8")
    message = caught.value.message
    assert "transpose_out: expected tensor rank in [1, 4], got 5" in message
    assert re.search(
        r"KernelCall failed at instruction 0:\d+ in operator cortex_m::transpose", message
    )


class EncoderLayer(torch.nn.Module):
    """The user's transformer: d_model 64, 4 heads, batch_first."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out


def encoder_layer() -> EncoderLayer:
    torch.manual_seed(0)
    return EncoderLayer().eval()


def encoder_tokens() -> tuple[torch.Tensor]:
    return (torch.randn(1, 16, 64, generator=torch.Generator().manual_seed(3)),)


def _networks() -> list[Any]:
    from tests.test_cortex_m_target import (
        frames,
        inverted_residual_stack,
        mfcc,
        photo,
        recurrent,
        spectrogram,
    )

    return [
        pytest.param(inverted_residual_stack, photo, 1, id="inverted-residual-nchw"),
        pytest.param(spectrogram, mfcc, 1, id="one-channel-input"),
        pytest.param(recurrent(torch.nn.LSTM), frames, 1, id="lstm"),
        pytest.param(recurrent(torch.nn.GRU), frames, 1, id="gru"),
        # Measured 2.0 LSB at the output, the same on the host through upstream's
        # Python cortex_m kernels: a 1-LSB rounding difference of the residual add
        # (CMSIS-NN's integer requantization) before a float LayerNorm, whose output
        # LSB is finer than its input's (the attention and the feed-forward block
        # alone are within 1 LSB; LayerNorm alone 0).
        pytest.param(encoder_layer, encoder_tokens, 2, id="transformer-encoder-layer"),
    ]


@pytest.mark.parametrize(("model", "inputs", "max_lsb"), _networks())
def test_int8_networks_run_on_cmsis_nn(
    builder: Builder,
    cmsis: QemuBoard,
    tmp_path: Path,
    model: Any,
    inputs: Any,
    max_lsb: int,
) -> None:
    """An NCHW MobileNet-like stack, a one-channel (MFCC) input, an LSTM, a GRU and a
    TransformerEncoderLayer: each
    convolution and linear on CMSIS-NN (the build refuses otherwise), run on the
    genuine runner within ``max_lsb`` of fake-quant."""
    from et_hil.tolerance import Tolerance

    result = check(
        builder, cmsis, model(), inputs(), tmp_path, quantize="int8",
        tolerance=Tolerance(max_lsb=max_lsb),
    )  # fmt: skip
    assert result.passed, result.table()
    operators = result.artifact.metadata["operators"]
    assert not [op for op in operators if op.startswith(("aten::convolution", "aten::linear"))]
    assert "cortex_m::quantized_linear.out" in operators
    (fake_quant,) = [c for c in result.comparisons if c.reference == "fake_quant"]
    assert fake_quant.metrics[0].max_lsb is not None
    assert fake_quant.metrics[0].max_lsb <= max_lsb + 1e-4
