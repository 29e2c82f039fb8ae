"""The harness's additions to upstream's Cortex-M lowering (``CortexMPassManager``).

Upstream's legacy pass list, run on the suites' programs, leaves a few patterns
that the genuine runner rejects or computes wrongly. Each pass here handles one of
them, where it happens; :func:`pass_list` puts them into upstream's own list, so
whatever upstream lowers is lowered as upstream lowers it. "Upstream" is the pinned
``executorch==1.5.1``; each class's docstring says what upstream does there, what
the pass does instead, and the upstream issue or pull request about it, or the
upstream file and function when there is none.

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
from typing import Any, TypeGuard

import torch
from executorch.backends.cortex_m.quantizer.quantizer import CortexMQuantizer
from executorch.backends.transforms.utils import create_constant_placeholder
from executorch.exir.dialects._ops import ops as exir_ops
from executorch.exir.pass_base import ExportPass, PassResult
from executorch.exir.tensor import dim_order_from_stride
from torch.export.graph_signature import InputKind
from torch.fx import GraphModule, Node

from et_hil.errors import BuildError

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
    :class:`RestoreLinearBiases` (see the module's docstring).

    Upstream: after ``FoldAndAnnotateQParamsPass``, every re-trace types a quantized
    ``aten.linear`` (int8 operands, int32 bias) as giving int32, although it gives
    int8 once lowered. A ``bmm`` of its output then fails the next re-trace
    ("expected scalar type torch.int8 but found torch.int32",
    https://github.com/pytorch/executorch/issues/21943; the fix proposed in
    https://github.com/pytorch/executorch/pull/22796 names the same cause), and
    ``QuantizedClampActivationPass`` (``_is_quantized_int8_activation``) leaves a
    relu on such a linear to the portable ``relu``, which clamps raw int8 values at 0
    instead of at the zero point (that kernel's behaviour, as
    https://github.com/pytorch/executorch/pull/18462 describes it for an add).
    Here: the bias is passed through an int8 cast while the graph is re-traced, so
    the linear is typed int8 as it is once lowered.
    """

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
    parameter back, as ``AtenToCortexMPass`` expects.

    Upstream: ``_get_linear_replacement`` in
    ``backends/cortex_m/passes/aten_to_cortex_m_pass.py`` reads the bias as the
    linear's own parameter, so the casts must be gone before it runs (the other half
    of the workaround; same upstream issue).
    """

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
    table lookup (see the module's docstring).

    Upstream: the edge configuration keeps both whole (``_PRESERVE_OPS`` in
    ``backends/cortex_m/edge_compile_config.py``); a hardsigmoid is lowered only
    into the convolution, linear or max pool before it (``ActivationFusionPass``),
    a hardswish only after a convolution or linear with no other user
    (``DecomposeHardswishPass``, ``backends/cortex_m/passes/``). Anywhere else they
    reach the runtime as ``aten.hardswish``/``hardsigmoid`` on int8 values (the pass
    only logs "Cannot fuse activation"). No upstream issue was found for that case.
    Here: upstream's own ``cortex_m::quantized_activation`` with a 256-entry table,
    as upstream lowers sigmoid, tanh and silu
    (https://github.com/pytorch/executorch/pull/19792).
    """

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

    Upstream: the pooling operators are lowered on NCHW tensors too, which the
    kernels refuse at run time ("quantized_avg_pool2d_out: tensors must use
    channels_last dimension order"); dropping that requirement is proposed in
    https://github.com/pytorch/executorch/pull/21796 (open). Here: a
    ``_to_dim_order_copy`` to channels_last before the operator and one back after.

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


# ---------------------------------------------------------------- before annotation

_ATEN = torch.ops.aten
_FORMATS: dict[tuple[int, ...], torch.memory_format] = {
    _NCHW: torch.contiguous_format,
    _NHWC: torch.channels_last,
}


def _convolutions() -> set[Any]:
    """The operators whose 4-D input the retrace puts in channels_last (CMSIS-NN's
    layout; upstream's ``CortexMConv2DCheck``/``CortexMConvTranspose2DCheck``
    quantize them only on channels_last tensors)."""
    return {_ATEN.conv2d.default, _ATEN.conv_transpose2d.input}


def _layout_free_unary() -> set[Any]:
    """Elementwise operators that may take a channels_last value where the model had
    NCHW: same values, same layout out, on CMSIS-NN and on the portable kernels alike
    (the activations a convolution fuses among them)."""
    a = _ATEN
    return {
        a.relu.default, a.relu_.default, a.hardtanh.default, a.hardtanh_.default,
        a.clamp.default, a.clamp_.default, a.hardsigmoid.default, a.hardsigmoid_.default,
        a.hardswish.default, a.hardswish_.default, a.sigmoid.default, a.tanh.default,
    }  # fmt: skip


def _layout_free_binary() -> set[Any]:
    """Elementwise operators that may take channels_last operands when every tensor
    operand has the output's shape (no broadcast: the kernels then walk memory
    linearly, in whatever order all operands share)."""
    a = _ATEN
    return {
        a.add.Tensor, a.add_.Tensor, a.sub.Tensor, a.sub_.Tensor, a.mul.Tensor, a.mul_.Tensor,
    }  # fmt: skip


def _recurrent_layers() -> dict[Any, Callable[..., Any]]:
    """``aten.lstm``/``gru``/``rnn_*`` and PyTorch's own decompositions of them
    (``torch._decomp``: one linear over the sequence, then per step a linear and the
    gates' elementwise operators)."""
    from torch._decomp import decomposition_table

    ops = (_ATEN.lstm.input, _ATEN.gru.input, _ATEN.rnn_tanh.input, _ATEN.rnn_relu.input)
    return {op: decomposition_table[op] for op in ops if op in decomposition_table}


def _in_dim_order(value: Any, order: tuple[int, ...]) -> Any:
    """``value`` in ``order`` (a copy, which the trace records as ``aten.clone``), or
    itself when it is already so or is no 4-D tensor."""
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or dim_order(value) == order:
        return value
    return value.clone(memory_format=_FORMATS[order])


def _traced_value(node: Node) -> Any:
    return node.meta.get("val")


def _align_ranks(graph_module: GraphModule) -> None:
    """Views each operand of an elementwise operator that only lacks leading unit
    dimensions in the output's shape: the same elements, but no broadcast, which
    upstream's add/mul check refuses (``CortexMAddMulCheck``), leaving the operator
    in float. The LSTM/GRU decompositions add ``[1, B, 4H]`` to ``[B, 4H]`` at every
    step.

    Upstream: ``CortexMAddMulCheck`` (``backends/cortex_m/quantizer/pattern_checkers.py``)
    takes equal shapes or a channels_last channel broadcast only, since the CMSIS-NN
    elementwise kernels do not broadcast (upstream removed its broadcasting in
    https://github.com/pytorch/executorch/pull/15100); a rank difference of unit
    dimensions counts as a broadcast. No upstream issue was found for that case.
    """
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _layout_free_binary():
            continue
        traced = _traced_value(node)
        if not isinstance(traced, torch.Tensor):
            continue
        shape = list(traced.shape)
        for operand in node.all_input_nodes:
            value = _traced_value(operand)
            if not isinstance(value, torch.Tensor) or value.dim() >= len(shape):
                continue
            if [1] * (len(shape) - value.dim()) + list(value.shape) != shape:
                continue
            with graph.inserting_before(node):
                view = graph.call_function(_ATEN.view.default, (operand, shape))
            view.meta.update(node.meta)
            view.meta["val"] = value.reshape(shape)
            node.replace_input_with(operand, view)
    graph_module.recompile()


def _forward_constants(graph_module: GraphModule) -> dict[str, torch.Tensor]:
    """The float tensors ``forward()`` makes from nothing (``torch.zeros``, ``full``:
    an LSTM's initial state), computed now.

    Traced as operators, PT2E puts a quantize after them that upstream's
    ``FoldAndAnnotateQParamsPass`` folds into them, but they stay float operators:
    the CMSIS-NN kernel reading one got a float tensor ("input.scalar_type() 6 does
    not match dtype 1" at run time). As constants, their quantize folds into an
    int8 constant, as a weight's does.

    Upstream: ``FoldAndAnnotateQParamsPass``
    (``backends/arm/_passes/fold_qdq_with_annotated_qparams_pass.py``); no upstream
    issue was found for constants made in ``forward()`` in general.
    https://github.com/pytorch/executorch/pull/22796 (open) materializes the quantized
    ``aten.full`` constants that feed a multiply, one case of the same.
    """
    constants = {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.all_input_nodes:
            continue
        traced = _traced_value(node)
        target = node.target
        if not isinstance(traced, torch.Tensor) or not traced.is_floating_point():
            continue
        if not isinstance(target, torch._ops.OpOverload):
            continue
        if torch.Tag.nondeterministic_seeded in target.tags:
            continue  # random: a new value every run
        value = target(*node.args, **node.kwargs)
        if isinstance(value, torch.Tensor):
            constants[node.name] = value
    return constants


class _CmsisLayoutInterpreter(torch.fx.Interpreter):
    """Runs an exported graph (under ``torch.export``, to record it anew) with the
    changes :func:`retrace_for_cmsis_nn` describes: convolution inputs in
    channels_last, kept so through the layout-free operators after them and put
    back in the traced layout before any other operator; recurrent layers as their
    decompositions."""

    def __init__(
        self,
        module: GraphModule,
        channels_last: bool,
        constants: dict[str, torch.Tensor],
        conv1d_weights: dict[str, torch.Tensor],
    ) -> None:
        super().__init__(module)
        self.channels_last = channels_last
        self.recurrent = _recurrent_layers()
        self.constants = constants
        self.conv1d_weights = conv1d_weights
        self.fused: set[str] = set()

    def run_node(self, n: Node) -> Any:
        """A constant the model made in ``forward()`` is the tensor it computed to; a
        1-D convolution with a 4-D copy of its weight is a 2-D one, with the
        activation after it (which then passes its input on)."""
        if n.name in self.constants:
            return self.constants[n.name]
        if n.name in self.conv1d_weights:
            with self._set_current_node(n):
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                args = (args[0], self.conv1d_weights[n.name], *args[2:])
                activation = _fusable_activation(n)
                if activation is not None:
                    self.fused.add(activation.name)
                return _conv1d_as_conv2d(*args, **kwargs, activation=activation)
        if n.name in self.fused:
            (convolution,) = n.all_input_nodes
            return self.env[convolution]  # applied with the convolution
        return super().run_node(n)

    def _changed(self, node: Node, value: Any) -> bool:
        traced = _traced_value(node)
        return (
            isinstance(value, torch.Tensor)
            and isinstance(traced, torch.Tensor)
            and dim_order(value) != dim_order(traced)
        )

    def _as_traced(self, node: Node, value: Any) -> Any:
        """``value`` in the layout ``node`` had when the model was exported."""
        if not self._changed(node, value):
            return value
        traced = dim_order(_traced_value(node))
        if traced not in _FORMATS:  # no layout-free operator makes others (see below)
            raise BuildError(f"cannot put {node.name} back in dim order {traced}")
        return _in_dim_order(value, traced)

    def fetch_args_kwargs_from_env(self, n: Node) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The node's operands, each in the layout the node may take (see the class)."""
        env = self.env
        target = n.target if n.op == "call_function" else None
        if self.channels_last and target in _convolutions():
            args = torch.fx.node.map_arg(n.args, lambda a: self._as_traced(a, env[a]))
            value = env[n.args[0]] if isinstance(n.args[0], Node) else None
            if isinstance(value, torch.Tensor) and value.dim() == 4:
                args = (_in_dim_order(value, _NHWC), *args[1:])
            kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: self._as_traced(a, env[a]))
            return tuple(args), dict(kwargs)
        if self._keeps_layout(n):
            args = torch.fx.node.map_arg(n.args, lambda a: env[a])
            kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: env[a])
            if target in _layout_free_binary():
                args = tuple(_in_dim_order(a, _NHWC) for a in args)
            return tuple(args), dict(kwargs)
        args = torch.fx.node.map_arg(n.args, lambda a: self._as_traced(a, env[a]))
        kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: self._as_traced(a, env[a]))
        return tuple(args), dict(kwargs)

    def _keeps_layout(self, n: Node) -> bool:
        """Whether ``n`` is a layout-free operator reached by a channels_last value it
        can keep (its traced output is NCHW or NHWC, and a binary one broadcasts not)."""
        if n.op != "call_function" or not self.channels_last:
            return False
        unary, binary = n.target in _layout_free_unary(), n.target in _layout_free_binary()
        traced = _traced_value(n)
        if not (unary or binary) or not isinstance(traced, torch.Tensor) or traced.dim() != 4:
            return False
        if dim_order(traced) not in _FORMATS:
            return False
        operands = [a for a in n.all_input_nodes if isinstance(self.env[a], torch.Tensor)]
        if not any(self._changed(a, self.env[a]) for a in operands):
            return False
        return unary or all(self.env[a].shape == traced.shape for a in operands)

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        """The operator, or its decomposition for a recurrent layer."""
        decomposition = self.recurrent.get(target)
        if decomposition is not None:
            return decomposition(*args, **kwargs)
        return super().call_function(target, args, kwargs)


