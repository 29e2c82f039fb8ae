"""Deliberate faults in one layer of a program, for testing the verdict and the debugger.

A fault changes the exported (quantized) program before it is lowered, so every
backend (CPU kernels, TOSA, Vela, CMSIS-NN) computes that layer wrongly and each
later layer inherits the error, while the references (eager float, fake-quant)
stay right: what a firmware or compiler bug in one layer would do. The three
kinds are the mutation operators of ``benchmarks/mutation.py``:

* ``weights``: the layer computes with weights ``factor`` times too large (the
  weight's dequantization scale is scaled; for quantizers that keep weights in
  float until lowering, as the Cortex-M one does, the float weight is).
* ``sign``: one output channel's weights have the wrong sign.
* ``requantize``: the layer's output is requantized one step off: its quantize
  node's zero point is moved by ``steps`` while the layers reading it keep the
  right one, so every value of that tensor is ``steps`` LSB too large (a wrong
  output offset in a kernel's requantization).

A fault names a tap point (:mod:`et_hil.programs.taps`): a ``quantize_per_tensor``
node of the program, the output of the layer to break.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

KINDS = ("weights", "sign", "requantize")
# Ops whose second argument is a weight with output channels first.
_WEIGHTED = ("aten.conv1d", "aten.conv2d", "aten.convolution", "aten.linear")


@dataclasses.dataclass(frozen=True)
class Fault:
    """A deliberate error in one layer of the program (not of its references).

    Attributes:
        node: the tap point (a quantize node) whose layer is broken.
        factor: ``weights``: how much too large the weights are.
        kind: ``weights``, ``sign`` or ``requantize`` (see the module doc).
        channel: ``sign``: the output channel whose weights are negated.
        steps: ``requantize``: how many LSB the output is off.
    """

    node: str
    factor: float = 1.5
    kind: str = "weights"
    channel: int = 0
    steps: int = 1

    def describe(self) -> str:
        """A short phrase for tables: ``weights x1.25 at quantize_per_tensor_7``."""
        what = {
            "weights": f"weights x{self.factor:g}",
            "sign": f"channel {self.channel} sign flipped",
            "requantize": f"requantized {self.steps:+d} step(s)",
        }.get(self.kind, self.kind)
        return f"{what} at {self.node}"


def _target_name(node: Any) -> str:
    target = node.target
    name = getattr(target, "_name", None) or getattr(target, "__name__", None) or str(target)
    return str(name).replace("::", ".")


def _is_quantize(node: Any) -> bool:
    return node.op == "call_function" and _target_name(node).startswith(
        "quantized_decomposed.quantize_per_tensor"
    )


def weighted_op(point: Any) -> Any:
    """The weighted op (conv, linear) whose output tap point ``point`` carries,
    looking back through activations and views, or ``None``."""
    seen = point.args[0] if _is_quantize(point) else point
    for _ in range(8):  # conv -> relu -> quantize: a short way back at most
        if getattr(seen, "op", None) != "call_function" or "quantize" in _target_name(seen):
            return None  # another layer's output: not this layer's weights
        if _target_name(seen).startswith(_WEIGHTED):
            return seen
        seen = seen.args[0] if seen.args else None
    return None


def weighted_points(graph_module: Any) -> list[str]:
    """Tap points (quantize nodes) computed by a weighted layer, in execution order:
    where ``weights`` and ``sign`` faults can be put."""
    return [
        n.name for n in graph_module.graph.nodes if _is_quantize(n) and weighted_op(n) is not None
    ]


def _constant(program: Any, node: Any) -> tuple[dict[str, Any], str] | None:
    """The table (state dict or constants) and name holding placeholder ``node``'s value."""
    signature = program.graph_signature
    name = (
        signature.inputs_to_buffers.get(node.name)
        or signature.inputs_to_lifted_tensor_constants.get(node.name)
        or signature.inputs_to_parameters.get(node.name)
    )
    for table in (program.state_dict, program.constants):
        if name in table:
            return table, name
    return None


def _weight(program: Any, op: Any) -> tuple[str, Any]:
    """``("dequantize", dq_node)`` for a quantized weight, ``("float", placeholder)``
    for a float one (quantized at lowering)."""
    weight = op.args[1]
    if getattr(weight, "op", None) == "call_function" and "dequantize" in _target_name(weight):
        return "dequantize", weight
    if getattr(weight, "op", None) in ("placeholder", "get_attr"):
        return "float", weight
    raise ValueError(f"the weight of {op.name} is neither a constant nor its dequantize")


def _scale_tensor(program: Any, node: Any, change: Any) -> None:
    """Apply ``change`` to the constant tensor behind placeholder ``node``."""
    found = _constant(program, node)
    if found is None:
        raise ValueError(f"fault: the constant {node.name} is not among the program's constants")
    table, name = found
    table[name] = change(table[name]).to(table[name].dtype)


def inject(exported: Any, fault: Fault) -> Any:
    """A copy of ``exported`` in which the layer at tap point ``fault.node`` is broken
    as ``fault`` says (see the module doc).

    Raises:
        ValueError: no such tap point, an unknown kind, or (``weights``, ``sign``) no
            weighted layer computes it.
    """
    if fault.kind not in KINDS:
        raise ValueError(f"fault: unknown kind {fault.kind!r} (known: {', '.join(KINDS)})")
    faulty = copy.deepcopy(exported)
    graph_module = faulty.graph_module
    point = next((n for n in graph_module.graph.nodes if n.name == fault.node), None)
    if point is None or not _is_quantize(point):
        raise ValueError(f"fault: no tap point (quantize node) named {fault.node!r}")
    if fault.kind == "requantize":
        args = list(point.args)
        qmin, qmax = int(args[3]), int(args[4])
        # The layer's output values move by `steps`, its readers still use the old
        # zero point; within range, so the tensor keeps its dtype's limits.
        args[2] = max(qmin, min(qmax, int(args[2]) + fault.steps))
        point.args = tuple(args)
        graph_module.recompile()
        return faulty
    op = weighted_op(point)
    if op is None:
        raise ValueError(
            f"fault: tap point {fault.node!r} is not computed by a weighted layer "
            "(conv, linear); choose one that is"
        )
    how, weight = _weight(faulty, op)
    if fault.kind == "weights":
        if how == "float":
            _scale_tensor(faulty, weight, lambda t: t * fault.factor)
        else:
            scale = weight.args[1]
            if isinstance(scale, float | int):
                args = list(weight.args)
                args[1] = float(scale) * fault.factor
                weight.args = tuple(args)
            else:
                _scale_tensor(faulty, scale, lambda t: t * fault.factor)
        graph_module.recompile()
        return faulty

    def negate_channel(tensor: Any) -> Any:
        if not 0 <= fault.channel < tensor.shape[0]:
            raise ValueError(
                f"fault: channel {fault.channel} of {op.name}: it has {tensor.shape[0]} channels"
            )
        changed = tensor.clone()
        # int8 weights are symmetric (-127..127), so a negated weight stays in range
        changed[fault.channel] = -changed[fault.channel]
        return changed

    _scale_tensor(faulty, weight if how == "float" else weight.args[0], negate_channel)
    graph_module.recompile()
    return faulty
