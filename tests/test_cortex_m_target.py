"""The Cortex-M targets (``cortex-m55``, ``cortex-m85``): programs built through the
harness's Builder call upstream's ``cortex_m::`` (CMSIS-NN) operators.

The host runtime (ExecuTorch's pybindings) registers no ``cortex_m`` kernels, so
these programs cannot run here; what is checked instead: the operators in the
``.pte`` and in the metadata a firmware build selects kernels from, the
fake-quant reference, and the lowered graph run through upstream's Python
implementations of the ``cortex_m`` operators (within 1 LSB of fake-quant).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from et_hil.errors import BuildError
from et_hil.programs import cortex_m_passes, op_libraries
from et_hil.programs.artifact import Artifact
from et_hil.programs.builder import Builder, export_model, quantize_model
from et_hil.programs.fingerprint import input_specs
from et_hil.programs.quantization import QuantConfig, generated_calibration
from et_hil.programs.taps import TapPlan
from et_hil.programs.target_registry import get_target, has_delegate
from et_hil.programs.targets import CORTEX_M_PASSES_REVISION, CortexMTarget

ROOT = Path(__file__).resolve().parent.parent

# What the CMSIS-NN lowering of each model must call (full names, as a firmware
# build's operator selection spells them).
CONV_OPS = {
    "cortex_m::quantize_per_tensor.out",
    "cortex_m::quantized_conv2d.out",
    "cortex_m::quantized_linear.out",
    "cortex_m::dequantize_per_tensor.out",
}
ADD_OPS = {
    "cortex_m::quantize_per_tensor.out",
    "cortex_m::quantized_add.out",
    "cortex_m::dequantize_per_tensor.out",
}


class ConvReluLinear(nn.Module):
    """conv -> relu -> flatten -> linear: tiny (3x4x4 input)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.relu(self.conv(x)).flatten(1))
        return out


class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def conv_model() -> ConvReluLinear:
    torch.manual_seed(0)
    return ConvReluLinear().eval()


def conv_inputs(channels_last: bool = True) -> tuple[torch.Tensor]:
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    # The legacy Cortex-M pipeline (upstream's default) lowers convolutions on
    # channels_last tensors only.
    return (x.to(memory_format=torch.channels_last) if channels_last else x,)


def add_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)


@pytest.fixture(scope="module")
def conv_artifact(builder: Builder) -> Artifact:
    return builder.build(
        conv_model(), conv_inputs(), target="cortex-m55", board="b", quantize="int8"
    )


@pytest.fixture(scope="module")
def add_artifact(builder: Builder) -> Artifact:
    return builder.build(Add(), add_inputs(), target="cortex-m55", board="b", quantize="int8")


