"""The mutation campaign's CI slice (``benchmarks/mutation.py``; ``make mutation`` runs
it over every real model and board, with the table in the README).

DS-CNN keyword spotting (the MLPerf Tiny network, 10 weighted layers) on the host
board: the clean int8 program passes and its per-layer table names no layer; the
weights of a layer x1.25 at an early, a middle and a late layer each fails the
check, and the per-layer table names that layer first. (The campaign's sign faults
at DS-CNN's middle and late layers stay within 1 LSB at the outputs and pass on
host: the README's misses.)
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _campaign_module():
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "benchmarks" / "mutation.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_ds_cnn_on_host_clean_passes_and_each_fault_is_found_and_localized(
    tmp_path: Path, shared_cache: Path
) -> None:
    mutation = _campaign_module()
    out = tmp_path / "campaign"
    status = mutation.main(
        [
            *("--board", "host", "--model", "ds_cnn_kws", "--kinds", "weights"),
            *("--out", str(out), "--cache", str(shared_cache)),
        ]
    )
    assert status == 0
    rows = [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]
    assert [r.get("error") for r in rows] == [None] * len(rows)
    by_label = {
        r["kind"] if r["kind"] == "clean" else f"{r['kind']}-{r['position']}": r for r in rows
    }
    assert sorted(by_label) == ["clean", "weights-early", "weights-late", "weights-middle"]

    clean = by_label.pop("clean")
    assert clean["passed"], clean["metrics"]
    assert clean["debug"]["first_divergent"] is None, clean["debug"]["summary"]
    assert clean["debug"]["summary"].startswith("no layer diverges on its own")
    # host taps every layer in one build
    assert clean["debug"]["strategy"] == "all"

    for label, row in by_label.items():
        assert row["changed_outputs"], f"{label}: the fault did not reach the outputs"
        assert not row["passed"], f"{label} passed: {row['metrics']}"
        assert row["failure_class"] == "numeric_mismatch"
        assert row["debug"]["first_divergent"] == row["node"], (label, row["debug"]["summary"])

    # the summary table the README shows: 0 false alarms, 3 of 3 detected and localized
    table = mutation.summary(out / "cases.jsonl")
    assert "| host |" in table
