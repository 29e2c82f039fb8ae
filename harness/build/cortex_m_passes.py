"""The harness's additions to upstream's Cortex-M lowering (``CortexMPassManager``).

Upstream's legacy pass list, run on the suites' programs, leaves a few patterns
that the genuine runner rejects or computes wrongly. Each pass here handles one of
them, where it happens; :func:`pass_list` puts them into upstream's own list, so
whatever upstream lowers is lowered as upstream lowers it.

* :class:`TraceQuantizedLinearsAsInt8` (after ``FoldAndAnnotateQParamsPass``) and
  :class:`RestoreLinearBiases` (just before ``AtenToCortexMPass``). Once the Q/DQ nodes
  are folded, a quantized ``aten.linear`` takes int8 operands and its int32 bias,
  so every re-trace until it is lowered types its output int32 (PyTorch's type
  promotion), although ``cortex_m::quantized_linear`` gives int8. Two upstream
  passes then go wrong: the re-trace fails on a ``bmm`` of such an output and
  another int8 tensor (attention: linear -> chunk -> matmul), and
  ``QuantizedClampActivationPass``, which rewrites a relu/clamp into a clamp at
  quantized bounds only when its input is typed int8, leaves a relu on a linear
  with several users running on the raw int8 values: clamping at 0 instead of at
  the zero point (a wrong output, up to the zero point in LSBs). In between, the
  bias is passed through an int8 cast, so the linear is typed int8 as it is once
  lowered; the cast is removed before ``AtenToCortexMPass`` reads the bias.
* :class:`LutForUnfusedActivations` (before ``AtenToCortexMPass``). Upstream
  lowers a quantized ``hardswish`` (``hardsigmoid``) only when it follows a
  convolution or linear it can be fused into; elsewhere it stays ``aten.hardswish``
  on int8 values, which is wrong math and has no portable kernel either. It
  becomes ``cortex_m::quantized_activation`` with a 256-entry table computed from
  its quantization parameters (dequantize, the activation, quantize: the
  fake-quant reference's own steps, so the table matches it exactly).
* :class:`ChannelsLastCmsisOperands` (after ``AtenToCortexMPass``). The CMSIS-NN
  pooling and convolution kernels require channels_last tensors; upstream's
  quantizer checks the layout for convolutions but not for pooling (nor for the
  average pool its mean and adaptive-pool rewrites make), which it lowers on NCHW
  tensors that the kernel then refuses at run time. Such an operator gets its
  input converted to channels_last (``dim_order_ops::_to_dim_order_copy``, a
  portable kernel) and its output back to the layout the rest of the graph was
  traced with.
* :class:`DecomposeFloatActivations` (last). ``hardswish``, ``hardsigmoid`` and
  ``silu`` are kept whole for the passes to match; one the quantizer left in float
  has no portable kernel. It is decomposed into the portable kernels' elementwise
  operators, as ``to_edge`` decomposes it by default.

:func:`unlowered_preserved_ops` then names any operator upstream's edge
configuration keeps whole that is still in the program: none of them is core ATen,
so the portable kernels do not implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from executorch.backends.transforms.utils import create_constant_placeholder
from executorch.exir.dialects._ops import ops as exir_ops
from executorch.exir.pass_base import ExportPass, PassResult
from executorch.exir.tensor import dim_order_from_stride
from torch.export.graph_signature import InputKind
from torch.fx import GraphModule, Node

from harness.errors import BuildError

# Marks the int8 casts TraceQuantizedLinearsAsInt8 inserts (node meta survives re-traces).
_BIAS_CAST = "et_hil_int8_bias_cast"

_NCHW = (0, 1, 2, 3)
_NHWC = (0, 2, 3, 1)


def _folded_int8_qparams(node: Node, key: str) -> Any:
    """The per-tensor int8 ``input_qparams``/``output_qparams`` (upstream's
    ``QuantArgs``, which ``FoldAndAnnotateQParamsPass`` sets) of operand/output 0."""
    qparams = (node.meta.get(key) or {}).get(0)
    if qparams is None or getattr(qparams, "per_channel", False):
        return None
    return qparams if qparams.dtype == torch.int8 else None


class TraceQuantizedLinearsAsInt8(ExportPass):  # type: ignore[misc]
    """Casts each quantized linear's int32 bias to int8 for the re-traces until
    :class:`RestoreLinearBiases` (see the module's docstring)."""

    def call(self, graph_module: GraphModule) -> PassResult:
        graph = graph_module.graph
        modified = False
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target != exir_ops.edge.aten.linear.default:
                continue
            output = (node.meta.get("output_qparams") or {}).get(0)
            if output is None or len(node.args) < 3 or not isinstance(node.args[2], Node):
                continue
            bias = node.args[2]
            value = bias.meta.get("val")
            if value is None or value.dtype == output.dtype:
                continue
            with graph.inserting_before(node):
                cast = graph.create_node(
                    "call_function",
                    exir_ops.edge.dim_order_ops._to_dim_order_copy.default,
                    (bias,),
                    {"dtype": output.dtype},
                )
            cast.meta[_BIAS_CAST] = True
            node.update_arg(2, cast)
            modified = True
        if not modified:
            return PassResult(graph_module, False)
        graph_module.recompile()
        return PassResult(super().call(graph_module).graph_module, True)


class RestoreLinearBiases(ExportPass):  # type: ignore[misc]
    """Removes :class:`TraceQuantizedLinearsAsInt8`'s casts: each linear gets its bias
    parameter back, as ``AtenToCortexMPass`` expects."""

    def call(self, graph_module: GraphModule) -> PassResult:
        casts = [n for n in graph_module.graph.nodes if n.meta.get(_BIAS_CAST)]
        for cast in casts:
            cast.replace_all_uses_with(cast.args[0])
            graph_module.graph.erase_node(cast)
        if casts:
            graph_module.recompile()
        # No re-trace: AtenToCortexMPass lowers the linears next and re-traces then.
        return PassResult(graph_module, bool(casts))


def _lut_functions() -> dict[Any, Callable[[torch.Tensor], torch.Tensor]]:
    return {
        exir_ops.edge.aten.hardswish.default: torch.nn.functional.hardswish,
        exir_ops.edge.aten.hardsigmoid.default: torch.nn.functional.hardsigmoid,
    }


def activation_table(
    function: Callable[[torch.Tensor], torch.Tensor], input_qparams: Any, output_qparams: Any
) -> torch.Tensor:
    """``cortex_m::quantized_activation``'s table: entry ``q + 128`` is the output for
    the int8 input ``q``, computed as the fake-quant reference computes it."""
    ops = torch.ops.quantized_decomposed
    q = torch.arange(-128, 128, dtype=torch.int8)
    i, o = input_qparams, output_qparams
    x = ops.dequantize_per_tensor.default(q, i.scale, i.zp, i.qmin, i.qmax, i.dtype)
    y = function(x)
    table: torch.Tensor = ops.quantize_per_tensor.default(y, o.scale, o.zp, o.qmin, o.qmax, o.dtype)
    return table.contiguous()


class LutForUnfusedActivations(ExportPass):  # type: ignore[misc]
    """A quantized ``hardswish``/``hardsigmoid`` upstream did not fuse becomes a
    table lookup (see the module's docstring)."""

    def __init__(self, exported_program: Any) -> None:
        super().__init__()
        self.exported_program = exported_program

    def call(self, graph_module: GraphModule) -> PassResult:
        graph = graph_module.graph
        functions = _lut_functions()
        modified = False
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target not in functions:
                continue
            input_qparams = _folded_int8_qparams(node, "input_qparams")
            output_qparams = _folded_int8_qparams(node, "output_qparams")
            if input_qparams is None or output_qparams is None:
                continue  # float: DecomposeFloatActivations
            if (input_qparams.qmin, input_qparams.qmax) != (-128, 127):
                continue  # the table has an entry for every int8 value
            table = activation_table(functions[node.target], input_qparams, output_qparams)
            # Constant placeholders go before the user inputs.
            first = next(n for n in graph.nodes if n.op == "placeholder")
            with graph.inserting_before(first):
                lut = create_constant_placeholder(
                    self.exported_program, graph, f"{node.name}_lut", InputKind.PARAMETER, table
                )
            node.target = exir_ops.edge.cortex_m.quantized_activation.default
            node.args = (node.args[0], lut)
            node.kwargs = {}
            modified = True
        if not modified:
            return PassResult(graph_module, False)
        graph_module.recompile()
        return PassResult(super().call(graph_module).graph_module, True)


def dim_order(value: torch.Tensor) -> tuple[int, ...]:
    """The dim order ExecuTorch serializes for a tensor with ``value``'s strides."""
    return tuple(int(d) for d in dim_order_from_stride(value.stride()))


def cmsis_accepts(value: torch.Tensor) -> bool:
    """Whether the CMSIS-NN kernels take ``value`` as channels_last (as the runtime's
    ``is_channels_last_tensor`` decides: the layout of a 4-D tensor with one channel,
    or a 1x1 plane, is ambiguous and accepted)."""
    if value.dim() != 4:
        return True  # the kernels refuse it for its rank, not its layout
    _, channels, height, width = value.shape
    if channels == 1 or (height == 1 and width == 1):
        return True
    return dim_order(value) == _NHWC


def _nhwc_only_ops() -> set[Any]:
    cortex_m = exir_ops.edge.cortex_m
    return {
        cortex_m.quantized_avg_pool2d.default,
        cortex_m.quantized_max_pool2d.default,
        cortex_m.quantized_conv2d.default,
        cortex_m.quantized_depthwise_conv2d.default,
        cortex_m.quantized_transpose_conv2d.default,
    }


def _to_dim_order(graph: Any, value: Node, order: Sequence[int]) -> Node:
    node: Node = graph.create_node(
        "call_function",
        exir_ops.edge.dim_order_ops._to_dim_order_copy.default,
        (value,),
        {"dim_order": list(order)},
    )
    return node


class ChannelsLastCmsisOperands(ExportPass):  # type: ignore[misc]
    """Converts the NCHW operand of a channels_last-only CMSIS-NN operator to
    channels_last, and its output back (see the module's docstring).

    One operator at a time, re-tracing in between: the layouts after a converted
    operator change with it (upstream's re-trace had given everything downstream of
    a pool the pool's channels_last output)."""

    def call(self, graph_module: GraphModule) -> PassResult:
        modified = False
        while self._convert_first(graph_module):
            graph_module.recompile()
            graph_module = super().call(graph_module).graph_module
            modified = True
        return PassResult(graph_module, modified)

    @staticmethod
    def _convert_first(graph_module: GraphModule) -> bool:
        """Converts the first operator that needs it; False when none does."""
        graph = graph_module.graph
        nhwc_only = _nhwc_only_ops()
        for node in graph.nodes:
            if node.op != "call_function" or node.target not in nhwc_only:
                continue
            source = node.args[0]
            # An average pool counting its padding reads a cortex_m::pad of its input,
            # whose padding is given in the input's memory order.
            pad = None
            if (
                isinstance(source, Node)
                and source.target == exir_ops.edge.cortex_m.pad.default
                and len(source.users) == 1
            ):
                pad, source = source, source.args[0]
            value = source.meta.get("val") if isinstance(source, Node) else None
            if not isinstance(value, torch.Tensor) or cmsis_accepts(value):
                continue
            if dim_order(value) != _NCHW:
                continue  # no other layout reaches these operators
            consumer = pad if pad is not None else node
            with graph.inserting_before(consumer):
                converted = _to_dim_order(graph, source, _NHWC)
            consumer.replace_input_with(source, converted)
            if pad is not None:
                # The padding was given for NCHW memory (the logical order).
                for index in (1, 2):
                    padding: list[int] = list(pad.args[index])  # type: ignore[arg-type]
                    pad.update_arg(index, [padding[d] for d in _NHWC])
            with graph.inserting_after(node):
                back = _to_dim_order(graph, node, _NCHW)
            node.replace_all_uses_with(back, delete_user_cb=lambda user, b=back: user is not b)
            return True
        return False


def _decomposed_ops() -> set[Any]:
    aten = exir_ops.edge.aten
    return {aten.hardswish.default, aten.hardsigmoid.default, aten.silu.default}


class DecomposeFloatActivations(ExportPass):  # type: ignore[misc]
    """A float ``hardswish``/``hardsigmoid``/``silu`` (no portable kernel) becomes the
    elementwise operators ``torch._refs`` defines it with."""

    def call(self, graph_module: GraphModule) -> PassResult:
        targets = _decomposed_ops()
        if not any(
            n.op == "call_function" and n.target in targets and _is_float(n)
            for n in graph_module.graph.nodes
        ):
            return PassResult(graph_module, False)
        return PassResult(super().call(graph_module).graph_module, True)

    def call_operator(self, op: Any, args: Any, kwargs: Any, meta: Any) -> Any:
        if op not in _decomposed_ops() or not args[0].to_tensor().is_floating_point():
            return super().call_operator(op, args, kwargs, meta)
        aten = exir_ops.edge.aten
        x = args[0]

        def call(target: Any, *operands: Any) -> Any:
            return super(DecomposeFloatActivations, self).call_operator(target, operands, {}, meta)

        if op == aten.silu.default:  # x * sigmoid(x)
            return call(aten.mul.Tensor, x, call(aten.sigmoid.default, x))
        # relu6(x + 3): hardsigmoid divides it by 6, hardswish multiplies by x first.
        relu6 = call(aten.clamp.default, call(aten.add.Scalar, x, 3.0), 0.0, 6.0)
        if op == aten.hardsigmoid.default:
            return call(aten.div.Scalar, relu6, 6.0)
        return call(aten.div.Scalar, call(aten.mul.Tensor, x, relu6), 6.0)


def _is_float(node: Node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def pass_list(explicit_layout: bool) -> list[type]:
    """Upstream's pass list (legacy or explicit-layout) with the harness's passes in.

    Raises:
        BuildError: upstream's list no longer has the passes these go next to.
    """
    from executorch.backends.arm._passes import FoldAndAnnotateQParamsPass
    from executorch.backends.cortex_m.passes.aten_to_cortex_m_pass import AtenToCortexMPass
    from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager

    upstream = (
        CortexMPassManager.explicit_layout_pass_list
        if explicit_layout
        else CortexMPassManager.legacy_pass_list
    )
    passes: list[type] = list(upstream)
    for anchor in (FoldAndAnnotateQParamsPass, AtenToCortexMPass):
        if passes.count(anchor) != 1:
            raise BuildError(
                f"upstream's Cortex-M pass list has {passes.count(anchor)} "
                f"{anchor.__name__} (expected one): harness/build/cortex_m_passes.py "
                "places its passes around it and needs updating for this ExecuTorch"
            )
    passes.insert(passes.index(FoldAndAnnotateQParamsPass) + 1, TraceQuantizedLinearsAsInt8)
    lowering = passes.index(AtenToCortexMPass)
    # The table pass re-traces, so it runs while the biases are still cast.
    passes[lowering:lowering] = [LutForUnfusedActivations, RestoreLinearBiases]
    passes += [ChannelsLastCmsisOperands, DecomposeFloatActivations]
    return passes


def unlowered_preserved_ops(program: Any) -> list[str]:
    """The operators upstream's edge configuration keeps whole (``linear``, the
    activations) still in ``program``, each with the node using it: no portable
    kernel implements them, so a runner could not load the program."""
    from executorch.backends.cortex_m.edge_compile_config import cortex_m_edge_compile_config

    preserved = {op.name() for op in cortex_m_edge_compile_config().preserve_ops}
    left = []
    for node in program.graph.nodes:
        op = getattr(node.target, "_op", None)  # an edge operator's ATen overload
        if node.op == "call_function" and op is not None and op.name() in preserved:
            left.append(f"{op.name()} ({node.name})")
    return left