def pte_operators(artifact: Artifact) -> set[str]:
    """The operators the serialized program itself lists (not the metadata)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(artifact.pte_path.read_bytes()).program
    return {f"{op.name}.{op.overload}" for plan in program.execution_plan for op in plan.operators}


# ---------------------------------------------------------------- the targets


@pytest.mark.parametrize("name", ["cortex-m55", "cortex-m85"])
def test_the_cortex_m_targets_are_cpu_only(name: str) -> None:
    target = get_target(name, board="b")
    assert isinstance(target, CortexMTarget)
    assert target.name == name
    assert not target.delegates
    assert not has_delegate(name)  # the board file check says the same
    assert not target.int_only  # float programs run on the portable kernels
    assert target.partitioners(Path("unused")) == []
    assert target.options() == {"explicit_layout": False, "passes": CORTEX_M_PASSES_REVISION}
    assert CortexMTarget(name, explicit_layout=True).options() != target.options()


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (QuantConfig(scheme="a16w8"), "quantization scheme 'a16w8' is not supported"),
        (QuantConfig(per_channel=False), "per_channel=False is not supported"),
    ],
)
def test_what_the_cortex_m_quantizer_cannot_do_is_refused(
    config: QuantConfig, problem: str
) -> None:
    with pytest.raises(BuildError, match=problem):
        CortexMTarget("cortex-m55").quantizer(config)


# ---------------------------------------------------------------- built programs


def test_conv_relu_linear_calls_cmsis_nn_operators(conv_artifact: Artifact) -> None:
    metadata = conv_artifact.metadata
    assert metadata["target"] == "cortex-m55"
    operators = metadata["operators"]
    assert operators == sorted(operators)
    assert set(operators) >= CONV_OPS, operators
    # Nothing of the quantized graph is left to the portable kernels.
    assert not [op for op in operators if op.startswith(("quantized_decomposed::", "aten::conv"))]
    # The metadata lists what the program itself calls.
    assert set(operators) == pte_operators(conv_artifact)
    delegation = metadata["delegation"]
    assert delegation["delegated_subgraphs"] == 0
    assert delegation["cpu_ops"]["cortex_m.quantized_conv2d"] == 1
    assert delegation["cpu_ops"]["cortex_m.quantized_linear"] == 1
    # The backend's own operators are not "fallback"; scratch allocations are not ops.
    assert not [op for op in delegation["cpu_fallback"] if op.startswith("cortex_m.")]
    assert "alloc" not in delegation["cpu_ops"]
    # The channels_last input is the program's, and part of the cache key.
    assert metadata["program_io"]["inputs"][0]["dim_order"] == [0, 2, 3, 1]
    assert metadata["input_specs"][0]["dim_order"] == [0, 2, 3, 1]


def test_add_calls_the_quantized_add_operator(add_artifact: Artifact) -> None:
    operators = set(add_artifact.metadata["operators"])
    assert operators == ADD_OPS
    assert operators == pte_operators(add_artifact)
    assert add_artifact.metadata["delegation"]["cpu_fallback"] == {}


def test_cortex_m85_is_its_own_build(builder: Builder, add_artifact: Artifact) -> None:
    m85 = builder.build(Add(), add_inputs(), target="cortex-m85", board="b", quantize="int8")
    assert m85.key != add_artifact.key  # the target's name is part of the key
    assert m85.metadata["target"] == "cortex-m85"
    assert set(m85.metadata["operators"]) == ADD_OPS


def test_an_nchw_convolution_runs_on_cmsis_nn_and_the_program_keeps_nchw_inputs(
    builder: Builder, conv_artifact: Artifact
) -> None:
    """Upstream's quantizer takes convolutions on channels_last tensors only; the
    harness gives an NCHW one a channels_last copy of its input. The program's input
    stays NCHW (another program and cache key than the channels_last one)."""
    nchw = builder.build(
        conv_model(), conv_inputs(channels_last=False), target="cortex-m55", board="b",
        quantize="int8",
    )  # fmt: skip
    assert nchw.key != conv_artifact.key
    assert "dim_order" not in nchw.metadata["input_specs"][0]
    assert nchw.metadata["program_io"]["inputs"][0]["dim_order"] == [0, 1, 2, 3]
    assert set(nchw.metadata["operators"]) == set(conv_artifact.metadata["operators"])
    assert set(nchw.metadata["operators"]) >= CONV_OPS
    cpu_ops = nchw.metadata["delegation"]["cpu_ops"]
    # Two int8 layout copies: the quantized input to channels_last for the
    # convolution, and the relu's output back to NCHW for the flatten (a view of NCHW
    # memory). The channels_last program has the second only (export's own, for the
    # flatten).
    assert cpu_ops["dim_order_ops._clone_dim_order"] == 2
    assert conv_artifact.metadata["delegation"]["cpu_ops"]["dim_order_ops._clone_dim_order"] == 1
    assert "aten.convolution" not in nchw.metadata["delegation"]["cpu_fallback"]


def test_a_tapped_build_keeps_the_cmsis_nn_operators(builder: Builder) -> None:
    tapped = builder.build(
        conv_model(), conv_inputs(), target="cortex-m55", board="b", quantize="int8",
        taps=TapPlan(),
    )  # fmt: skip
    assert set(tapped.metadata["operators"]) >= CONV_OPS
    taps = tapped.metadata["taps"]
    assert taps
    assert all(tap["where"] == "CPU" for tap in taps)
    outputs = tapped.metadata["program_io"]["outputs"]
    assert len(outputs) == 1 + len(taps)
    assert {o["dtype"] for o in outputs[1:]} == {"int8"}  # quantized values, exactly


class ConvHardswish(nn.Module):
    """Upstream's Cortex-M passes fail on this graph when it is float."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.hardswish(self.conv(x))


