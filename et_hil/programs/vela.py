"""Vela's estimates: one output folder per Ethos-U partition, read back from its CSVs.

Upstream's backend sends every partition's Vela run to the same intermediate
folder, with the same file names (``out.tosa``, ``output/out_summary_*.csv``),
so a later partition overwrites an earlier one's estimates. While lowering, we
wrap the backend's ``vela_compile`` to give each call its own folder
``partition_<n>`` and to send Vela's printout to ``vela.log`` there.

Upstream (``executorch==1.5.1``): ``EthosUBackend`` (``backends/arm/ethosu/backend.py``)
calls ``vela_compile`` (``backends/arm/arm_vela.py``) with the same
``intermediate_path=compile_spec._get_intermediate_path()`` for every partition.
No upstream issue was found.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KIB = 1024

# Summary CSV columns kept, with the unit conversion to apply.
_SUMMARY_FIELDS = {
    "accelerator_configuration": str,
    "system_config": str,
    "memory_mode": str,
    "core_clock": float,  # Hz
    "inference_time": float,  # seconds at core_clock
    "nn_macs": int,
    "cycles_npu": int,
    "cycles_total": int,
    "sram_memory_used": float,  # KiB in the CSV
    "dram_memory_used": float,
    "on_chip_flash_memory_used": float,
    "off_chip_flash_memory_used": float,
    "arena_cache_size": float,  # KiB in the CSV (stats_writer divides by 1024)
}
_KIB_FIELDS = (
    "arena_cache_size",
    "sram_memory_used",
    "dram_memory_used",
    "on_chip_flash_memory_used",
    "off_chip_flash_memory_used",
)


@contextlib.contextmanager
def per_partition_vela_folders(folder: Path) -> Iterator[None]:
    """While active, each Vela compilation writes into ``folder/partition_<n>``."""
    from executorch.backends.arm.ethosu import backend

    original = backend.vela_compile
    count = 0

    def vela_compile(tosa_flatbuffer: bytes, args: list[str], **kwargs: Any) -> Any:
        nonlocal count
        partition = folder / f"partition_{count}"
        count += 1
        partition.mkdir(parents=True, exist_ok=True)
        kwargs["intermediate_path"] = str(partition)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                return original(tosa_flatbuffer, list(args), **kwargs)
        finally:
            (partition / "vela.log").write_text(printed.getvalue())

    backend.vela_compile = vela_compile
    try:
        yield
    finally:
        backend.vela_compile = original


def _number(text: str, kind: type) -> Any:
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        return None


def read_summary(path: Path) -> dict[str, Any]:
    """The fields we keep from one ``out_summary_<system>.csv`` (memory in bytes)."""
    with path.open(newline="") as f:
        row = next(csv.DictReader(f))
    summary = {k: _number(row[k], t) for k, t in _SUMMARY_FIELDS.items() if k in row}
    for key in _KIB_FIELDS:
        if summary.get(key) is not None:
            name = key.replace("_used", "") + "_bytes" if key.endswith("_used") else key + "_bytes"
            summary[name] = round(summary.pop(key) * KIB)
    return summary


def read_per_layer(path: Path) -> list[dict[str, Any]]:
    """One dict per NPU layer: name, operator, cycles, MACs (from ``out_per-layer.csv``)."""
    layers = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            layers.append(
                {
                    "name": row.get("Name", ""),
                    "operator": row.get("Original Operator", ""),
                    "target": row.get("Target", ""),
                    "cycles": _number(row.get("Op Cycles", ""), int),
                    "macs": _number(row.get("MAC Count", ""), int),
                }
            )
    return layers


def read_vela_reports(folder: Path) -> dict[str, Any]:
    """Per-partition Vela summaries and layers, and totals across partitions."""
    partitions = []
    for partition in sorted(folder.glob("partition_*"), key=lambda p: int(p.name.split("_")[1])):
        summaries = sorted((partition / "output").glob("out_summary_*.csv"))
        if not summaries:
            continue
        entry = {"partition": partition.name, **read_summary(summaries[0])}
        per_layer = partition / "output" / "out_per-layer.csv"
        if per_layer.exists():
            entry["layers"] = read_per_layer(per_layer)
        partitions.append(entry)
    total = {
        "partitions": len(partitions),
        "cycles_total": sum(p.get("cycles_total") or 0 for p in partitions),
        "cycles_npu": sum(p.get("cycles_npu") or 0 for p in partitions),
        "nn_macs": sum(p.get("nn_macs") or 0 for p in partitions),
        "inference_time_s": sum(p.get("inference_time") or 0.0 for p in partitions),
        # Partitions run one after another and reuse the arena: the peak is the max.
        "sram_bytes": max((p.get("sram_memory_bytes") or 0 for p in partitions), default=0),
        "off_chip_flash_bytes": sum(p.get("off_chip_flash_memory_bytes") or 0 for p in partitions),
        "dram_bytes": sum(p.get("dram_memory_bytes") or 0 for p in partitions),
    }
    return {"total": total, "partitions": partitions}