def _fusable_activation(node: Node) -> Node | None:
    """The activation a convolution's output goes to alone, when upstream's patterns
    fuse it into the convolution (``CONV_OP_PATTERNS``) and its bounds are constants."""
    a = _ATEN
    fusable = {
        a.relu.default, a.relu_.default, a.hardtanh.default, a.hardtanh_.default,
        a.clamp.default, a.clamp_.default, a.hardsigmoid.default, a.hardsigmoid_.default,
    }  # fmt: skip
    if len(node.users) != 1:
        return None
    (user,) = node.users
    if user.op != "call_function" or user.target not in fusable or user.args[0] is not node:
        return None
    if user.kwargs or any(isinstance(a, Node) for a in user.args[1:]):
        return None
    return user


def _conv1d_as_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = (1,),
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    groups: int = 1,
    *,
    activation: Node | None = None,
) -> torch.Tensor:
    """``conv1d`` of ``[N, C, L]`` as a ``conv2d`` of ``[N, C, 1, L]`` in channels_last,
    ``weight`` already ``[O, I, 1, K]`` (a constant: upstream's lowering reads
    convolution weights from parameters only), followed by ``activation`` (so that
    upstream fuses it into the convolution, as for a 2-D one).

    Upstream's default quantizer takes 2-D convolutions only (its explicit-layout
    pipeline rewrites 1-D ones the same way: ``ConvertConv1dToConv2dPass``). The 2-D
    output goes back to NCHW before it is squeezed: the portable view kernels
    (``squeeze_copy``, ``view_copy``) take the default dim order only.

    Upstream: ``CONV_OP_PATTERNS`` in ``backends/cortex_m/quantizer/quantizer_support.py``
    names ``conv2d`` only; the explicit-layout lowering that converts 1-D convolutions
    was proposed in https://github.com/pytorch/executorch/pull/21967. No upstream issue
    was found for the default pipeline.
    """
    image = _in_dim_order(x.unsqueeze(2), _NHWC)
    out = torch.ops.aten.conv2d.default(
        image, weight, bias, [1, *stride], [0, *padding], [1, *dilation], groups
    )
    if activation is not None:
        out = activation.target(out, *activation.args[1:])  # type: ignore[operator]
    flat: torch.Tensor = _in_dim_order(out, _NCHW).squeeze(2)
    return flat