def test_a_float_program_is_lowered_for_the_portable_kernels(builder: Builder) -> None:
    """Nothing to give CMSIS-NN: ExecuTorch's default lowering, which the host runtime
    (portable kernels) runs."""
    from executorch.extension.pybindings import portable_lib

    torch.manual_seed(0)
    model = ConvHardswish().eval()
    inputs = conv_inputs(channels_last=False)
    artifact = builder.build(model, inputs, target="cortex-m55", board="b")
    operators = artifact.metadata["operators"]
    assert not [op for op in operators if op.startswith("cortex_m::")]
    assert "aten::convolution.out" in operators
    assert "aten::hardswish.out" not in operators  # decomposed, as for the portable target
    # From the file, not from a buffer: a module loaded from a buffer reads the
    # program's bytes in place, and read_bytes()'s were freed before run_method (it
    # crashed an xdist worker with a segmentation fault in CI)
    module = portable_lib._load_for_executorch(str(artifact.pte_path))
    (out,) = module.run_method("forward", inputs)
    with torch.no_grad():
        torch.testing.assert_close(out, model(*inputs), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- references and runtimes


def test_the_fake_quant_reference_still_works(conv_artifact: Artifact) -> None:
    from et_hil.verdict.check import fake_quant_outputs

    namespaces = conv_artifact.metadata["reference_op_namespaces"]
    assert set(namespaces) <= set(op_libraries.REGISTRIES)
    (fake_quant,) = fake_quant_outputs(conv_artifact, conv_inputs())
    with torch.no_grad():
        eager = conv_model()(*conv_inputs())
    (scale,) = conv_artifact.output_scales
    assert scale is not None
    # Quantization error of a conv and a linear: a few output LSBs at most.
    assert float((fake_quant - eager).abs().max()) / scale <= 8


def test_the_reference_loads_in_a_fresh_process(conv_artifact: Artifact) -> None:
    """A later run finds the artifact in the cache: it must load its reference (and the
    cortex_m operator library) without the imports the build made."""
    from et_hil.verdict.check import fake_quant_outputs

    (expected,) = fake_quant_outputs(conv_artifact, conv_inputs())
    code = (
        "import json, sys, torch\n"
        "from pathlib import Path\n"
        "from et_hil.programs import op_libraries\n"
        "from et_hil.programs.artifact import Artifact\n"
        "from et_hil.verdict.check import fake_quant_outputs\n"
        "op_libraries.register(['cortex_m'])\n"
        "assert torch.ops.cortex_m.quantized_conv2d.default is not None\n"
        f"artifact = Artifact.from_folder('k', Path({str(conv_artifact.folder)!r}),"
        " cache_hit=True, obtain_s=0.0)\n"
        "x = torch.tensor(json.loads(sys.stdin.read()))"
        ".to(memory_format=torch.channels_last)\n"
        "(out,) = fake_quant_outputs(artifact, (x,))\n"
        "print(json.dumps(out.tolist()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        input=json.dumps(conv_inputs()[0].tolist()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = torch.tensor(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert torch.equal(got, expected)


def test_the_host_runtime_has_no_cortex_m_kernels(conv_artifact: Artifact) -> None:
    """ExecuTorch's pybindings (portable and quantized kernels) register no ``cortex_m``
    kernel, so the host cannot run these programs: it refuses to load the method. When
    a wheel does register them, the program is run and compared with fake-quant."""
    import executorch.kernels.quantized  # noqa: F401  (the quantized_decomposed kernels)
    from executorch.extension.pybindings import portable_lib

    registered = set(portable_lib._get_operator_names())
    missing = set(conv_artifact.metadata["operators"]) - registered
    if missing:
        assert missing == {op for op in CONV_OPS if op.startswith("cortex_m::")}, missing
        program = conv_artifact.pte_path.read_bytes()
        with pytest.raises(RuntimeError):
            portable_lib._load_for_executorch_from_buffer(program).run_method(
                "forward", conv_inputs()
            )
        return
    from et_hil.verdict.check import fake_quant_outputs

    module = portable_lib._load_for_executorch(
        str(conv_artifact.pte_path)
    )  # the file: see the float test
    (out,) = module.run_method("forward", conv_inputs())
    (expected,) = fake_quant_outputs(conv_artifact, conv_inputs())
    (scale,) = conv_artifact.output_scales
    assert scale is not None
    assert float((out - expected).abs().max()) / scale <= 1 + 1e-6


def lowered_dialect(
    target: CortexMTarget, model: nn.Module, inputs: tuple[torch.Tensor, ...]
) -> tuple[Any, Any, list[float | None]]:
    """The target's lowering of ``model``, stopped before ``to_executorch``: the edge
    program with its ``cortex_m`` operators, the fake-quant model, the output scales
    (``None`` for an output the quantizer left in float)."""
    from executorch.exir import to_edge_transform_and_lower

    from et_hil.programs.builder import output_scales

    config = QuantConfig()
    exported = export_model(model, inputs)
    fake_quant = quantize_model(
        exported, target, config, generated_calibration(inputs, config), "m"
    )
    requantized = export_model(fake_quant, inputs)
    scales = output_scales(requantized)
    edge = to_edge_transform_and_lower(
        requantized, compile_config=target.edge_compile_config(quantized=True)
    )
    return target.edge_passes(edge, quantized=True).exported_program(), fake_quant, scales


def _op_names(program: Any) -> set[str]:
    return {
        str(getattr(node.target, "_name", node.target))
        for node in program.graph.nodes
        if node.op == "call_function"
    }


def _nodes(program: Any, name: str) -> list[Any]:
    return [
        node
        for node in program.graph.nodes
        if node.op == "call_function" and getattr(node.target, "_name", None) == name
    ]


class Unary(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class SharedLinear(nn.Module):
    """A linear whose output a relu and a sigmoid both read (no relu fusion)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(x)
        return torch.relu(y), torch.sigmoid(y)


class Attention(nn.Module):
    """linear -> chunk -> matmul: the matmul's operands come from the linear (and a
    hardswish the passes make a table of, while the linear's bias is cast)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ nn.functional.hardswish(v)


def image(channels_last: bool = False) -> tuple[torch.Tensor]:
    x = torch.randn(1, 8, 8, 8, generator=torch.Generator().manual_seed(3))
    return (x.to(memory_format=torch.channels_last) if channels_last else x,)


def sequence() -> tuple[torch.Tensor]:
    return (torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(4)),)


def rows() -> tuple[torch.Tensor]:
    return (torch.randn(3, 8, generator=torch.Generator().manual_seed(5)),)


@pytest.mark.parametrize(
    ("explicit_layout", "model", "inputs", "expected"),
    [
        (False, conv_model, conv_inputs, "cortex_m::quantized_conv2d"),
        (False, Add, add_inputs, "cortex_m::quantized_add"),
        # Upstream's experimental pipeline also lowers an NCHW convolution.
        (
            True,
            conv_model,
            lambda: conv_inputs(channels_last=False),
            "cortex_m::quantized_conv2d_nhwc",
        ),
        # Not after a convolution or linear: a table lookup (upstream left it on int8).
        (False, lambda: Unary(nn.functional.hardswish), image, "cortex_m::quantized_activation"),
        # Pooling on NCHW tensors: on channels_last copies (the kernels need them).
        (False, lambda: nn.AvgPool2d(2), image, "cortex_m::quantized_avg_pool2d"),
        (False, lambda: nn.MaxPool2d(3, 2, 1), image, "cortex_m::quantized_max_pool2d"),
        (False, lambda: nn.AdaptiveAvgPool2d(1), image, "cortex_m::quantized_avg_pool2d"),
        # The relu is not fused (the linear has two users): a clamp at quantized bounds.
        (False, SharedLinear, rows, "cortex_m::quantized_linear"),
        (False, Attention, sequence, "cortex_m::quantized_batch_matmul"),
    ],
    ids=[
        "conv-relu-linear",
        "add",
        "conv-nchw-explicit-layout",
        "hardswish",
        "avg-pool-nchw",
        "max-pool-nchw",
        "adaptive-avg-pool-nchw",
        "shared-linear-relu",
        "attention",
    ],
)
def test_the_lowered_graph_matches_fake_quant_within_one_lsb(
    explicit_layout: bool,
    model: Callable[[], nn.Module],
    inputs: Callable[[], tuple[torch.Tensor, ...]],
    expected: str,
) -> None:
    """The lowered graph run through upstream's Python implementations of the
    ``cortex_m`` operators (integer requantization, as the CMSIS-NN kernels do)."""
    target = CortexMTarget("cortex-m55", explicit_layout=explicit_layout)
    # Weights from a fixed seed: drawn from whatever state the worker's earlier tests
    # left, the attention case's matmul of two requantized operands measured 2 LSB once.
    torch.manual_seed(0)
    program, fake_quant, scales = lowered_dialect(target, model().eval(), inputs())
    names = _op_names(program)
    assert expected in names, names
    assert not [n for n in names if n.startswith("quantized_decomposed::")]
    with torch.no_grad():
        lowered = torch.utils._pytree.tree_leaves(program.module()(*inputs()))
        reference = torch.utils._pytree.tree_leaves(fake_quant(*inputs()))
    assert len(lowered) == len(reference) == len(scales)
    for out, ref, scale in zip(lowered, reference, scales, strict=True):
        assert scale is not None
        # float32 dequantized values: one step can measure a few 1e-6 over 1.
        assert float((out - ref).abs().max()) / scale <= 1 + 1e-4


def test_pooling_runs_on_channels_last_copies_of_nchw_tensors() -> None:
    """The CMSIS-NN pooling kernels refuse NCHW tensors: the pool reads a channels_last
    copy of its input, and the rest of the program gets its output back in NCHW."""
    from et_hil.programs.cortex_m_passes import dim_order

    target = CortexMTarget("cortex-m55")
    program, _, _ = lowered_dialect(target, nn.AvgPool2d(2).eval(), image())
    (pool,) = _nodes(program, "cortex_m::quantized_avg_pool2d")
    (pad,) = pool.all_input_nodes[:1]  # counts its padding: a cortex_m::pad in between
    assert pad.target._name == "cortex_m::pad"
    (copy,) = pad.all_input_nodes
    assert copy.target._name == "dim_order_ops::_to_dim_order_copy"
    assert dim_order(pool.meta["val"]) == dim_order(pad.meta["val"]) == (0, 2, 3, 1)
    (back,) = pool.users
    assert back.target._name == "dim_order_ops::_to_dim_order_copy"
    assert dim_order(back.meta["val"]) == (0, 1, 2, 3)
    # A channels_last program needs no copies.
    program, _, _ = lowered_dialect(target, nn.AvgPool2d(2).eval(), image(channels_last=True))
    assert _nodes(program, "cortex_m::quantized_avg_pool2d")
    assert not _nodes(program, "dim_order_ops::_to_dim_order_copy")


def test_a_relu_the_linear_cannot_take_clamps_at_the_zero_point() -> None:
    """Upstream leaves this relu on the raw int8 values (clamping at 0, not at the
    output's zero point) because it sees the linear's output typed int32."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), SharedLinear().eval(), rows())
    assert not _nodes(program, "aten::relu")
    (clamp,) = _nodes(program, "aten::clamp")
    (linear,) = _nodes(program, "cortex_m::quantized_linear")
    assert clamp.args[0] is linear
    assert clamp.args[1] == linear.args[6]  # the linear's output zero point
    # The int8 cast the linear's bias had in between is gone.
    assert not _nodes(program, "dim_order_ops::_to_dim_order_copy")


def test_a_float_activation_is_decomposed_for_the_portable_kernels(builder: Builder) -> None:
    """The quantizer leaves a hardsigmoid after an add in float; upstream's edge
    configuration keeps it whole, and no portable kernel implements it."""

    class AddHardsigmoid(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return nn.functional.hardsigmoid(x + y)

    artifact = builder.build(
        AddHardsigmoid(), add_inputs(), target="cortex-m55", board="b", quantize="int8"
    )
    operators = artifact.metadata["operators"]
    assert "cortex_m::quantized_add.out" in operators
    assert not [op for op in operators if "hardsigmoid" in op]
    program, fake_quant, (scale,) = lowered_dialect(
        CortexMTarget("cortex-m55"), AddHardsigmoid(), add_inputs()
    )
    # dequantize -> the float decomposition -> quantize
    (div,) = _nodes(program, "aten::div.Scalar")
    assert div.args[0].target._name == "aten::clamp"
    assert div.args[0].meta["val"].dtype == torch.float32
    assert scale is not None
    with torch.no_grad():
        lowered = program.module()(*add_inputs())
        reference = fake_quant(*add_inputs())
    assert float((lowered - reference).abs().max()) / scale <= 1 + 1e-4


def test_the_harness_passes_go_around_upstreams() -> None:
    from executorch.backends.arm._passes import FoldAndAnnotateQParamsPass
    from executorch.backends.cortex_m.passes.aten_to_cortex_m_pass import AtenToCortexMPass
    from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager

    from et_hil.programs import cortex_m_passes as ours

    for explicit_layout in (False, True):
        passes = ours.pass_list(explicit_layout)
        upstream = (
            CortexMPassManager.explicit_layout_pass_list
            if explicit_layout
            else CortexMPassManager.legacy_pass_list
        )
        assert [p for p in passes if p.__module__ != ours.__name__] == upstream
        fold, lower = passes.index(FoldAndAnnotateQParamsPass), passes.index(AtenToCortexMPass)
        assert passes[fold + 1] is ours.TraceQuantizedLinearsAsInt8
        assert passes[lower - 2 : lower] == [
            ours.LutForUnfusedActivations,
            ours.RestoreLinearBiases,
        ]
        assert passes[lower + 1 :] == [
            ours.PortableTransposeAboveRank4,
            ours.ChannelsLastCmsisOperands,
            ours.DropInverseLayoutCopies,
            ours.DropOneChannelLayoutCopies,
            ours.DecomposeFloatActivations,
        ]


def test_an_unlowered_linear_is_named() -> None:
    """What upstream's edge configuration keeps whole and its passes leave has no
    portable kernel: the build names it instead of making a program no runner loads."""
    from executorch.exir import to_edge_transform_and_lower

    from et_hil.programs.cortex_m_passes import unlowered_preserved_ops

    target = CortexMTarget("cortex-m55")
    model = nn.Linear(8, 4).eval()
    edge = to_edge_transform_and_lower(
        export_model(model, rows()), compile_config=target.edge_compile_config(quantized=True)
    )
    assert unlowered_preserved_ops(edge.exported_program()) == [
        "aten::linear (aten_linear_default)"
    ]
    program, _, _ = lowered_dialect(target, model, rows())
    assert unlowered_preserved_ops(program) == []


def test_channels_last_inputs_have_their_own_cache_key() -> None:
    contiguous = input_specs(conv_inputs(channels_last=False))
    channels_last = input_specs(conv_inputs())
    assert contiguous == [{"shape": [1, 3, 4, 4], "dtype": "float32"}]
    assert channels_last == [{"shape": [1, 3, 4, 4], "dtype": "float32", "dim_order": [0, 2, 3, 1]}]


# ---------------------------------------------------------------- real-shaped models


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project (ReLU6, BN)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x)
        return x + out if self.residual else out


class InvertedResidualStack(nn.Module):
    """A MobileNetV2 in small: stem, 6 inverted-residual blocks (2 residual), 1x1
    head, global pool, classifier; 32x32 NCHW input, as torchvision's models take."""

    # (in, out, stride, expansion) per block
    BLOCKS = (
        (16, 8, 1, 1), (8, 16, 2, 4), (16, 16, 1, 4),
        (16, 24, 2, 4), (24, 24, 1, 4), (24, 32, 1, 4),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()
        )
        self.blocks = nn.Sequential(*(InvertedResidual(*b) for b in self.BLOCKS))
        self.head = nn.Sequential(nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(self.blocks(self.stem(x)))
        out: torch.Tensor = self.fc(torch.flatten(self.pool(features), 1))
        return out


def inverted_residual_stack() -> InvertedResidualStack:
    torch.manual_seed(0)
    model = InvertedResidualStack().eval()
    for module in model.modules():  # BatchNorm statistics other than the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model


def photo(channels_last: bool = False) -> tuple[torch.Tensor]:
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    return (x.to(memory_format=torch.channels_last) if channels_last else x,)


class Recurrent(nn.Module):
    """A keyword spotter's shape: an LSTM or GRU over frames, a classifier on the last."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(12, 24, batch_first=True)
        self.fc = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        result: torch.Tensor = self.fc(out[:, -1])
        return result


def recurrent(cell: type[nn.Module]) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        torch.manual_seed(0)
        return Recurrent(cell).eval()

    return make


FRAMES = 4


def frames() -> tuple[torch.Tensor]:
    return (torch.randn(1, FRAMES, 12, generator=torch.Generator().manual_seed(7)),)


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` as a TransformerEncoderLayer uses it (batch_first)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.attention(x, x, x, need_weights=False)[0]
        return out


def self_attention() -> SelfAttention:
    torch.manual_seed(0)
    return SelfAttention().eval()


def token_sequence() -> tuple[torch.Tensor]:
    return (torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(8)),)


class ScaledByConstant(nn.Module):
    """A linear's output times a tensor ``forward()`` makes: traced as an operator,
    upstream's lowering gave the quantized multiply a float operand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * torch.full((3, 8), 0.5)


class Conv1dHead(nn.Module):
    """A 1-D convolution (audio, sensor signals): upstream's default quantizer takes
    2-D ones only; the retrace makes it a 2-D one of height 1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.relu(self.conv(x)).mean(-1))
        return out


def conv1d_head() -> Conv1dHead:
    torch.manual_seed(0)
    return Conv1dHead().eval()


def signal() -> tuple[torch.Tensor]:
    return (torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(9)),)


@pytest.mark.parametrize(
    ("model", "inputs", "expected"),
    [
        (inverted_residual_stack, photo, "cortex_m::quantized_depthwise_conv2d"),
        (recurrent(nn.LSTM), frames, "cortex_m::quantized_linear"),
        (recurrent(nn.GRU), frames, "cortex_m::quantized_linear"),
        (self_attention, token_sequence, "cortex_m::quantized_linear"),
        (ScaledByConstant, rows, "cortex_m::quantized_mul"),
        (conv1d_head, signal, "cortex_m::quantized_conv2d"),
    ],
    ids=["inverted-residual-nchw", "lstm", "gru", "self-attention", "forward-constant", "conv1d"],
)
def test_what_upstream_left_in_float_runs_on_cmsis_nn_within_one_lsb(
    model: Callable[[], nn.Module],
    inputs: Callable[[], tuple[torch.Tensor, ...]],
    expected: str,
) -> None:
    """NCHW and 1-D convolutions, recurrent layers, attention and constants made in
    forward(): every convolution and linear on CMSIS-NN, no ``cortex_m`` kernel with a float
    operand, and the lowered graph (upstream's Python ``cortex_m`` kernels) within
    1 LSB of fake-quant."""
    from et_hil.programs.cortex_m_passes import off_cmsis_nn

    program, fake_quant, (scale,) = lowered_dialect(CortexMTarget("cortex-m55"), model(), inputs())
    names = _op_names(program)
    assert expected in names, names
    assert off_cmsis_nn(program) == []
    assert not _nodes(program, "aten::convolution")
    assert not _nodes(program, "aten::linear")
    assert scale is not None
    with torch.no_grad():
        lowered = program.module()(*inputs())
        reference = fake_quant(*inputs())
    assert float((lowered - reference).abs().max()) / scale <= 1 + 1e-4


@pytest.mark.timeout(180)  # took 55 s
def test_an_nchw_mobilenet_is_one_channels_last_region() -> None:
    """Each convolution's output stays channels_last through the activations and the
    residual adds after it: the NCHW program has the channels_last program's kernels,
    plus one copy of its input to channels_last and one of the pooled features back to
    NCHW (for the flatten), nothing in between."""
    target = CortexMTarget("cortex-m55")
    nchw, _, _ = lowered_dialect(target, inverted_residual_stack(), photo())
    channels_last, _, _ = lowered_dialect(target, inverted_residual_stack(), photo(True))
    convolutions = sum(isinstance(m, nn.Conv2d) for m in inverted_residual_stack().modules())
    assert convolutions == 19  # stem, 2 or 3 per block (the first has no expansion), head
    kernels = _nodes(nchw, "cortex_m::quantized_conv2d")
    kernels += _nodes(nchw, "cortex_m::quantized_depthwise_conv2d")
    assert len(kernels) == convolutions
    copies = [
        n for n in nchw.graph.nodes if n.op == "call_function" and "dim_order" in str(n.target)
    ]
    assert len(copies) == 2
    assert [cortex_m_passes.dim_order(c.meta["val"]) for c in copies] == [
        (0, 2, 3, 1),
        (0, 1, 2, 3),
    ]

    def counts(program: Any) -> dict[str, int]:
        ops = [
            str(getattr(n.target, "_name", n.target))
            for n in program.graph.nodes
            if n.op == "call_function" and "dim_order" not in str(n.target)
        ]
        return {op: ops.count(op) for op in set(ops)}

    assert counts(nchw) == counts(channels_last)


class Spectrogram(nn.Module):
    """A keyword spotter's front (MLPerf Tiny's DS-CNN): a one-channel MFCC image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, (5, 3), stride=2, padding=(2, 1))
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))
        return out


