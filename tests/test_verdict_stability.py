"""A verdict must not depend on the cache.

The suites (operators, models, edge cases: int64 and bool inputs, embeddings,
several and nested outputs, channels-last tensors) run on the host and tosa
boards twice, as a user runs them, each time in fresh processes: first with an
empty artifact cache (every program is built in the process that runs it), then
with the cache the first run filled (every saved artifact is loaded by a process
that never built it: the reference loader must register the op libraries itself).
Both runs must give the same verdict and the same metrics for every test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SUITES = Path(__file__).resolve().parent.parent / "suites"


def run_suites(cache: Path, results: Path, cwd: Path) -> list[dict[str, Any]]:
    """``pytest suites --board=host --board=tosa -n 2`` in a fresh process; its records."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(SUITES),
            "--board=host",
            "--board=tosa",
            "-n",
            "2",
            f"--build-cache={cache}",
            f"--results={results}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in results.read_text().splitlines()]


def verdicts(records: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Per test: outcome, failure class, and every comparison's references and metrics."""
    return {
        r["test"]: (
            r["outcome"],
            r["failure_class"],
            [
                (c["reference"], c["passed"], [sorted(m.items()) for m in c["metrics"]])
                for c in r.get("comparisons", [])
            ],
        )
        for r in records
    }


@pytest.mark.timeout(3000)  # two whole-suite runs, each bounded by its subprocess timeout
def test_cold_and_warm_cache_give_the_same_verdicts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = run_suites(cache, tmp_path / "cold.jsonl", tmp_path)
    warm = run_suites(cache, tmp_path / "warm.jsonl", tmp_path)

    ran = [r for r in cold if r["outcome"] == "passed"]
    # both boards ran the suites (seen: 80 of 112 ran; the rest skip with reasons: float
    # programs on tosa, a16w8 and ops the portable quantizer leaves in float on host)
    assert len(ran) >= 80
    assert {r["board"] for r in ran} == {"host", "tosa"}
    assert any("edge" in r["test"] and "int8" in r["test"] for r in ran)
    # the cold run built every program in the process that ran it
    assert not any(c["artifact"]["cache_hit"] for r in ran for c in r["checks"])
    # the warm run built nothing: every artifact came from the cache, loaded fresh
    assert all(
        c["artifact"]["cache_hit"] for r in warm if r["outcome"] == "passed" for c in r["checks"]
    )
    assert verdicts(warm) == verdicts(cold)
