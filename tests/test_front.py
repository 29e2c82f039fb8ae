"""The front of a build (export + quantization) is made once for every target of
one quantizer: a board matrix over tosa and the Ethos-U boards exports and
calibrates a model once (issue: "build at most once what several boards share")."""

from __future__ import annotations

import pytest
import torch

from et_hil.programs.builder import Builder, export_model, quantize_model
from et_hil.programs.cache import ArtifactCache
from et_hil.programs.quantization import QuantConfig, generated_calibration
from et_hil.programs.target_registry import get_target

pytestmark = pytest.mark.slow


class InvertedResidual(torch.nn.Module):
    """A MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1, shortcut."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        hidden = channels * 4
        self.expand = torch.nn.Sequential(
            torch.nn.Conv2d(channels, hidden, 1), torch.nn.BatchNorm2d(hidden), torch.nn.ReLU6()
        )
        self.depthwise = torch.nn.Sequential(
            torch.nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            torch.nn.BatchNorm2d(hidden),
            torch.nn.ReLU6(),
        )
        self.project = torch.nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.depthwise(self.expand(x)))


def _case() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return InvertedResidual().eval(), (torch.randn(1, 8, 12, 12),)


@pytest.mark.parametrize("scheme", ["int8", "a16w8"])
def test_the_arm_targets_quantize_a_model_identically(scheme):
    """What makes sharing the front safe: TOSAQuantizer and EthosUQuantizer give the
    same graph and the same weights for tosa-int and each Ethos-U (checked for the
    pinned ExecuTorch; a new release that changes this fails here)."""
    model, inputs = _case()
    config = QuantConfig(scheme=scheme)
    calibration = generated_calibration(inputs, config)
    programs = {}
    for name in ("tosa-int", "ethos-u55-128", "ethos-u65-256", "ethos-u85-256"):
        target = get_target(name, board="test", vela={})
        fake_quant = quantize_model(export_model(model, inputs), target, config, calibration, "m")
        programs[name] = export_model(fake_quant, inputs)
    tosa = programs.pop("tosa-int")
    for name, program in programs.items():
        assert program.graph_module.code == tosa.graph_module.code, name
        assert program.state_dict.keys() == tosa.state_dict.keys(), name
        for key, value in tosa.state_dict.items():
            assert torch.equal(program.state_dict[key], value), (name, key)


@pytest.mark.timeout(300)  # took 97 s
def test_a_matrix_of_arm_targets_exports_and_calibrates_once(tmp_path):
    builder = Builder(ArtifactCache(tmp_path / "cache"))
    model, inputs = _case()
    artifacts = [
        builder.build(model, inputs, target=target, board=target, quantize="int8")
        for target in ("tosa-int", "ethos-u55-128", "ethos-u85-256")
    ]
    assert builder.builds == 3  # three lowerings...
    assert builder.fronts == 1  # ...of one exported and calibrated program
    fronts = {a.metadata["front"]["key"] for a in artifacts}
    assert len(fronts) == 1
    assert [a.metadata["front"]["cache_hit"] for a in artifacts] == [False, True, True]
    # Each artifact's fake-quant reference is that front, byte for byte.
    references = {a.reference_path.read_bytes() for a in artifacts if a.reference_path}
    assert len(references) == 1

    # The portable target has a quantizer of its own: a front of its own.
    builder.build(model, inputs, target="portable", board="host", quantize="int8")
    assert builder.fronts == 2
    # A float program shares its export between targets (host and tosa-fp).
    builder.build(model, inputs, target="portable", board="host")
    builder.build(model, inputs, target="tosa-fp", board="tosa-fp")
    assert builder.fronts == 3

    # Another process (a fresh builder on the same cache) finds everything built.
    again = Builder(ArtifactCache(tmp_path / "cache"))
    again.build(model, inputs, target="ethos-u65-256", board="u65", quantize="int8")
    assert (again.builds, again.fronts) == (1, 0)


def test_other_calibration_data_is_another_front(tmp_path):
    builder = Builder(ArtifactCache(tmp_path / "cache"))
    model, inputs = _case()
    builder.build(model, inputs, target="tosa-int", board="tosa", quantize="int8")
    other = [(torch.randn(1, 8, 12, 12) * 3,)]
    builder.build(
        model, inputs, target="tosa-int", board="tosa", quantize="int8", calibration=other
    )
    assert builder.fronts == 2


@pytest.mark.timeout(780)  # took 255 s
def test_a_fresh_process_lowers_a_cached_quantized_front(tmp_path):
    """A process that takes the front from the cache never makes a quantizer, which is
    where ExecuTorch registers the quantized kernels that to_executorch needs (seen:
    'Missing out variants: quantized_decomposed::dequantize_per_tensor'). The second
    process of each target lowers a faulted program (another artifact) of the front
    the first one made."""
    import subprocess
    import sys

    script = """
import sys
import torch
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache
from et_hil.programs.faults import Fault
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
builder = Builder(ArtifactCache(sys.argv[1]))
fault = Fault(sys.argv[3], kind="requantize") if len(sys.argv) > 3 else None
artifact = builder.build(model.eval(), (torch.randn(1, 3, 8, 8),), target=sys.argv[2],
                         board="b", quantize="int8", fault=fault)
print(builder.fronts, builder.builds, artifact.metadata["tap_candidates"][-1]["node"])
"""

    def build(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "cache"), *args],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()[-3:]

    for target in ("portable", "tosa-int", "cortex-m55"):
        fronts, builds, last = build(target)
        assert (fronts, builds) == ("1", "1"), target
        fronts, builds, _ = build(target, last)
        assert (fronts, builds) == ("0", "1"), target