def spectrogram() -> Spectrogram:
    torch.manual_seed(0)
    return Spectrogram().eval()


def mfcc() -> tuple[torch.Tensor]:
    return (torch.randn(1, 1, 12, 10, generator=torch.Generator().manual_seed(10)),)


def test_a_one_channel_input_goes_to_cmsis_nn_without_a_copy() -> None:
    """``[N, 1, H, W]`` has the same bytes in both layouts; a copy to channels_last
    would be serialized with dim order (0, 2, 1, 3), which the copy kernel refuses at
    run time. The convolution reads the quantized input itself."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), spectrogram(), mfcc())
    # One input channel: upstream makes it a depthwise convolution (multiplier 8).
    (conv,) = _nodes(program, "cortex_m::quantized_depthwise_conv2d")
    assert conv.args[0].target._name == "cortex_m::quantize_per_tensor"
    assert not [
        n
        for n in program.graph.nodes
        if "dim_order" in str(n.target) and n.meta["val"].shape[1] == 1
    ]


def test_a_1d_convolution_takes_its_activation_along() -> None:
    """The relu after a Conv1d is fused into the CMSIS-NN convolution, as after a
    Conv2d (left after the squeeze back to 1-D, it was a separate clamp, and the
    convolution's output range spent half its codes on negative values)."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), conv1d_head(), signal())
    (conv,) = _nodes(program, "cortex_m::quantized_conv2d")
    assert conv.args[10] == conv.args[7]  # activation_min is the output zero point
    assert not _nodes(program, "aten::clamp")
    assert not _nodes(program, "aten::relu")


def test_recurrent_layers_have_no_float_arithmetic() -> None:
    """The decomposed LSTM: one linear over the sequence, one per frame, the
    classifier (1 + 4 + 1); the gates' sigmoid and tanh as tables, the state's
    products and sums as CMSIS-NN kernels; the zero initial state an int8 constant."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), recurrent(nn.LSTM)(), frames())
    assert len(_nodes(program, "cortex_m::quantized_linear")) == 1 + FRAMES + 1
    # Per frame: input, forget and output gates (sigmoid), cell input and the new
    # state (tanh).
    assert len(_nodes(program, "cortex_m::quantized_activation")) == 5 * FRAMES
    float_ops = [
        name
        for name, node in (
            (str(getattr(n.target, "_name", n.target)), n) for n in program.graph.nodes
        )
        if node.op == "call_function"
        and not name.startswith("cortex_m::")
        and isinstance(node.meta.get("val"), torch.Tensor)
        and node.meta["val"].is_floating_point()
    ]
    assert float_ops == []  # dequantize/quantize at the edges are cortex_m kernels


def test_a_transpose_of_five_dimensions_stays_on_the_portable_kernel() -> None:
    """MultiheadAttention's packed projection transposes a 5-D int8 tensor; the
    CMSIS-NN transpose takes ranks 1 to 4 (it failed the run: "expected tensor rank
    in [1, 4], got 5")."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), self_attention(), token_sequence())
    transposes = _nodes(program, "cortex_m::transpose")
    assert transposes
    assert all(t.args[0].meta["val"].dim() <= 4 for t in transposes)
    (permute,) = [p for p in _nodes(program, "aten::permute_copy") if p.meta["val"].dim() == 5]
    assert permute.meta["val"].dtype == torch.int8


