"""Tap points: intermediate tensors surfaced as extra program outputs.

ExecuTorch's ``intermediate_output_tap`` wraps a chosen node's output in a
``tap.Tensor`` placeholder that no partitioner takes, appends it to the program
outputs, and (after lowering) replaces it with its reducer. A tapped value
therefore leaves whatever computes it, NPU/TOSA partition or CPU kernel, as an
output the board returns like any other.

Where the harness taps:

* **quantized programs**: the output of each ``quantize_per_tensor`` node, the
  int8/int16 tensor a layer hands the next one. A partition can output such a
  tensor without splitting its quantized chain (tapping the float value before
  the quantize node would force it out of the integer domain), and the value is
  exact: board and fake-quant reference compare integer to integer.
* **float programs**: the output of each compute node (no views, no getitem).

A layer is named by the node that computes the tapped value: its module path
(``nn_module_stack``, e.g. ``body.3.conv``) and its aten op.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import re
from collections.abc import Sequence
from typing import Any

from et_hil.programs.faults import Fault

__all__ = [
    "Fault",
    "TapPlan",
    "apply",
    "candidates",
    "describe",
    "layer_inputs",
    "locate",
]

QUANTIZE = "quantized_decomposed.quantize_per_tensor"
# Nodes that only rename or reshape memory: nothing to learn from their values.
_PASS_THROUGH = ("getitem", "view", "alias", "_assert", "sym_size")


@dataclasses.dataclass(frozen=True)
class TapPlan:
    """Which tap points a build surfaces, and how.

    Attributes:
        points: node names to tap; ``None`` taps every candidate (see module doc).
        reducer: ``"FULL_TENSOR"`` (the whole tensor) or ``"STATS"`` (a few
            statistics: what fits through a UART).
    """

    points: tuple[str, ...] | None = None
    reducer: str = "FULL_TENSOR"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (part of the cache key)."""
        return dataclasses.asdict(self)


def _target_name(node: Any) -> str:
    target = node.target
    name = getattr(target, "_name", None) or getattr(target, "__name__", None) or str(target)
    return str(name).replace("::", ".")


def is_quantize(node: Any) -> bool:
    """True for a per-tensor quantize node (a quantized layer's output)."""
    return node.op == "call_function" and _target_name(node).startswith(QUANTIZE)


def candidates(graph_module: Any, quantized: bool) -> list[Any]:
    """Every node the harness can tap, in execution order."""
    nodes = []
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if quantized:
            if is_quantize(node):
                nodes.append(node)
        elif not any(p in _target_name(node) for p in _PASS_THROUGH) and not _target_name(
            node
        ).startswith("quantized_decomposed."):
            nodes.append(node)
    return nodes


def producer(node: Any) -> Any:
    """The node whose value a tap point carries (a quantize node's input)."""
    if is_quantize(node):
        source = node.args[0]
        # through views: the layer is the op that computed the values
        while (
            getattr(source, "op", None) == "call_function"
            and any(p in _target_name(source) for p in ("view", "getitem"))
            and source.args
        ):
            source = source.args[0]
        return source
    return node


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _code_line(node: Any) -> str:
    """``file.py:line`` of the model code that made the node (its stack trace's last
    frame): how a person finds a functional op that no module path names."""
    trace = getattr(node, "meta", {}).get("stack_trace") or ""
    frames = _FRAME.findall(trace)
    # the model's own code, never a library pass that decomposed its op (a row named
    # "decompose_avg_pool2d_pass.py:167" tells a person nothing about their model)
    own = [f for f in frames if "site-packages" not in f[0] and "dist-packages" not in f[0]]
    if not own:
        return ""
    file, line = own[-1]
    return f"{file.rsplit('/', 1)[-1]}:{line}"


def layer_inputs(graph_module: Any, point: str) -> list[str]:
    """The tap points (quantize nodes) whose values the layer at tap point ``point``
    reads: what a board must return beside ``point`` for that layer's own error to be
    measured (:mod:`et_hil.verdict.debug`)."""
    node = next(n for n in graph_module.graph.nodes if n.name == point)
    quantized = is_quantize(node)

    def is_boundary(arg: Any) -> bool:
        # a quantized program's layers end at quantize nodes; a float program's at
        # every compute node that is a tap point itself
        if quantized:
            return is_quantize(arg)
        name = _target_name(arg)
        return not any(p in name for p in _PASS_THROUGH) and not name.startswith(
            "quantized_decomposed."
        )

    found: list[str] = []
    stack, seen = [producer(node)], set()
    while stack:
        current = stack.pop()
        for arg in getattr(current, "all_input_nodes", ()):
            if arg.name in seen or arg.op != "call_function":
                continue
            seen.add(arg.name)
            if is_boundary(arg):
                found.append(arg.name)  # another layer's output
            else:
                stack.append(arg)  # dequantize, views: the way to that output
    order = [n.name for n in graph_module.graph.nodes]
    return sorted(found, key=order.index)


