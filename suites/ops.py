"""One small module per operator, for the operator suite."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Unary(nn.Module):
    """Applies one function; named after it so records say which op ran."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class Sub(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x - y


class Mul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class Cat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y], dim=self.dim)


class Mean(nn.Module):
    def __init__(self, dims: tuple[int, ...], keepdim: bool) -> None:
        super().__init__()
        self.dims = dims
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims, keepdim=self.keepdim)


class Softmax(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=self.dim)


class View(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.shape)


class Permute(nn.Module):
    def __init__(self, order: tuple[int, ...]) -> None:
        super().__init__()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.order)


class Pad(nn.Module):
    def __init__(self, pad: tuple[int, ...]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.pad)


class Upsample(nn.Module):
    def __init__(self, scale: int, mode: str) -> None:
        super().__init__()
        self.scale = scale
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=self.scale, mode=self.mode)


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# name -> (module factory, input shapes). Built fresh per test with a fixed seed.
IMAGE = (1, 8, 16, 16)
CASES: dict[str, tuple[Callable[[], nn.Module], list[tuple[int, ...]]]] = {
    "conv2d_3x3_padded": (lambda: nn.Conv2d(8, 16, 3, padding=1), [IMAGE]),
    "conv2d_strided": (lambda: nn.Conv2d(8, 16, 3, stride=2), [IMAGE]),
    "conv2d_dilated": (lambda: nn.Conv2d(8, 8, 3, dilation=2, padding=2), [IMAGE]),
    "conv2d_depthwise": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), [IMAGE]),
    "conv2d_grouped": (lambda: nn.Conv2d(8, 16, 3, padding=1, groups=2), [IMAGE]),
    "conv2d_1x1_large": (lambda: nn.Conv2d(16, 32, 1), [(1, 16, 24, 24)]),
    "linear_2d": (lambda: nn.Linear(32, 16), [(4, 32)]),
    "linear_3d": (lambda: nn.Linear(32, 8), [(2, 5, 32)]),
    "add_4d": (Add, [IMAGE, IMAGE]),
    "add_broadcast": (Add, [(1, 8, 16, 16), (1, 8, 1, 1)]),
    "sub_2d": (Sub, [(4, 32), (4, 32)]),
    "mul_4d": (Mul, [IMAGE, IMAGE]),
    "relu": (lambda: nn.ReLU(), [IMAGE]),
    "relu6": (lambda: nn.ReLU6(), [IMAGE]),
    "hardswish": (lambda: nn.Hardswish(), [IMAGE]),
    "sigmoid": (lambda: nn.Sigmoid(), [IMAGE]),
    "tanh": (lambda: nn.Tanh(), [(4, 64)]),
    "gelu": (lambda: nn.GELU(), [(4, 64)]),
    "avg_pool2d": (lambda: nn.AvgPool2d(2), [IMAGE]),
    "max_pool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), [IMAGE]),
    "adaptive_avg_pool2d": (lambda: nn.AdaptiveAvgPool2d(1), [IMAGE]),
    "softmax_last": (lambda: Softmax(-1), [(4, 16)]),
    "mean_hw": (lambda: Mean((2, 3), keepdim=True), [IMAGE]),
    "mean_last": (lambda: Mean((-1,), keepdim=False), [(2, 4, 32)]),
    "cat_channels": (lambda: Cat(1), [IMAGE, IMAGE]),
    "cat_last": (lambda: Cat(-1), [(2, 8), (2, 4)]),
    "view_flatten": (lambda: View((1, -1)), [(1, 4, 4, 4)]),
    "permute_nhwc": (lambda: Permute((0, 2, 3, 1)), [IMAGE]),
    "pad_hw": (lambda: Pad((1, 1, 2, 2)), [IMAGE]),
    "upsample_nearest": (lambda: Upsample(2, "nearest"), [(1, 4, 8, 8)]),
    "upsample_bilinear": (lambda: Upsample(2, "bilinear"), [(1, 4, 8, 8)]),
}


def make_case(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module (seeded weights) and inputs of one case."""
    factory, shapes = CASES[name]
    torch.manual_seed(0)
    module = factory().eval()
    inputs = tuple(_randn(*shape, seed=i + 1) for i, shape in enumerate(shapes))
    return module, inputs
