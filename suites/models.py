"""Small models defined in code (no downloads), for the smoke suite."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Two hidden layers, a classifier head of 10."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Conv-BN-ReLU twice, pooling, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class DepthwiseSeparableCNN(nn.Module):
    """MobileNet-style: depthwise 3x3 then pointwise 1x1, with ReLU6."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6())
        self.pointwise = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU6())
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(self.depthwise(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class ResidualBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and an identity shortcut."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


class TinyAttention(nn.Module):
    """Single-head self-attention over a short sequence, written out with matmuls."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        return self.proj(weights @ v)


def example_input(name: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded example inputs for each smoke model."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {
        "mlp": (2, 32),
        "small_cnn": (1, 3, 16, 16),
        "depthwise_separable_cnn": (1, 3, 16, 16),
        "residual_block": (1, 16, 8, 8),
        "tiny_attention": (1, 8, 32),
    }
    return (torch.randn(shapes[name], generator=generator),)


SMOKE_MODELS = {
    "mlp": MLP,
    "small_cnn": SmallCNN,
    "depthwise_separable_cnn": DepthwiseSeparableCNN,
    "residual_block": ResidualBlock,
    "tiny_attention": TinyAttention,
}
