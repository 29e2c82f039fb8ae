"""Models at the edges of what programs take and give: integer and bool inputs,
several or nested outputs, channels-last tensors. Each is small and seeded."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingClassifier(nn.Module):
    """Token ids (int64) through an embedding, mean-pooled, then a linear head."""

    def __init__(self, vocabulary: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids).mean(dim=1))


class MaskedLinear(nn.Module):
    """A bool mask input selects between a feature and its negation."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.where(mask, y, -y)


class TwoHeads(nn.Module):
    """One trunk, two outputs returned as a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(12, 16), nn.ReLU())
        self.classes = nn.Linear(16, 5)
        self.box = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.classes(features), self.box(features)


class NestedOutputs(nn.Module):
    """Outputs in a dict holding a tensor and a tuple of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        y = self.fc(x)
        return {"logits": y, "aux": (torch.relu(y), torch.sigmoid(y))}


class ChannelsLastConv(nn.Module):
    """A conv block exported with a channels-last (NHWC dim order) input and output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def edge_case(name: str, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The seeded model and example inputs of one edge case."""
    torch.manual_seed(seed)  # the same weights on every run: the cache key stays put
    generator = torch.Generator().manual_seed(seed)
    if name == "embedding_int64_ids":
        return EmbeddingClassifier().eval(), (torch.randint(0, 50, (2, 6), generator=generator),)
    if name == "bool_mask_input":
        x = torch.randn(2, 8, generator=generator)
        return MaskedLinear().eval(), (x, torch.rand(2, 8, generator=generator) > 0.5)
    if name == "tuple_outputs":
        return TwoHeads().eval(), (torch.randn(3, 12, generator=generator),)
    if name == "dict_nested_outputs":
        return NestedOutputs().eval(), (torch.randn(2, 8, generator=generator),)
    if name == "channels_last_conv":
        x = torch.randn(1, 3, 8, 8, generator=generator)
        return ChannelsLastConv().eval(), (x.contiguous(memory_format=torch.channels_last),)
    raise KeyError(name)


EDGE_CASES = (
    "embedding_int64_ids",
    "bool_mask_input",
    "tuple_outputs",
    "dict_nested_outputs",
    "channels_last_conv",
)
