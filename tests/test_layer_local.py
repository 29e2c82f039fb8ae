"""The pieces of the per-layer table at depth, without a board: the layer-local
reference (the fake-quant layer run on the board's own inputs), the float point a
quantized layer is compared with (past a folded BatchNorm), a layer's inputs, and
the names of rows a compiler pass made."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from et_hil.programs.builder import export_model, quantize_model
from et_hil.programs.quantization import QuantConfig, generated_calibration
from et_hil.programs.taps import candidates, describe, layer_inputs
from et_hil.programs.target_registry import get_target
from et_hil.verdict.debug import float_points
from et_hil.verdict.replay import replay

pytestmark = pytest.mark.slow


class Residual(nn.Module):
    """conv+BN+ReLU, conv+BN, a residual add, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x) + self.body(self.stem(x)))
        return self.head(y.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def programs() -> tuple[nn.Module, tuple[torch.Tensor, ...], object, object]:
    model = Residual().eval()
    with torch.no_grad():
        for bn in (model.stem[1], model.body[1]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    x = (torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)),)
    config = QuantConfig()
    float_program = export_model(model, x)
    fake_quant = quantize_model(
        float_program, get_target("tosa-int", board="t"), config,
        generated_calibration(x, config), "Residual",
    )  # fmt: skip
    return model, x, float_program, export_model(fake_quant, x)


def test_a_quantized_conv_is_compared_with_the_float_value_after_its_batchnorm(programs):
    _, _, float_program, fake_quant = programs
    points = float_points(float_program.module())
    rows = [describe(n) for n in candidates(fake_quant.graph_module, True)]
    body_conv = next(r for r in rows if r["module_path"] == "body.0")
    # PT2E folded body.1 (BatchNorm) into body.0: the float graph's point is the BN
    assert body_conv["source"].startswith("conv2d")
    assert points[body_conv["source"]].startswith("batch_norm")
    # an op with no BatchNorm after it is its own point
    assert points["linear"] == "linear"


def test_a_residual_add_reads_both_branches(programs):
    _, _, _, fake_quant = programs
    graph = fake_quant.graph_module
    rows = [describe(n) for n in candidates(graph, True)]
    add = next(r for r in rows if r["op"] == "aten.add.Tensor")
    inputs = layer_inputs(graph, add["node"])
    sources = {describe(next(n for n in graph.graph.nodes if n.name == i))["module_path"]
               for i in inputs}  # fmt: skip
    assert sources == {"stem.2", "body.0"}  # the stem's ReLU and the body's conv(+BN)


def test_the_local_reference_starts_from_the_boards_own_values(programs):
    """A board whose stem is one step off everywhere: the stem's own error is 1 LSB on
    every element; the layers after it, fed that stem, compute exactly what their
    reference does from it (0 LSB on their own) while their accumulated error is not 0."""
    _, x, _, fake_quant = programs
    module = fake_quant.module()
    graph = fake_quant.graph_module
    rows = [describe(n) for n in candidates(graph, True)]
    plain = replay(module, x, keep_values=True)
    stem = next(r for r in rows if r["module_path"] == "stem.2")
    shifted = torch.clamp(plain.values[stem["node"]].to(torch.int32) + 1, -128, 127).to(torch.int8)
    # what an honest board would give after that stem: the reference run from it
    board = replay(module, x, board_values={stem["node"]: shifted}, keep_values=True)
    later = [r["node"] for r in rows if r["node"] != stem["node"] and r["op"] != "input"]
    board_values = {stem["node"]: shifted, **{n: board.values[n] for n in later}}
    local = replay(module, x, board_values=board_values).local
    steps = (shifted.to(torch.int32) - local[stem["node"]].to(torch.int32)).abs()
    assert int(steps.max()) == 1
    assert float((steps == 1).float().mean()) > 0.9  # all but the values clamped at 127
    for node in later:
        assert torch.equal(local[node], board.values[node]), node  # 0 LSB on its own
    moved = [n for n in later if not torch.equal(board.values[n], plain.values[n])]
    assert moved  # ...while the error accumulated downstream


def test_rows_made_by_a_pass_are_named_after_the_model_not_the_pass():
    """Upstream's passes make nodes whose stack trace ends in the pass's file (seen:
    ``decompose_avg_pool2d_pass.py:167``): such a row takes no code line from them."""
    from types import SimpleNamespace

    from et_hil.programs.taps import _code_line

    made_by_a_pass = SimpleNamespace(
        meta={
            "stack_trace": 'File "/venv/lib/python3.11/site-packages/executorch/backends/arm/'
            '_passes/decompose_avg_pool2d_pass.py", line 167, in call\n'
        }
    )
    assert _code_line(made_by_a_pass) == ""
    own = SimpleNamespace(meta={"stack_trace": 'File "/work/repo/models.py", line 42, in x\n'})
    assert _code_line(own) == "models.py:42"
