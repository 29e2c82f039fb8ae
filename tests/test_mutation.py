"""The mutation campaign's CI slice (``benchmarks/mutation.py``; ``make mutation`` runs
it over every real model and board, with the table in docs/writing-tests/verdicts.md).

DS-CNN keyword spotting (the MLPerf Tiny network, 10 weighted layers) on the host
board: the clean int8 program passes and its per-layer table names no layer; one
output channel's sign flipped at an early, a middle and a late layer each fails the
check, and the per-layer table names that layer first. The early fault shows at the
outputs (7 LSB off); the middle and late ones move the 12 logits by at most
1 LSB, which the rounding allowance passes, and the check fails them by confirming
those outputs layer by layer (:mod:`et_hil.verdict.confirm`): the campaign
measured both.
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


@pytest.mark.timeout(480)  # took 159 s
def test_ds_cnn_on_host_clean_passes_and_each_fault_is_found_and_localized(
    tmp_path: Path, shared_cache: Path
) -> None:
    mutation = _campaign_module()
    out = tmp_path / "campaign"
    status = mutation.main(
        [
            *("--board", "host", "--model", "ds_cnn_kws", "--kinds", "sign"),
            *("--out", str(out), "--cache", str(shared_cache)),
        ]
    )
    assert status == 0
    rows = [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]
    assert [r.get("error") for r in rows] == [None] * len(rows)
    by_label = {
        r["kind"] if r["kind"] == "clean" else f"{r['kind']}-{r['position']}": r for r in rows
    }
    assert sorted(by_label) == ["clean", "sign-early", "sign-late", "sign-middle"]

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
    # where the outputs alone decided, and where the per-layer pass did
    assert by_label["sign-early"]["confirmed_by_layers"] is None
    assert by_label["sign-early"]["metrics"]["fake_quant"]["failed"]
    for label in ("sign-middle", "sign-late"):
        assert by_label[label]["metrics"]["fake_quant"]["max_lsb"] <= 1.0 + 1e-4
        assert by_label[label]["confirmed_by_layers"]["passed"] is False
    assert clean["confirmed_by_layers"] is None  # bit-exact on host: nothing to confirm

    # the summary table the docs show: 0 false alarms, 3 of 3 detected and localized
    table = mutation.summary(out / "cases.jsonl")
    assert "| host |" in table
