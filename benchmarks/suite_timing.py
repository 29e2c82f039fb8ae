"""Benchmark: wall time of a suite on a board, cold cache then warm, from the records.

    python benchmarks/suite_timing.py suites/test_smoke.py --et-board host [-n 2] [pytest args]

Runs pytest twice in subprocesses with a fresh cache folder, then prints per-test
medians from the JSON records: whole test (setup + call + teardown), artifact
(build or cache lookup), execute (on the board), and the harness's own overhead
(test time minus artifact time minus execute time). A benchmark, not a test:
numbers go to closing notes and the README, not to assertions.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], cache: Path, results: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--et-build-cache={cache}",
            f"--et-results={results}",
            *args,
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def summary(label: str, wall: float, results: Path) -> None:
    records = [json.loads(line) for line in results.read_text().splitlines()]
    ran = [r for r in records if r.get("timings")]

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    tests = [r["duration_s"] for r in ran]
    artifact = [r["timings"]["artifact_s"] for r in ran]
    execute = [r["timings"]["execute_s"] for r in ran]
    overhead = [
        r["duration_s"] - r["timings"]["artifact_s"] - r["timings"]["execute_s"] for r in ran
    ]
    hits = sum(1 for r in ran if r["artifact"]["cache_hit"])
    print(
        f"{label}: {len(records)} tests ({len(ran)} ran, {hits} from cache) in {wall:.1f} s "
        f"end to end; per test median {med(tests) * 1e3:.1f} ms (mean "
        f"{statistics.mean(tests) * 1e3 if tests else float('nan'):.1f}), artifact "
        f"{med(artifact) * 1e3:.1f} ms, execute {med(execute) * 1e3:.2f} ms, "
        f"harness overhead {med(overhead) * 1e3:.1f} ms"
    )


def main() -> None:
    args = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="et-hil-bench-") as tmp:
        cache, results = Path(tmp) / "cache", Path(tmp) / "results.jsonl"
        summary("cold", run(args, cache, results), results)
        summary("warm", run(args, cache, results), results)


if __name__ == "__main__":
    main()
