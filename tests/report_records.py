"""Results records shared by the report tests (baselines, merge, the commands).

Real records, trimmed to what those read: from real runs of
`pytest suites --et-board=corstone320 --et-build-only` (VELA_BUILD) and
`pytest suites --et-board=host --et-board=tosa` (TOSA_RUN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from et_hil.report.record import Record
from et_hil.report.results import record_of

VELA_TEST = "suites/test_edge_cases.py::test_edge_int8[corstone320-embedding_int64_ids]"
VELA_BUILD: dict[str, Any] = {
    "test": VELA_TEST,
    "board": "corstone320",
    "outcome": "skipped",
    "ran": False,
    "run_id": "188cf9d7a5dc",
    "finished_at": "2026-12-02T10:38:15+0000",
    "duration_s": 3.4683,
    "message": "Skipped: built 54f6d3c71a70 for corstone320; nothing ran (--build-only)",
    "artifact": {
        "pte_bytes": 4640,
        "planned_memory_bytes": 144,
        "vela": {
            "cycles_npu": 760,
            "cycles_total": 1538,
            "inference_time_s": 1.538e-06,
            "off_chip_flash_bytes": 0,
            "sram_bytes": 704,
        },
    },
    "comparisons": [],
}
TOSA_TEST = "suites/test_edge_cases.py::test_edge_int8[tosa-embedding_int64_ids]"
TOSA_RUN: dict[str, Any] = {
    "test": TOSA_TEST,
    "board": "tosa",
    "outcome": "passed",
    "ran": True,
    "run_id": "1063bc6da9e2",
    "finished_at": "2026-12-02T10:40:21+0000",
    "duration_s": 6.898,
    "message": "",
    "artifact": {"pte_bytes": 14368, "planned_memory_bytes": 144, "vela": None},
    "comparisons": [
        {"reference": "fake_quant", "metrics": [{"snr_db": "inf", "max_lsb": 0.0, "top1": 1.0}]},
        {
            "reference": "eager_float",
            "metrics": [{"snr_db": 40.214426389205535, "max_lsb": 1.3241113046802797, "top1": 1.0}],
        },
    ],
    "timings": {"execute_s": 0.002706, "fidelity": "tosa-reference"},
}


def typed(records: Iterable[Mapping[str, Any]]) -> list[Record]:
    """The records as a results file's reader gives them."""
    return [record_of(r) for r in records]