def test_a_graph_upstream_lowers_as_it_is_is_not_traced_again() -> None:
    from et_hil.programs.cortex_m_passes import needs_retrace, retrace_for_cmsis_nn

    for model, inputs in ((conv_model(), conv_inputs()), (SharedLinear().eval(), rows())):
        graph_module = export_model(model, inputs).module(check_guards=False)
        assert needs_retrace(graph_module, channels_last=True) == []
        assert retrace_for_cmsis_nn(graph_module, channels_last=True) is graph_module
    graph_module = export_model(conv_model(), conv_inputs(False)).module(check_guards=False)
    assert needs_retrace(graph_module, channels_last=True) == [
        "conv2d: a convolution of an NCHW tensor"
    ]
    # Upstream's explicit-layout pipeline lowers NCHW convolutions itself.
    assert needs_retrace(graph_module, channels_last=False) == []


# ---------------------------------------------------------------- what stays off CMSIS-NN


class Upsampler(nn.Module):
    """Transposed convolutions with output padding, which CMSIS-NN does not take."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.up2(self.up(torch.relu(self.conv(x))))
        return out


class Volumetric(nn.Module):
    """A 3-D convolution, which CMSIS-NN has no kernel for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return out


@pytest.mark.parametrize(
    ("model", "inputs", "expected"),
    [
        (
            Upsampler,
            lambda: (torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(9)),),
            "2 x aten.convolution: a transposed convolution with groups, output padding or "
            "dilation, which CMSIS-NN's transpose convolution does not take (upstream's "
            "CortexMConvTranspose2DCheck). In: up (ConvTranspose2d), up2 (ConvTranspose2d)",
        ),
        (
            Volumetric,
            lambda: (torch.randn(1, 2, 6, 6, 6, generator=torch.Generator().manual_seed(9)),),
            "1 x aten.convolution: a 3-D convolution: CMSIS-NN has no kernel for it. "
            "In: conv (Conv3d)",
        ),
    ],
    ids=["transposed-output-padding", "conv3d"],
)
def test_an_int8_program_with_weights_left_in_float_is_a_build_error(
    builder: Builder,
    model: Callable[[], nn.Module],
    inputs: Callable[[], tuple[torch.Tensor, ...]],
    expected: str,
) -> None:
    """Silently float (4x the weight bytes, the portable kernels) is refused, naming
    each operator with its count, why, where in the model, and what to do."""
    with pytest.raises(BuildError) as caught:
        builder.build(
            model().eval(), inputs(), target="cortex-m55", board="qemu-m55-cmsis",
            quantize="int8",
        )  # fmt: skip
    message = str(caught.value)
    name = model.__name__  # type: ignore[attr-defined]
    assert message.startswith(
        f"model '{name}', board 'qemu-m55-cmsis', target 'cortex-m55', method 'forward': "
        "the int8 program would keep"
    )
    assert "with weights off CMSIS-NN (in float on the portable kernels" in message
    assert expected in message
    assert "What to do: change these layers to what CMSIS-NN takes" in message
    assert "build the model as a float program (quantize=None" in message


