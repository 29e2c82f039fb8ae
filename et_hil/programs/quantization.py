"""How a model is quantized: the configuration and its calibration data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from et_hil.errors import ConfigError

if TYPE_CHECKING:
    import torch

SCHEMES = ("int8", "a16w8")


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """PT2E quantization settings.

    Attributes:
        scheme: ``int8`` (int8 activations and weights) or ``a16w8`` (int16
            activations, int8 weights; Arm targets).
        per_channel: per-channel weight scales (else per-tensor).
        calibration_samples: generated samples when the test gives no calibration data.
        seed: seed of the generated samples.
    """

    scheme: str = "int8"
    per_channel: bool = True
    calibration_samples: int = 8
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (part of the cache key and metadata)."""
        return dataclasses.asdict(self)

    @classmethod
    def coerce(cls, value: bool | str | QuantConfig | None) -> QuantConfig | None:
        """Accept ``None``/``False`` (float), ``True``/``"int8"`` or a config.

        Raises:
            ConfigError: an unknown scheme name.
        """
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, str):
            if value not in SCHEMES:
                raise ConfigError(
                    f"quantize={value!r}: unknown scheme (known: {', '.join(SCHEMES)})"
                )
            return cls(scheme=value)
        return value


def generated_calibration(
    example_inputs: Sequence[torch.Tensor], config: QuantConfig
) -> list[tuple[torch.Tensor, ...]]:
    """Calibration samples made from the example inputs, seeded.

    The example inputs themselves come first; the others are Gaussian noise with
    each input's mean and standard deviation, so that ranges resemble the data
    the test will run. Integer inputs are repeated unchanged.
    """
    import torch

    generator = torch.Generator().manual_seed(config.seed)
    samples: list[tuple[torch.Tensor, ...]] = [tuple(example_inputs)]
    for _ in range(max(0, config.calibration_samples - 1)):
        sample = []
        for tensor in example_inputs:
            if tensor.is_floating_point():
                std = float(tensor.std()) if tensor.numel() > 1 else 1.0
                noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                sample.append(noise * (std or 1.0) + float(tensor.mean()))
            else:
                sample.append(tensor.clone())
        samples.append(tuple(sample))
    return samples
