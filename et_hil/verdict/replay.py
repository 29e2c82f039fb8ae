"""Replays of the fake-quant reference: with a board's own layer values, or with its
rounding jittered.

The fake-quant reference is a graph whose ``quantize_per_tensor`` nodes are the
quantization points a board computes too (:mod:`et_hil.programs.taps`). Running it
node by node (a ``torch.fx.Interpreter``) with one of two changes answers the two
questions a verdict on a deep network needs:

* **What should this layer have given, from what the board gave it?**
  (:func:`replay` with ``board_values``): at each tapped quantization point the
  replay records the reference value computed from the board's own values of the
  points before it (the layer-local reference), then hands the board's value on
  to the layers after it. A correct layer is then within about 1 LSB of its local
  reference however much error the network accumulated before it; a broken layer
  shows its own error at any depth.
* **How much does legitimate rounding move this model's outputs?**
  (:func:`replay` with ``jitter``): every activation quantization point rounds
  ``x / scale`` after adding seeded uniform noise in ``[-jitter, +jitter]`` LSB,
  so values within ``jitter`` of a rounding boundary may round the other way, as
  they do on boards whose integer arithmetic differs from float32 in the last
  bits. The outputs' spread under that noise is the rounding noise this model
  amplifies to its outputs (:mod:`et_hil.verdict.compare` holds a board to it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_QUANTIZE = "quantized_decomposed.quantize_per_tensor"


@dataclasses.dataclass
class Replay:
    """What one replay computed.

    Attributes:
        outputs: the graph's flat outputs.
        values: every tensor node's value, by node name.
        local: the layer-local reference of each substituted quantization point
            (the value computed before the board's value replaced it).
    """

    outputs: list[Any]
    values: dict[str, Any]
    local: dict[str, Any]


def _target_name(node: Any) -> str:
    target = node.target
    name = getattr(target, "_name", None) or getattr(target, "__name__", None) or str(target)
    return str(name).replace("::", ".")


def is_activation_quantize(node: Any) -> bool:
    """A quantize node of a value computed in the graph (not of a graph input, which
    every board quantizes on the CPU exactly as torch does)."""
    if node.op != "call_function" or not _target_name(node).startswith(_QUANTIZE):
        return False
    source = node.args[0]
    return getattr(source, "op", None) == "call_function"


def replay(
    module: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    board_values: Mapping[str, Any] | None = None,
    jitter: float = 0.0,
    seed: int = 0,
    keep_values: bool = False,
) -> Replay:
    """Run the fake-quant graph ``module`` (a ``GraphModule``) on ``inputs``.

    Args:
        board_values: tapped quantization points' board values (integer tensors or
            arrays, logical layout) by node name; each replaces its node's value for
            the layers after it, and its local reference is kept in ``local``.
        jitter: half-width, in LSB, of the uniform noise added before each activation
            quantization point rounds (0: the plain reference).
        seed: of the jitter's noise.
        keep_values: keep every node's value (memory: the whole network's tensors).
    """
    import torch

    substitutes = dict(board_values or {})
    generator = torch.Generator().manual_seed(seed)
    values: dict[str, Any] = {}
    local: dict[str, Any] = {}

    class Interpreter(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            if jitter and is_activation_quantize(n):
                value = _jittered_quantize(self, n, jitter, generator)
            else:
                value = super().run_node(n)
            if n.name in substitutes and isinstance(value, torch.Tensor):
                local[n.name] = value.detach()
                board = torch.as_tensor(substitutes[n.name])
                value = board.reshape(value.shape).to(value.dtype)
            if keep_values and isinstance(value, torch.Tensor):
                values[n.name] = value.detach()
            return value

    with torch.no_grad():
        result = Interpreter(module).run(*inputs)
    outputs = [t for t in torch.utils._pytree.tree_leaves(result) if isinstance(t, torch.Tensor)]
    return Replay(outputs=outputs, values=values, local=local)


def _jittered_quantize(
    interpreter: torch.fx.Interpreter, node: Any, jitter: float, generator: torch.Generator
) -> Any:
    """``quantize_per_tensor`` as torch computes it (round half to even of
    ``x * (1 / scale)``), with uniform noise of ``jitter`` LSB added before rounding."""
    import torch

    args, _ = interpreter.fetch_args_kwargs_from_env(node)
    x, scale, zero_point, qmin, qmax, dtype = args[:6]
    scale = float(scale)
    zero_point = int(zero_point)
    scaled = x.to(torch.float32) * (1.0 / scale)
    noise = (torch.rand(scaled.shape, generator=generator) * 2.0 - 1.0) * jitter
    return torch.clamp(torch.round(scaled + noise) + zero_point, int(qmin), int(qmax)).to(dtype)
