"""CMSIS-NN's arithmetic where upstream's Python ``cortex_m`` kernels differ from it.

The golden reference of a Cortex-M program (:mod:`et_hil.verdict.golden`) runs its
lowered graph on upstream's Python implementations of the ``cortex_m`` operators
(``executorch/backends/cortex_m/ops/operators.py``), which mostly compute as the
C kernels do (``requantize_cmsis`` is ``arm_nn_requantize``). Two do not, and the
golden reference computes those as the pinned C sources do:

* ``quantized_avg_pool2d``: ExecuTorch's kernel calls ``arm_avgpool_s8`` on the raw
  int8 values (``op_quantized_avg_pool2d.cpp`` ignores the zero point and scale: the
  input and output share them), which sums the window's valid elements and divides
  with ties rounded away from zero (``(sum +- count/2) / count``,
  ``arm_avgpool_s8.c``). The Python reference averages in float and re-quantizes,
  rounding ties to even: 1 LSB apart on every tie (seen on the average-pooling
  operator cases and the smoke suite's small CNN on qemu-m55-cmsis).
* ``quantized_conv2d`` with dilation: the Python reference calls ``F.conv2d`` on
  int32 tensors, which PyTorch cannot do dilated ("slow_conv_dilated not
  implemented for 'Int'"); here the sums are made in float64, exact for int8
  products of any realistic kernel (below 2^53), then requantized per channel as
  ``arm_nn_requantize`` does.

Upstream (``executorch==1.5.1``): ``quantized_avg_pool2d_impl`` and
``quantized_conv2d_impl`` in ``backends/cortex_m/ops/operators.py``. No upstream
issue was found for either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _name(target: Any) -> str:
    """``cortex_m.quantized_conv2d`` for the edge operator ``cortex_m::quantized_conv2d``."""
    name = getattr(target, "_name", None) or getattr(target, "__name__", None) or target
    return str(name).replace("::", ".")


def avg_pool2d_s8(
    input: Any,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    ceil_mode: bool,
) -> Any:
    """``arm_avgpool_s8`` on an NCHW int8 tensor: the sum of each window's valid
    elements, divided by their count with ties away from zero, within int8."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (the usual alias)

    kernel = tuple(kernel_size) * (2 // len(kernel_size))
    steps = tuple(stride) * (2 // len(stride)) if stride else kernel
    pads = tuple(padding) * (2 // len(padding)) if padding else (0, 0)

    def window_sum(x: Any) -> Any:
        return F.avg_pool2d(
            x, kernel, stride=steps, padding=pads, ceil_mode=ceil_mode,
            count_include_pad=False, divisor_override=1,
        )  # fmt: skip

    values = input.to(torch.float64)
    sums = window_sum(values).round().to(torch.int64)
    counts = window_sum(torch.ones_like(values)).round().to(torch.int64)
    half = counts // 2
    shifted = torch.where(sums > 0, sums + half, sums - half)
    # C's integer division truncates toward zero
    quotient = torch.div(shifted, counts, rounding_mode="trunc")
    return quotient.clamp(-128, 127).to(torch.int8).contiguous(memory_format=torch.channels_last)


def conv2d_s8(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    input_offset: int,
    output_offset: int,
    multipliers: Any,
    shifts: Any,
    activation_min: int,
    activation_max: int,
) -> Any:
    """``cortex_m::quantized_conv2d`` (weights OHWI, per-channel requantization), its
    sums in float64 so that dilated convolutions work too."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (the usual alias)
    from executorch.backends.cortex_m.passes.passes_utils import requantize_cmsis

    x = input.to(torch.float64) + int(input_offset)
    w = weight.to(torch.float64).permute(0, 3, 1, 2)
    groups = input.shape[1] // weight.shape[3]
    b = None if bias is None else bias.to(torch.float64)
    sums = F.conv2d(x, w, b, tuple(stride), tuple(padding), tuple(dilation), groups)
    sums = sums.round().to(torch.int64)
    channels = [
        requantize_cmsis(sums[:, c], int(multipliers[c]), int(shifts[c]))
        for c in range(sums.shape[1])
    ]
    out = torch.stack(channels, dim=1) + int(output_offset)
    out = out.clamp(int(activation_min), int(activation_max))
    return out.to(torch.int8).contiguous(memory_format=torch.channels_last)


def run(graph_module: Any, inputs: Sequence[Any]) -> Any:
    """Run a lowered Cortex-M graph: every operator as its Python implementation, the
    ones above as the C kernels compute them."""
    import torch

    class Interpreter(torch.fx.Interpreter):
        def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
            name = _name(target)
            if "cortex_m.quantized_avg_pool2d" in name and "nhwc" not in name:
                return avg_pool2d_s8(*args[:5])
            if "cortex_m.quantized_conv2d" in name and "nhwc" not in name:
                dilation = args[5]
                if any(int(d) != 1 for d in dilation):
                    return conv2d_s8(*args[:12])
            return super().call_function(target, args, kwargs)

    with torch.no_grad():
        return Interpreter(graph_module).run(*inputs)
