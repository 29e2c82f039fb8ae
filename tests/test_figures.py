"""Tests of et_hil.report.figures: the figures of real result records, the direction
of each figure, JSON numbers (infinities as strings) and a test's name without its board."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from et_hil.report.figures import case_name, figures_of, higher_is_worse, number
from et_hil.report.results import record_of


def figures_from(fields: Mapping[str, Any]) -> dict[str, float]:
    """The figures of the record ``fields`` make, read as from a results file (a test
    and an outcome where the fields leave them out)."""
    return figures_of(record_of({"test": "t", "outcome": "passed", **fields}))


# Records below are real, trimmed to the fields figures_of reads. They come from real
# runs of `pytest suites --et-board=corstone320 --et-build-only` (BUILD_ONLY_*) and
# `pytest suites --et-board=host --et-board=tosa` (the others).

# A Vela build for the Ethos-U85: Vela's estimates, nothing ran.
BUILD_ONLY_CORSTONE320 = {
    "test": "suites/test_edge_cases.py::test_edge_int8[corstone320-embedding_int64_ids]",
    "board": "corstone320",
    "outcome": "skipped",
    "ran": False,
    "message": "Skipped: built 54f6d3c71a70 for corstone320; nothing ran (--build-only)",
    "artifact": {
        "pte_bytes": 4640,
        "planned_memory_bytes": 144,
        "vela": {
            "cycles_npu": 760,
            "cycles_total": 1538,
            "dram_bytes": 1168,
            "inference_time_s": 1.538e-06,
            "nn_macs": 512,
            "off_chip_flash_bytes": 0,
            "partitions": 1,
            "sram_bytes": 704,
        },
    },
    "comparisons": [],
    "board_facts": None,
}

# Skipped before anything was built: no figures at all.
SKIPPED_UNBUILT: dict[str, Any] = {
    "test": "suites/test_edge_cases.py::test_edge_float[corstone320-embedding_int64_ids]",
    "board": "corstone320",
    "outcome": "skipped",
    "ran": None,
    "artifact": {"pte_bytes": None, "planned_memory_bytes": None, "vela": None},
    "comparisons": [],
    "board_facts": None,
}

# A host build under --et-build-only: program sizes, no Vela, no run.
BUILD_ONLY_HOST = {
    "test": "suites/test_edge_cases.py::test_edge_float[host-embedding_int64_ids]",
    "board": "host",
    "outcome": "skipped",
    "ran": False,
    "artifact": {"pte_bytes": 5520, "planned_memory_bytes": 896, "vela": None},
    "comparisons": [],
    "board_facts": None,
}

# An int8 program on the TOSA reference model: two references, SNR 'inf' against
# fake-quant (an exact match, written as a string by the results writer).
TOSA_INT8 = {
    "test": "suites/test_edge_cases.py::test_edge_int8[tosa-embedding_int64_ids]",
    "board": "tosa",
    "outcome": "passed",
    "ran": True,
    "artifact": {"pte_bytes": 14368, "planned_memory_bytes": 144, "vela": None},
    "comparisons": [
        {
            "reference": "fake_quant",
            "metrics": [{"snr_db": "inf", "max_lsb": 0.0, "top1": 1.0}],
        },
        {
            "reference": "eager_float",
            "metrics": [{"snr_db": 40.214426389205535, "max_lsb": 1.3241113046802797, "top1": 1.0}],
        },
    ],
    "timings": {"execute_s": 0.002706, "fidelity": "tosa-reference"},
    "board_facts": {"delegate_calls": 1},
}

# A float program on the host: max_lsb and top5 are null (float; not a classifier).
HOST_FLOAT = {
    "test": "suites/test_edge_cases.py::test_edge_float[host-embedding_int64_ids]",
    "board": "host",
    "outcome": "passed",
    "ran": True,
    "artifact": {"pte_bytes": 5520, "planned_memory_bytes": 896, "vela": None},
    "comparisons": [
        {
            "reference": "eager_float",
            "metrics": [{"snr_db": 141.1725179682272, "max_lsb": None, "top1": 1.0}],
        }
    ],
    "timings": {"execute_s": 0.003093, "fidelity": "host-wall"},
    "board_facts": {},
}


# ---------------------------------------------------------------- figures_of


def test_build_only_vela_record_gives_vela_and_program_figures() -> None:
    assert figures_from(BUILD_ONLY_CORSTONE320) == {
        "planned_memory_bytes": 144.0,
        "pte_bytes": 4640.0,
        "vela.cycles_npu": 760.0,
        "vela.cycles_total": 1538.0,
        "vela.inference_time_s": 1.538e-06,
        "vela.off_chip_flash_bytes": 0.0,  # a zero is a figure, not an absent one
        "vela.sram_bytes": 704.0,
    }


def test_vela_fields_not_tracked_are_left_out() -> None:
    names = figures_from(BUILD_ONLY_CORSTONE320)
    assert "vela.dram_bytes" not in names
    assert "vela.nn_macs" not in names
    assert "vela.partitions" not in names


def test_build_only_record_has_no_run_figures() -> None:
    # ran is False: no execute_s even if timings were there.
    record = {**BUILD_ONLY_HOST, "timings": {"execute_s": 0.5, "fidelity": "host-wall"}}
    assert figures_from(record) == {"planned_memory_bytes": 896.0, "pte_bytes": 5520.0}


def test_record_skipped_before_building_has_no_figures() -> None:
    assert figures_from(SKIPPED_UNBUILT) == {}
    assert figures_from({}) == {}


def test_tosa_record_gives_accuracy_per_reference_and_execute_time() -> None:
    figures = figures_from(TOSA_INT8)
    assert figures == {
        "execute_s@tosa-reference": 0.002706,
        "max_lsb@eager_float": 1.3241113046802797,
        "max_lsb@fake_quant": 0.0,
        "planned_memory_bytes": 144.0,
        "pte_bytes": 14368.0,
        "snr_db@eager_float": 40.214426389205535,
        # the string 'inf' (bit-exact) read as a number, at the 100 dB ceiling
        "snr_db@fake_quant": 100.0,
        "top1@eager_float": 1.0,
        "top1@fake_quant": 1.0,
    }
    assert list(figures) == sorted(figures)


def test_null_metrics_are_absent() -> None:
    figures = figures_from(HOST_FLOAT)
    assert "max_lsb@eager_float" not in figures
    # 141.17 dB is float32 rounding noise: it counts as the 100 dB ceiling
    assert figures["snr_db@eager_float"] == 100.0
    assert figures["execute_s@host-wall"] == 0.003093


def test_accuracy_is_the_worst_over_outputs_and_checks() -> None:
    # Two checks against eager_float, outputs of each:
    #   snr  40, 30 | 35        -> worst (lowest) 30
    #   lsb  1, 3   | 2         -> worst (largest) 3
    #   top1 0.9, - | 0.8       -> worst (lowest) 0.8
    # and a NaN SNR, which is not a measurement, is ignored.
    record = {
        "comparisons": [
            {
                "reference": "eager_float",
                "metrics": [
                    {"snr_db": 40.0, "max_lsb": 1.0, "top1": 0.9},
                    {"snr_db": 30.0, "max_lsb": 3.0, "top1": None},
                ],
            },
            {
                "reference": "eager_float",
                "metrics": [
                    {"snr_db": 35.0, "max_lsb": 2.0, "top1": 0.8},
                    {"snr_db": "nan", "max_lsb": None, "top1": None},
                ],
            },
        ]
    }
    assert figures_from(record) == {
        "max_lsb@eager_float": 3.0,
        "snr_db@eager_float": 30.0,
        "top1@eager_float": 0.8,
    }


def test_pmu_figures_are_tagged_with_the_fidelity() -> None:
    record = {
        "ran": True,
        "timings": {"execute_s": 0.25, "fidelity": "fvp-cycles"},
        "board_facts": {"pmu": {"npu_active_cycles": 1200, "cpu_cycles": 5000, "other": 3}},
    }
    assert figures_from(record) == {
        "execute_s@fvp-cycles": 0.25,
        "pmu.cpu_cycles@fvp-cycles": 5000.0,
        "pmu.npu_active_cycles@fvp-cycles": 1200.0,
    }


def test_run_without_a_fidelity_is_tagged_unknown() -> None:
    assert figures_from({"ran": True, "timings": {"execute_s": 1.5}}) == {"execute_s@unknown": 1.5}


# ---------------------------------------------------------------- higher_is_worse


@pytest.mark.parametrize(
    ("figure", "worse_when_higher"),
    [
        ("snr_db@eager_float", False),
        ("top1@fake_quant", False),
        ("max_lsb@fake_quant", True),
        ("vela.cycles_total", True),
        ("vela.sram_bytes", True),
        ("pte_bytes", True),
        ("execute_s@host-wall", True),
        ("pmu.npu_active_cycles@fvp-cycles", True),
        ("some.new_figure", True),  # unknown: larger is worse
    ],
)
def test_direction_of_each_figure(figure: str, worse_when_higher: bool) -> None:
    assert higher_is_worse(figure) is worse_when_higher


# ---------------------------------------------------------------- number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("1.5e-3", 0.0015),
        (True, None),  # a bool is not a measurement
        (False, None),
        (None, None),
        ("fast", None),
        ([1.0], None),
        ({"v": 1}, None),
    ],
)
def test_number_reads_json_values(value: object, expected: float | None) -> None:
    assert number(value) == expected


def test_number_reads_nan_as_nan() -> None:
    result = number("nan")
    assert result is not None
    assert math.isnan(result)


# ---------------------------------------------------------------- case_name


@pytest.mark.parametrize(
    ("test", "board_name", "expected"),
    [
        # board first (how suites parametrize)
        (
            "suites/test_ops.py::test_op_int8[tosa-conv2d_3x3_padded]",
            "tosa",
            "suites/test_ops.py::test_op_int8[conv2d_3x3_padded]",
        ),
        (
            "suites/test_edge_cases.py::test_edge_int8[corstone320-embedding_int64_ids]",
            "corstone320",
            "suites/test_edge_cases.py::test_edge_int8[embedding_int64_ids]",
        ),
        # board last, board in the middle, board alone
        ("s.py::t[conv-host]", "host", "s.py::t[conv]"),
        ("s.py::t[conv-host-int8]", "host", "s.py::t[conv-int8]"),
        ("s.py::t[host]", "host", "s.py::t"),
        # not this board's parameter, or no parameters, or no board: unchanged
        ("s.py::t[tosa-conv]", "host", "s.py::t[tosa-conv]"),
        ("s.py::t[hostile-conv]", "host", "s.py::t[hostile-conv]"),
        ("s.py::t", "host", "s.py::t"),
        ("s.py::t[host-conv]", None, "s.py::t[host-conv]"),
    ],
)
def test_case_name_drops_the_board(test: str, board_name: str | None, expected: str) -> None:
    # (not "board": the harness plugin records tests that take a "board" parameter)
    assert case_name(test, board_name) == expected


def test_same_case_on_two_boards_gets_one_name() -> None:
    host = case_name("suites/test_ops.py::test_op_int8[host-relu]", "host")
    tosa = case_name("suites/test_ops.py::test_op_int8[tosa-relu]", "tosa")
    assert host == tosa == "suites/test_ops.py::test_op_int8[relu]"