@pytest.mark.timeout(180)  # took 46 s
def test_a_cmsis_nn_kernel_given_a_float_operand_is_a_build_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upstream's behaviour with a constant made in forward() (the retrace folding
    it turned off): its quantize is folded away and the LSTM's zero state reaches the
    CMSIS-NN multiply as float, which stops the run; the build names it instead."""
    from et_hil.programs import cortex_m_passes as ours

    monkeypatch.setattr(ours, "_forward_constants", lambda graph_module: {})
    with pytest.raises(BuildError) as caught:
        lowered_dialect(CortexMTarget("cortex-m55"), recurrent(nn.LSTM)(), frames())
    message = str(caught.value)
    assert "model 'Recurrent', target 'cortex-m55', method 'forward'" in message
    assert "x cortex_m.quantized_mul: upstream's lowering gave it a float operand" in message
    assert "In: rnn (LSTM)" in message


def test_each_weight_is_in_the_program_once() -> None:
    """AtenToCortexMPass gives each convolution a weight in CMSIS-NN's layout and left
    the original, unused, in the program: every convolution weight was serialized
    twice (an int8 Wav2Letter: 14.8 MB for 7.5 M weights, 7.4 MB without)."""
    program, _, _ = lowered_dialect(CortexMTarget("cortex-m55"), inverted_residual_stack(), photo())
    unused = [n.name for n in program.graph.nodes if n.op == "placeholder" and not n.users]
    assert unused == []
    weights = [n for n in program.graph.nodes if n.op == "placeholder" and "weight_nhwc" in n.name]
    assert len(weights) == 19  # one per convolution (see the region test above)
