"""The built program and what is known about it, as it lies on disk."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PTE_NAME = "program.pte"
ETRECORD_NAME = "etrecord.bin"
REFERENCE_NAME = "fake_quant_reference.pt2"
EXPORTED_NAME = "exported_program.pt2"  # float programs: the torch.export program lowered
METADATA_NAME = "metadata.json"
# quantized Cortex-M targets: the edge program, for the golden reference (verdict.golden)
LOWERED_NAME = "lowered_program.pkl"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A built ExecuTorch program: ``.pte``, ETRecord, reference and metadata.

    Boards receive only this (never an ``nn.Module``).

    Attributes:
        key: content hash of everything that determined it (the cache key).
        folder: where its files are.
        metadata: contents of ``metadata.json`` (versions, target, delegation,
            input/output specs, output quantization scales, sizes).
        cache_hit: True when this process found it in the cache.
        obtain_s: seconds this process spent getting it (lookup or build).
    """

    key: str
    folder: Path
    metadata: Mapping[str, Any]
    cache_hit: bool
    obtain_s: float

    @property
    def pte_path(self) -> Path:
        """The serialized program."""
        return self.folder / PTE_NAME

    @property
    def etrecord_path(self) -> Path:
        """The ETRecord for the devtools Inspector."""
        return self.folder / ETRECORD_NAME

    @property
    def reference_path(self) -> Path | None:
        """The fake-quant reference program (``torch.export`` format), if quantized."""
        path = self.folder / REFERENCE_NAME
        return path if path.exists() else None

    @property
    def exported_program_path(self) -> Path | None:
        """The exported program this one was lowered from (its front, see
        :mod:`et_hil.programs.front`): the fake-quant reference of a quantized program,
        the float export of a float one; node names match the program's tap points."""
        for name in (REFERENCE_NAME, EXPORTED_NAME):
            if (path := self.folder / name).exists():
                return path
        return None

    @property
    def lowered_program_path(self) -> Path | None:
        """The lowered edge program (quantized Cortex-M targets only), for the golden
        reference (:mod:`et_hil.verdict.golden`)."""
        path = self.folder / LOWERED_NAME
        return path if path.exists() else None

    @property
    def model_name(self) -> str:
        """Name of the model it was built from."""
        return str(self.metadata["model"])

    @property
    def target(self) -> str:
        """Compile target (``unknown`` for a program read from a file: it does not say)."""
        return str(self.metadata.get("target") or "unknown")

    @property
    def quantized(self) -> bool:
        """True when the program was quantized."""
        return self.metadata.get("quantization") is not None

    @property
    def output_scales(self) -> list[float | None]:
        """Quantization scale of each output (``None`` for float outputs)."""
        return list(self.metadata.get("output_scales", []))

    @property
    def input_specs(self) -> list[dict[str, Any]]:
        """Shape and dtype of each program input."""
        return list(self.metadata["input_specs"])

    @classmethod
    def from_folder(cls, key: str, folder: Path, *, cache_hit: bool, obtain_s: float) -> Artifact:
        """Load an artifact's metadata from its folder."""
        metadata = json.loads((folder / METADATA_NAME).read_text())
        return cls(
            key=key, folder=folder, metadata=metadata, cache_hit=cache_hit, obtain_s=obtain_s
        )

    def summary(self) -> dict[str, Any]:
        """The fields a result record carries."""
        return {
            "key": self.key,
            "model": self.model_name,
            "target": self.target,
            "quantization": self.metadata.get("quantization"),
            "pte_bytes": self.metadata.get("pte_bytes"),
            "delegation": self.metadata.get("delegation"),
            "planned_memory_bytes": self.metadata.get("planned_memory_bytes"),
            "vela": (self.metadata.get("vela") or {}).get("total"),
            "cache_hit": self.cache_hit,
            "obtain_s": round(self.obtain_s, 4),
            "build_s": self.metadata.get("build_s"),
            "folder": str(self.folder),
        }


def write_metadata(folder: Path, metadata: Mapping[str, Any]) -> None:
    """Write ``metadata.json`` into an artifact folder."""
    (folder / METADATA_NAME).write_text(json.dumps(dict(metadata), indent=1, sort_keys=True))
