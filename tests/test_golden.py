"""Golden references: a board held bit for bit to what it is specified to compute.

* qemu-m55 (portable kernels on the genuine runner) against the host runtime on
  the same program, and qemu-m55-cmsis (CMSIS-NN) against upstream's Python
  ``cortex_m`` kernels: a correct board is exact (seen: 0 LSB on the real-model
  slice), and a board that computes one layer wrongly (a fault, which the golden
  reference does not share) fails against it;
* an Ethos-U program against the TOSA reference model on the TOSA graph of the
  NPU's own specification (built here; no FVP runs on this machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from et_hil.boards import make_board
from et_hil.boards.spec import load_boards
from et_hil.programs import faults, front
from et_hil.programs.builder import Builder
from et_hil.programs.faults import Fault
from et_hil.verdict.check import check_model
from et_hil.verdict.golden import GoldenReferences, golden_kind

pytestmark = pytest.mark.slow


class Net(nn.Module):
    """Conv, BN, ReLU twice; pooling; a classifier of 10."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def _case() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return Net().eval(), (torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(0)),)


@pytest.fixture(scope="module")
def golden(builder: Builder, tmp_path_factory: pytest.TempPathFactory):
    references = GoldenReferences(builder, tmp_path_factory.mktemp("golden"))
    yield references
    references.close()


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("board_name", "source"),
    [("qemu-m55", "the host runtime"), ("qemu-m55-cmsis", "upstream's Python cortex_m kernels")],
)
@pytest.mark.timeout(600)  # a cold runner build: 3.5 min
def test_a_board_is_exact_against_its_golden_reference_and_a_wrong_layer_is_not(
    builder: Builder, golden: GoldenReferences, tmp_path: Path, board_name: str, source: str
) -> None:
    from tests.test_qemu_board import _need_tools

    _need_tools()
    board = make_board(load_boards()[board_name], tmp_path / "logs")
    board.open()
    try:
        model, x = _case()
        result = check_model(
            builder, board, model, x, run_dir=tmp_path / "clean", quantize="int8", golden=golden
        )
        exact = result.comparison("golden")
        assert exact.source.startswith(source)
        assert result.golden == exact.source
        assert exact.passed, result.table()
        assert exact.metrics[0].max_lsb == 0.0
        # The board computes the second conv with weights 1.25x too large: against
        # the golden reference (the intended program, computed correctly) it differs.
        artifact = result.artifact
        program = front.load_program(
            artifact.exported_program_path,
            artifact.metadata["reference_op_namespaces"],
            artifact.model_name,
        )
        conv = faults.weighted_points(program.graph_module)[1]
        broken = check_model(
            builder, board, model, x, run_dir=tmp_path / "faulty", quantize="int8",
            golden=golden, fault=Fault(conv, factor=1.25),
        )  # fmt: skip
        assert str(broken.failure_class) == "numeric_mismatch"
        assert not broken.comparison("golden").passed
        assert (broken.comparison("golden").metrics[0].max_lsb or 0) > 1
    finally:
        board.close()


def test_no_golden_reference_for_the_reference_boards_themselves(builder: Builder) -> None:
    model, x = _case()
    boards = load_boards()
    for name in ("host", "tosa"):
        artifact = builder.build(model, x, target=boards[name].target, board=name, quantize="int8")
        board = make_board(boards[name], Path("/nonexistent"))  # never opened
        assert golden_kind(board, artifact) is None


@pytest.mark.timeout(180)  # took 40 s
def test_an_ethos_u_program_is_held_to_the_tosa_graph_of_its_own_specification(
    builder: Builder, golden: GoldenReferences, tmp_path: Path
) -> None:
    spec = load_boards()["corstone300"]  # Ethos-U55-128: TOSA-1.0+INT+int16+int4+u55
    model, x = _case()
    artifact = builder.build(model, x, target=spec.target, board=spec.name, quantize="int8")
    board = make_board(spec, tmp_path / "logs")  # an FVP board: never opened here
    assert golden_kind(board, artifact) == "tosa"
    made = golden.outputs(board, artifact, model, x, run_dir=tmp_path, quantize="int8")
    assert made is not None
    assert "tosa-int+int16+int4+u55" in made.source
    # what the TOSA reference model computes for that graph: the int8 model's output,
    # within the rounding the tosa board shows against fake-quant (same quantizer)
    from et_hil.verdict.check import fake_quant_outputs

    expected = fake_quant_outputs(artifact, x)[0].numpy()
    scale = artifact.output_scales[0]
    assert scale is not None
    assert abs(made.outputs[0] - expected).max() / scale <= 1.0 + 1e-4


def test_average_pooling_rounds_ties_away_from_zero_as_arm_avgpool_s8():
    from et_hil.verdict.cmsis_nn import avg_pool2d_s8

    # 2x2 windows of raw int8 values (arm_avgpool_s8 ignores the shared zero point):
    # sums 6, -6, 5 and 2 over 4 elements: 6/4 = 1.5 -> 2 (away from zero, where
    # round-half-even gives 2 as well), -6/4 = -1.5 -> -2, 5/4 = 1.25 -> 1,
    # 2/4 = 0.5 -> 1 (round-half-even, the Python reference's way, gives 0).
    x = torch.tensor(
        [[[[1, 2, -1, -2], [1, 2, -1, -2], [1, 2, 0, 1], [1, 1, 0, 1]]]], dtype=torch.int8
    )
    out = avg_pool2d_s8(x, [2, 2], [2, 2], [0, 0], False)
    assert out.tolist() == [[[[2, -2], [1, 1]]]]


def test_a_dilated_convolution_is_computed_exactly():
    from et_hil.verdict.cmsis_nn import conv2d_s8

    torch.manual_seed(0)
    x = torch.randint(-128, 128, (1, 3, 9, 9), dtype=torch.int8)
    w = torch.randint(-127, 128, (4, 3, 3, 3), dtype=torch.int8)  # OIHW
    out = conv2d_s8(
        x, w.permute(0, 2, 3, 1), None, [1, 1], [2, 2], [2, 2], 5, 0,
        torch.full((4,), 1 << 30), torch.full((4,), -10), -128, 127,
    )  # fmt: skip
    # by hand: the int64 sums of (x + 5) * w, times 2^30 / 2^31 / 2^10 = 1 / 2048
    # (arm_nn_requantize: a rounding doubling multiply, then a rounding shift by 10),
    # within int8
    sums = torch.nn.functional.conv2d(
        (x.to(torch.int64) + 5).double(), w.double(), padding=2, dilation=2
    ).to(torch.int64)
    expected = torch.div(sums + 1024, 2048, rounding_mode="floor").clamp(-128, 127)
    assert torch.equal(out.to(torch.int64), expected)