def _module_path(node: Any) -> str:
    """The path of the module that made ``node`` (its ``nn_module_stack``), or ""."""
    stack = getattr(node, "meta", {}).get("nn_module_stack") or {}
    if not stack:
        return ""
    last = list(stack.values())[-1]
    return str(last[0] if isinstance(last, tuple) else last)


def describe(node: Any) -> dict[str, Any]:
    """Name, module path, op and quantization of one tap point."""
    source = producer(node)
    path = _module_path(source)
    code = _code_line(source)
    if not path and not code and getattr(source, "op", "") == "call_function":
        # made by a pass (a decomposition) with neither module nor model code of its
        # own: named after the module whose output it works on
        for arg in source.all_input_nodes:
            if upstream := _module_path(producer(arg) if is_quantize(arg) else arg):
                path = f"after {upstream}"
                break
    if getattr(source, "op", "") == "placeholder":
        op = "input"
    elif "dequantize" in _target_name(source):
        op = "requantize"  # a quantized value rescaled for its next user
    else:
        op = _target_name(source).removesuffix(".default")
    row: dict[str, Any] = {
        "node": node.name,
        "source": getattr(source, "name", str(source)),
        "module_path": path,
        "op": op,
        "code": code,
    }
    if is_quantize(node):
        scale, zero_point, qmin, qmax, dtype = node.args[1:6]
        row.update(
            scale=float(scale),
            zero_point=int(zero_point),
            qmin=int(qmin),
            qmax=int(qmax),
            dtype=str(dtype).removeprefix("torch."),
        )
    return row


def apply(exported: Any, plan: TapPlan, quantized: bool) -> tuple[Any, list[dict[str, Any]]]:
    """A tapped copy of ``exported`` and, per tap, its description and output index.

    Raises:
        ValueError: a requested point is not a tap point of this program.
    """
    from executorch.devtools.intermediate_output_tap import tap_intermediate_outputs_

    tapped = copy.deepcopy(exported)
    nodes = candidates(tapped.graph_module, quantized)
    known = {n.name for n in nodes}
    if plan.points is not None:
        unknown = [p for p in plan.points if p not in known]
        if unknown:
            raise ValueError(
                f"not tap points of this program: {', '.join(unknown)} "
                f"(tap points: {', '.join(sorted(known)) or 'none'})"
            )
        wanted = set(plan.points)
        nodes = [n for n in nodes if n.name in wanted]
    descriptions = {n.name: describe(n) for n in nodes}
    chosen = {id(n) for n in nodes}
    if not nodes:
        return tapped, []
    _, specs = tap_intermediate_outputs_(tapped, rules=[(lambda n: id(n) in chosen, plan.reducer)])
    return tapped, [
        {**descriptions[spec.node_name], "output_index": spec.output_index} for spec in specs
    ]


def locate(edge_program: Any, taps: Sequence[dict[str, Any]]) -> list[str]:
    """Where each tapped value is computed in the lowered program: the backend
    partition that outputs it (``TOSABackend #0``), or ``CPU``. Call before the
    taps are stripped."""
    graph_module = edge_program.exported_program().graph_module
    delegates: dict[str, int] = {}
    for node in graph_module.graph.nodes:
        if node.op == "call_function" and "executorch_call_delegate" in _target_name(node):
            delegates[node.name] = len(delegates)
    outputs = list(graph_module.graph.output_node().args[0])
    where = []
    for tap in taps:
        node = outputs[tap["output_index"]]
        source = node.args[0] if node.args else node
        if getattr(source, "target", None) is operator.getitem and source.args[0].name in delegates:
            call = source.args[0]
            backend = getattr(graph_module, call.args[0].target).backend_id
            where.append(f"{backend} #{delegates[call.name]}")
        else:
            where.append("CPU")
    return where
