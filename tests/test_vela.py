"""Tests of et_hil.programs.vela's CSV readers, on real Vela 5.1.0 output
(see tests/data/vela/README.txt).

The numbers in these tests were read from the CSV files themselves.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from et_hil.programs.vela import read_per_layer, read_summary, read_vela_reports

VELA_DATA = Path(__file__).parent / "data" / "vela"
OUTPUT = VELA_DATA / "partition_0" / "output"
SUMMARY = OUTPUT / "out_summary_Ethos_U55_High_End_Embedded.csv"
PER_LAYER = OUTPUT / "out_per-layer.csv"


def _raw_summary_row() -> dict[str, str]:
    with SUMMARY.open(newline="") as f:
        return next(csv.DictReader(f))


def test_data_files_are_the_raw_vela_csvs() -> None:
    # The values asserted below, as Vela wrote them (memory in KiB, clock in Hz).
    row = _raw_summary_row()
    assert row["accelerator_configuration"] == "Ethos_U55_128"
    assert row["system_config"] == "Ethos_U55_High_End_Embedded"
    assert row["memory_mode"] == "Shared_Sram"
    assert row["cycles_total"] == "2544"
    assert row["nn_macs"] == "14432"
    assert row["sram_memory_used"] == "1.078125"
    assert row["core_clock"] == "500000000.0"
    assert row["inference_time"] == "5.088e-06"
    # The second partition is a copy of the first.
    for name in (SUMMARY.name, PER_LAYER.name):
        copy = VELA_DATA / "partition_1" / "output" / name
        assert copy.read_bytes() == (OUTPUT / name).read_bytes()


def test_read_summary() -> None:
    summary = read_summary(SUMMARY)
    assert summary["accelerator_configuration"] == "Ethos_U55_128"
    assert summary["system_config"] == "Ethos_U55_High_End_Embedded"
    assert summary["memory_mode"] == "Shared_Sram"
    assert summary["core_clock"] == 500000000.0
    assert summary["inference_time"] == pytest.approx(5.088e-06)
    assert summary["nn_macs"] == 14432
    assert summary["cycles_npu"] == 2480
    assert summary["cycles_total"] == 2544
    assert isinstance(summary["cycles_total"], int)
    # Memory comes out in bytes: the CSV has KiB.
    assert summary["sram_memory_bytes"] == round(1.078125 * 1024) == 1104
    assert summary["off_chip_flash_memory_bytes"] == round(0.5625 * 1024) == 576
    assert summary["dram_memory_bytes"] == 0
    assert summary["on_chip_flash_memory_bytes"] == 0
    assert "sram_memory_used" not in summary


def test_summary_time_is_cycles_at_core_clock() -> None:
    summary = read_summary(SUMMARY)
    assert summary["cycles_total"] / summary["core_clock"] == pytest.approx(
        summary["inference_time"]
    )


def test_arena_cache_size_is_in_bytes() -> None:
    # The run used --arena-cache-size=2097152; the CSV says 2048.0 (KiB).
    assert read_summary(SUMMARY)["arena_cache_size_bytes"] == 2097152


def test_read_per_layer() -> None:
    layers = read_per_layer(PER_LAYER)
    assert len(layers) == 10
    assert layers[0] == {
        "name": "#169",
        "operator": "Transpose",
        "target": "NPU",
        "cycles": 56,
        "macs": 0,
    }
    conv = layers[2]
    assert (conv["operator"], conv["cycles"], conv["macs"]) == ("Conv2D", 1456, 13824)
    assert conv["name"] == "tosa_rescale_default_1"
    assert all(layer["target"] == "NPU" for layer in layers)
    assert [layer["operator"] for layer in layers].count("ReduceSum") == 5


def test_per_layer_adds_up_to_summary() -> None:
    layers = read_per_layer(PER_LAYER)
    summary = read_summary(SUMMARY)
    assert sum(layer["cycles"] for layer in layers) == summary["cycles_total"]
    assert sum(layer["macs"] for layer in layers) == summary["nn_macs"]


def test_read_vela_reports_totals() -> None:
    reports = read_vela_reports(VELA_DATA)
    assert [p["partition"] for p in reports["partitions"]] == ["partition_0", "partition_1"]
    total = reports["total"]
    assert total["partitions"] == 2
    assert total["cycles_total"] == 2 * 2544
    assert total["cycles_npu"] == 2 * 2480
    assert total["nn_macs"] == 2 * 14432
    assert total["inference_time_s"] == pytest.approx(2 * 5.088e-06)
    # Partitions run one after another and reuse the arena: SRAM is the peak, not the sum.
    assert total["sram_bytes"] == 1104
    assert total["off_chip_flash_bytes"] == 2 * 576
    assert total["dram_bytes"] == 0
    for partition in reports["partitions"]:
        assert len(partition["layers"]) == 10
        assert partition["cycles_total"] == 2544


def test_read_vela_reports_orders_partitions_numerically(tmp_path: Path) -> None:
    for index in (10, 2):
        shutil.copytree(VELA_DATA / "partition_0", tmp_path / f"partition_{index}")
    (tmp_path / "partition_3").mkdir()  # a partition without Vela output is skipped
    reports = read_vela_reports(tmp_path)
    assert [p["partition"] for p in reports["partitions"]] == ["partition_2", "partition_10"]
    assert reports["total"]["partitions"] == 2


def test_read_vela_reports_without_partitions(tmp_path: Path) -> None:
    reports = read_vela_reports(tmp_path)
    assert reports["partitions"] == []
    assert reports["total"]["partitions"] == 0
    assert reports["total"]["cycles_total"] == 0
    assert reports["total"]["sram_bytes"] == 0


def test_read_vela_reports_without_per_layer(tmp_path: Path) -> None:
    output = tmp_path / "partition_0" / "output"
    output.mkdir(parents=True)
    shutil.copy(SUMMARY, output)
    (partition,) = read_vela_reports(tmp_path)["partitions"]
    assert "layers" not in partition
    assert partition["cycles_total"] == 2544