def _conv1d_weights(graph_module: GraphModule) -> dict[str, torch.Tensor]:
    """The weight of each batched 1-D convolution, as the ``[O, I, 1, K]`` weight of
    the 2-D one it becomes (by convolution node)."""
    weights: dict[str, torch.Tensor] = {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target != _ATEN.conv1d.default:
            continue
        x, weight = node.args[0], node.args[1]
        value = _traced_value(x) if isinstance(x, Node) else None
        if not isinstance(value, torch.Tensor) or value.dim() != 3:
            continue  # unbatched
        if not isinstance(weight, Node) or weight.op != "get_attr":
            continue  # computed in forward(): stays 1-D (and float)
        tensor = graph_module
        for part in str(weight.target).split("."):  # "conv.weight"
            tensor = getattr(tensor, part)
        assert isinstance(tensor, torch.Tensor)
        weights[node.name] = tensor.detach().unsqueeze(2)
    return weights


class _Retraced(torch.nn.Module):
    """What ``torch.export`` traces: the exported graph, run by the interpreter, with
    the constants ``forward()`` makes as buffers (lifted as constants)."""

    def __init__(self, graph_module: GraphModule, channels_last: bool) -> None:
        super().__init__()
        self.graph_module = graph_module
        self.channels_last = channels_last
        self.constant_nodes = {}
        for index, (name, value) in enumerate(_forward_constants(graph_module).items()):
            self.register_buffer(f"forward_constant_{index}", value)
            self.constant_nodes[name] = f"forward_constant_{index}"
        self.conv1d_nodes = {}
        if channels_last:
            for index, (name, value) in enumerate(_conv1d_weights(graph_module).items()):
                self.register_buffer(f"conv1d_weight_{index}", value)
                self.conv1d_nodes[name] = f"conv1d_weight_{index}"

    def forward(self, *args: Any) -> Any:
        from torch.fx import traceback as fx_traceback

        constants = {node: getattr(self, name) for node, name in self.constant_nodes.items()}
        weights = {node: getattr(self, name) for node, name in self.conv1d_nodes.items()}
        interpreter = _CmsisLayoutInterpreter(
            self.graph_module, self.channels_last, constants, weights
        )
        # Each recorded operator keeps the meta of the node it came from (the module
        # path and source line that build errors name).
        with fx_traceback.preserve_node_meta():
            return interpreter.run(*args)


def needs_retrace(graph_module: GraphModule, *, channels_last: bool) -> list[str]:
    """Why :func:`retrace_for_cmsis_nn` must change ``graph_module`` (empty: it need
    not): its constants made in ``forward()``, its recurrent layers and, when
    ``channels_last``, its 1-D convolutions and its convolutions of NCHW tensors."""
    reasons = [
        f"{name}: a float constant made in forward()" for name in _forward_constants(graph_module)
    ]
    recurrent = _recurrent_layers()
    conv1d = _conv1d_weights(graph_module) if channels_last else {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in recurrent:
            reasons.append(f"{node.name}: a recurrent layer")
        elif channels_last and node.name in conv1d:
            reasons.append(f"{node.name}: a 1-D convolution")
        elif channels_last and node.target in _convolutions():
            value = _traced_value(node.args[0]) if isinstance(node.args[0], Node) else None
            if isinstance(value, torch.Tensor) and value.dim() == 4 and dim_order(value) != _NHWC:
                reasons.append(f"{node.name}: a convolution of an NCHW tensor")
    return reasons


def retrace_for_cmsis_nn(graph_module: GraphModule, *, channels_last: bool) -> GraphModule:
    """The exported model, traced again so that upstream's quantizer takes what it
    would otherwise leave in float; ``graph_module`` itself when nothing needs it.

    * **Convolutions of NCHW tensors** (``channels_last``: upstream's default
      pipeline). ``CortexMQuantizer`` quantizes a convolution only on channels_last
      tensors (``CortexMConv2DCheck``), the layout of CMSIS-NN's kernels, and its
      README asks for channels-last input; upstream's own compiler script
      (``backends/arm/scripts/aot_arm_compiler.py``, ``_to_edge_cortex_m``) makes the
      whole model and its inputs channels_last, which changes the program's inputs.
      Here the program keeps the user's layout at its inputs and outputs: each
      convolution reads a channels_last copy of an NCHW input, its output stays
      channels_last through the elementwise operators after it (fused activations,
      same-shape adds: a MobileNet block or a ResNet stage is one channels_last
      region) and goes back to the layout the model had before any other operator.
      Every other operator sees what it saw at export (reshapes, pooling, concats:
      several portable kernels refuse or misread channels_last tensors). A 1-D
      convolution becomes a 2-D one of height 1 (:func:`_conv1d_as_conv2d`).
      Upstream leaves the layout to the caller: its ``backends/cortex_m/README.md``
      says the backend "is intended for use with channels-last input", and an NCHW
      input aborted its own DS-CNN runner ("input must be channels_last",
      https://github.com/pytorch/executorch/pull/21485, fixed there by making the
      example input channels_last); its opt-in explicit-layout lowering (proposed in
      https://github.com/pytorch/executorch/pull/21967, ``use_explicit_layout`` in
      1.5.1) lowers NCHW convolutions with transposes around them.
    * **Recurrent layers** (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``). ``torch.export``
      keeps ``aten.lstm`` whole, which no quantizer pattern matches; ``to_edge``
      decomposes it later into float linears, which upstream's edge configuration
      keeps whole and no portable kernel runs. They are decomposed here, as
      PyTorch's ``torch._decomp`` does, so the quantizer sees their linears and
      gates (``quantized_linear``, ``quantized_mul``/``add``, table activations).
      Upstream's Arm tests reach the same graph through ``torch.nn.quantizable.LSTM``;
      upstream decomposed ``nn.LSTMCell`` the same way before annotation
      (https://github.com/pytorch/executorch/pull/20049) and proposes a fused CMSIS-NN
      LSTM kernel (https://github.com/pytorch/executorch/pull/21024) for its open
      issue https://github.com/pytorch/executorch/issues/16108.
    * **Constants made in forward()** (``torch.zeros``, ``torch.full``: an LSTM's
      initial state) become constants (:func:`_forward_constants`).

    Raises:
        BuildError: the retrace failed (names the cause, and the manual way).
    """
    if not needs_retrace(graph_module, channels_last=channels_last):
        return graph_module
    examples = []
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            value = _traced_value(node)
            # In the user's layout, which the program's inputs keep.
            examples.append(
                torch.empty_strided(value.shape, value.stride(), dtype=value.dtype).zero_()
            )
    try:
        exported = torch.export.export(
            _Retraced(graph_module, channels_last), tuple(examples), strict=False
        )
        retraced: GraphModule = exported.module(check_guards=False)
        _align_ranks(retraced)
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(
            "running the model's convolutions on channels_last tensors (CMSIS-NN's "
            "layout) and decomposing its recurrent layers failed: "
            f"{type(exc).__name__}: {exc}. Make the model channels_last instead "
            "(model.to(memory_format=torch.channels_last) and channels_last example "
            "inputs)"
        ) from exc
    return retraced


class CmsisNnQuantizer(CortexMQuantizer):  # type: ignore[misc]
    """Upstream's ``CortexMQuantizer``, on the graph :func:`retrace_for_cmsis_nn` makes.

    Upstream's explicit-layout pipeline lowers NCHW convolutions itself (with
    ``cortex_m::transpose`` around them), so there the retrace leaves layouts alone.
    """

    def __init__(self, use_explicit_layout: bool = False) -> None:
        super().__init__(use_explicit_layout=use_explicit_layout)
        self.channels_last = not use_explicit_layout

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        """:func:`retrace_for_cmsis_nn`, then upstream's own transforms."""
        retraced = retrace_for_cmsis_nn(model, channels_last=self.channels_last)
        transformed: GraphModule = super().transform_for_annotation(retraced)
        return transformed


# Rank 1..4: backends/cortex_m/ops/op_transpose.cpp (kMaxSupportedDims), which
# AtenToCortexMPass does not check.
TRANSPOSE_MAX_RANK = 4


class PortableTransposeAboveRank4(ExportPass):  # type: ignore[misc]
    """A ``cortex_m::transpose`` of more than 4 dimensions goes back to the portable
    ``permute_copy`` (which takes int8 of any rank).

    ``AtenToCortexMPass`` turns every int8 ``permute_copy`` into ``cortex_m::transpose``
    (``_get_permute_replacement``), but the kernel takes ranks 1 to 4 and fails the
    run otherwise: "transpose_out: expected tensor rank in [1, 4], got 5".
    ``nn.MultiheadAttention``'s packed input projection makes one
    (``unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2)``), so every
    ``nn.TransformerEncoderLayer`` crashed the runner. Upstream keeps such ranks on
    the portable operator since https://github.com/pytorch/executorch/pull/22571
    (after the pinned 1.5 sources).
    """

    def call(self, graph_module: GraphModule) -> PassResult:
        modified = False
        for node in graph_module.graph.nodes:
            if (
                node.op != "call_function"
                or node.target != exir_ops.edge.cortex_m.transpose.default
            ):
                continue
            value = node.args[0].meta.get("val") if isinstance(node.args[0], Node) else None
            if isinstance(value, torch.Tensor) and value.dim() > TRANSPOSE_MAX_RANK:
                node.target = exir_ops.edge.aten.permute_copy.default
                modified = True
        if modified:
            graph_module.recompile()
        return PassResult(graph_module, modified)


def _layout_copies() -> set[Any]:
    dim_order_ops = exir_ops.edge.dim_order_ops
    return {dim_order_ops._to_dim_order_copy.default, dim_order_ops._clone_dim_order.default}


def _is_layout_copy(node: Any) -> TypeGuard[Node]:
    """A dim-order copy that keeps the dtype (``_clone_dim_order``, or a
    ``_to_dim_order_copy`` without another dtype)."""
    if not isinstance(node, Node) or node.op != "call_function":
        return False
    if node.target not in _layout_copies() or not isinstance(node.args[0], Node):
        return False
    value, source = node.meta.get("val"), node.args[0].meta.get("val")
    return (
        isinstance(value, torch.Tensor)
        and isinstance(source, torch.Tensor)
        and value.dtype == source.dtype
    )


class DropInverseLayoutCopies(ExportPass):  # type: ignore[misc]
    """Removes a layout copy whose only use is a copy back to the layout it came
    from: the retrace puts a convolution's output back in NCHW before a pool, and
    :class:`ChannelsLastCmsisOperands` then copies the pool's input to channels_last
    again.

    Not a workaround of upstream: both copies are the harness's own (upstream's
    legacy pipeline makes neither).
    """

    def call(self, graph_module: GraphModule) -> PassResult:
        graph = graph_module.graph
        modified = False
        for node in list(graph.nodes):
            if not _is_layout_copy(node):
                continue
            first = node.args[0]
            if not _is_layout_copy(first) or len(first.users) != 1:
                continue
            source = first.args[0]  # a Node: _is_layout_copy checked it
            if not isinstance(source, Node):
                continue
            if dim_order(source.meta["val"]) != dim_order(node.meta["val"]):
                continue
            node.replace_all_uses_with(source)
            graph.erase_node(node)
            graph.erase_node(first)
            modified = True
        if modified:
            graph_module.recompile()
        return PassResult(graph_module, modified)


class DropOneChannelLayoutCopies(ExportPass):  # type: ignore[misc]
    """Removes each copy of a one-channel tensor to channels_last: its readers get
    the same bytes without it.

    ``[N, 1, H, W]`` has the same bytes in both layouts, but its channels_last strides
    tie (``(HW, 1, W, 1)``) and ExecuTorch serializes them as dim order
    ``(0, 2, 1, 3)``, which the copy kernel refuses against the ``[0, 2, 3, 1]`` it
    was asked for ("Check failed (out_dim_order[i] == dim_order_ref[i])": a keyword
    spotter's MFCC input). The CMSIS-NN kernels take a one-channel tensor in either
    layout (``is_channels_last_tensor`` in ``backends/cortex_m/ops/cortex_m_ops_common.h``);
    another reader (a tap's program output) gets dim order ``(0, 1, 2, 3)`` instead of
    the ``(0, 2, 1, 3)`` no kernel takes either.
    Upstream: https://github.com/pytorch/executorch/issues/22520 (fix proposed in
    https://github.com/pytorch/executorch/pull/22745).
    """

    def call(self, graph_module: GraphModule) -> PassResult:
        graph = graph_module.graph
        modified = False
        for node in list(graph.nodes):
            # The asked order: the strides' own is the ambiguous one.
            if not _is_layout_copy(node):
                continue
            asked = node.kwargs.get("dim_order")
            if not isinstance(asked, (list, tuple)) or tuple(asked) != _NHWC:
                continue
            value = node.meta["val"]
            source = node.args[0]
            if value.dim() != 4 or value.shape[1] != 1 or not isinstance(source, Node):
                continue
            node.replace_all_uses_with(source)
            graph.erase_node(node)
            modified = True
        if modified:
            graph_module.recompile()
        return PassResult(graph_module, modified)


def _decomposed_ops() -> set[Any]:
    aten = exir_ops.edge.aten
    return {aten.hardswish.default, aten.hardsigmoid.default, aten.silu.default}


class DecomposeFloatActivations(ExportPass):  # type: ignore[misc]
    """A float ``hardswish``/``hardsigmoid``/``silu`` (no portable kernel) becomes the
    elementwise operators ``torch._refs`` defines it with.

    Upstream: ``_PRESERVE_OPS`` in ``backends/cortex_m/edge_compile_config.py`` keeps
    the three whole in every program, quantized or not (silu was added "globally
    because no per-test opt-out exists today",
    https://github.com/pytorch/executorch/pull/19792), so one the quantizer left in
    float reaches a runner that has no kernel for it. No upstream issue was found
    for the float case. Here: the decomposition ``to_edge`` applies by default.
    """

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
                f"{anchor.__name__} (expected one): et_hil/programs/cortex_m_passes.py "
                "places its passes around it and needs updating for this ExecuTorch"
            )
    passes.insert(passes.index(FoldAndAnnotateQParamsPass) + 1, TraceQuantizedLinearsAsInt8)
    lowering = passes.index(AtenToCortexMPass)
    # The table pass re-traces, so it runs while the biases are still cast.
    passes[lowering:lowering] = [LutForUnfusedActivations, RestoreLinearBiases]
    passes += [
        PortableTransposeAboveRank4,
        ChannelsLastCmsisOperands,
        DropInverseLayoutCopies,
        DropOneChannelLayoutCopies,
        DecomposeFloatActivations,
    ]
    return passes


def unlowered_preserved_ops(program: Any) -> list[str]:
    """The operators upstream's edge configuration keeps whole (``linear``, the
    activations) still in ``program``, each with the node using it: no portable
    kernel implements them, so a runner could not load the program.

    Upstream: ``cortex_m_edge_compile_config`` (``backends/cortex_m/edge_compile_config.py``)
    turns the edge verifier off (``_check_ir_validity=False``), so ``to_edge`` does
    not refuse such a program; the runner would, at load time. Checked here at
    build time instead; no upstream issue was found.
    """
    from executorch.backends.cortex_m.edge_compile_config import cortex_m_edge_compile_config

    preserved = {op.name() for op in cortex_m_edge_compile_config().preserve_ops}
    left = []
    for node in program.graph.nodes:
        op = getattr(node.target, "_op", None)  # an edge operator's ATen overload
        if node.op == "call_function" and op is not None and op.name() in preserved:
            left.append(f"{op.name()} ({node.name})")
    return left


# ---------------------------------------------------------------- after lowering

# How many module paths a build error names per group of operators.
NAMED_PER_GROUP = 6


def module_path(node: Node) -> str:
    """Where ``node`` comes from in the model: the innermost module of its
    ``nn_module_stack`` (``blocks.1.conv (Conv2d)``), else its graph name."""
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    if stack:
        path, kind = stack[-1]
        kind = str(kind).rsplit(".", 1)[-1]
        if path:
            return f"{path} ({kind})"
    return node.name


def _weight_names(program: Any) -> set[str]:
    signature = program.graph_signature
    return {
        *signature.inputs_to_parameters,
        *signature.inputs_to_buffers,
        *signature.inputs_to_lifted_tensor_constants,
    }


def _reads_weight(node: Node, weights: set[str]) -> bool:
    """Whether an operand of ``node`` is a parameter or constant (through views)."""
    for operand in node.all_input_nodes:
        while operand.op == "call_function" and len(operand.all_input_nodes) == 1:
            operand = operand.all_input_nodes[0]  # permute_copy/t_copy/view_copy of it
        if operand.op == "placeholder" and operand.name in weights:
            return True
    return False


def _convolution_reason(node: Node) -> str:
    """Why upstream left this ``aten.convolution`` off CMSIS-NN."""
    value = node.args[0].meta.get("val") if isinstance(node.args[0], Node) else None
    out = node.meta.get("val")
    if isinstance(out, torch.Tensor) and not out.is_floating_point():
        return (
            "quantized, but upstream's lowering (AtenToCortexMPass) did not replace it: "
            "the portable kernel would compute it on raw int8 values"
        )
    rank = value.dim() if isinstance(value, torch.Tensor) else 4
    transposed = bool(node.args[6]) if len(node.args) > 6 else False
    if rank == 3:
        return (
            "a 1-D convolution: upstream's default Cortex-M quantizer takes 2-D ones only "
            "(CONV_OP_PATTERNS in backends/cortex_m/quantizer/quantizer_support.py)"
        )
    if rank != 4:
        return f"a {rank - 2}-D convolution: CMSIS-NN has no kernel for it"
    if transposed:
        dilation, output_padding, groups = node.args[5], node.args[7], node.args[8]
        if any(d != 1 for d in dilation) or any(p != 0 for p in output_padding) or groups != 1:  # type: ignore[union-attr]
            return (
                "a transposed convolution with groups, output padding or dilation, which "
                "CMSIS-NN's transpose convolution does not take (upstream's "
                "CortexMConvTranspose2DCheck)"
            )
    if isinstance(value, torch.Tensor) and not cmsis_accepts(value):
        return "its input is not channels_last, the only layout CMSIS-NN's kernels take"
    return (
        "upstream's quantizer did not annotate it (backends/cortex_m/quantizer/pattern_checkers.py)"
    )


def _weighted_reason(node: Node) -> str:
    out = node.meta.get("val")
    if isinstance(out, torch.Tensor) and not out.is_floating_point():
        return (
            "quantized, but upstream's lowering (AtenToCortexMPass) did not replace it: "
            "no portable kernel computes it on int8 values with their zero points"
        )
    return (
        "upstream's quantizer did not annotate it (backends/cortex_m/quantizer/pattern_checkers.py)"
    )


def _weighted_ops() -> set[Any]:
    """Operators with weights that CMSIS-NN has kernels for when quantized (a
    weight-reading ``mm``/``bmm``/``addmm`` is a linear in another form). Operators
    with weights CMSIS-NN has no kernel for (``layer_norm``, ``embedding``,
    ``group_norm``) are the portable kernels' in every program."""
    aten = exir_ops.edge.aten
    return {aten.linear.default, aten.addmm.default, aten.mm.default, aten.bmm.default}


def off_cmsis_nn(program: Any) -> list[tuple[str, str, str]]:
    """The operators of a quantized program that CMSIS-NN should run and does not:
    each convolution or operator with weights left to the portable kernels, and each
    ``cortex_m`` kernel given a float operand. As ``(operator, why, where)``."""
    weights = _weight_names(program)
    weighted = _weighted_ops()
    found = []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(getattr(node.target, "_name", node.target)).replace("::", ".")
        if node.target == exir_ops.edge.aten.convolution.default:
            found.append((name, _convolution_reason(node), module_path(node)))
        elif node.target in weighted and (
            node.target == exir_ops.edge.aten.linear.default or _reads_weight(node, weights)
        ):
            found.append((name, _weighted_reason(node), module_path(node)))
        elif name.startswith("cortex_m.quantized_"):
            floats = [
                a.name
                for a in node.all_input_nodes
                if isinstance(a.meta.get("val"), torch.Tensor) and a.meta["val"].is_floating_point()
            ]
            if floats:
                found.append((
                    name,
                    f"upstream's lowering gave it a float operand ({', '.join(floats)}); the "
                    "kernel would stop the run (input.scalar_type() 6 does not match dtype 1)",
                    module_path(node),
                ))  # fmt: skip
    return found


def off_cmsis_nn_message(found: Sequence[tuple[str, str, str]], *, where: str) -> str:
    """A build error naming every operator :func:`off_cmsis_nn` found, grouped by
    operator and reason with counts, and what to do."""
    groups: dict[tuple[str, str], list[str]] = {}
    for op, why, place in found:
        groups.setdefault((op, why), []).append(place)
    lines = [
        f"{where}: the int8 program would keep {len(found)} operator"
        f"{'s' if len(found) != 1 else ''} with weights off CMSIS-NN (in float on the "
        "portable kernels: float weights are 4x the bytes, and the portable kernels "
        "several times slower than CMSIS-NN's):"
    ]
    for (op, why), places in groups.items():
        named = ", ".join(places[:NAMED_PER_GROUP])
        more = f" and {len(places) - NAMED_PER_GROUP} more" if len(places) > NAMED_PER_GROUP else ""
        lines.append(f"  {len(places)} x {op}: {why}. In: {named}{more}")
    lines.append(
        "What to do: change these layers to what CMSIS-NN takes (see each reason), or "
        "build the model as a float program (quantize=None: every operator on the "
        "portable kernels, compared with eager float)"
    )
    return "\n".join(lines)


def model_class(program: Any) -> str | None:
    """The class name of the model ``program`` was exported from (the root entry of
    its operators' ``nn_module_stack``), when it is known."""
    for node in program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            kind = str(kind)
            if path == "" and not kind.startswith("torch."):
                return kind.rsplit(".", 1)[-1]
    return None


def drop_unused_constants(program: Any) -> Any:
    """``program`` without the weights and constants nothing reads any more, from its
    graph, signature, state dict and constants (in place; returned for chaining).

    ``AtenToCortexMPass`` gives each convolution a new weight in CMSIS-NN's layout
    (``<conv>_weight_nhwc``) and leaves the original, now unused, in the program:
    ``to_edge`` removes unused parameters (``remove_unused_parameters_pass``) before
    the Cortex-M passes run, not after, so every int8 convolution weight was
    serialized twice (Wav2Letter: 14.8 MB for 7.5 M weights).
    """
    signature = program.graph_signature
    mutated = set(signature.buffers_to_mutate.values())
    kinds = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    unused = [
        spec
        for spec in signature.input_specs
        if spec.kind in kinds
        and spec.target not in mutated
        and spec.arg.name in placeholders
        and not placeholders[spec.arg.name].users
    ]
    if not unused:
        return program
    for spec in unused:
        signature.input_specs.remove(spec)
        program.graph.erase_node(placeholders[spec.arg.name])
        program.state_dict.pop(spec.target, None)
        program.constants.pop(spec.target, None)
    program.graph_module.recompile()
    return program
