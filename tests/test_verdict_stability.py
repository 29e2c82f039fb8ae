"""A verdict must not depend on the cache.

The suites (operators, models, edge cases: int64 and bool inputs, embeddings,
several and nested outputs, channels-last tensors) run on the host and tosa
boards twice, as a user runs them, each time in fresh processes: first with an
empty artifact cache (every program is built in the process that runs it), then
with the cache the first run filled (every saved artifact is loaded by a process
that never built it: the reference loader must register the op libraries itself).
Both runs must give the same verdict and the same metrics for every test.

The same runs also hold the genuine upstream runner to the host's verdicts
(sharing the cold build of every portable program):

* ``qemu-m55``: the genuine runner on QEMU through the qemu board kind;
* ``corstone300-genuine``: the corstone boards' own FVP code path (command line,
  local executor, run folder, log and ETDump reading), answered by
  ``tests/genuine_fvp``, which runs the genuine runner on QEMU.

Any difference between host and these two is a bug: same programs, same kernels
(compiled for the M55), same tolerances. (``qemu-m55-cmsis`` runs other programs,
cortex_m operators: the nightly matrix runs every suite on it.)

The warm run is made as a CI matrix makes it: two ``--et-shard i/2`` runs balanced
by the cold run's durations, joined by ``et-hil merge``. The merged shards must
hold exactly the unsharded run's tests, each once, with the same verdicts.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from et_hil.report.merge import merge_results

pytestmark = [pytest.mark.slow, pytest.mark.qemu]

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"
GENUINE_FVP = ROOT / "tests" / "genuine_fvp"
GENUINE = ("qemu-m55", "corstone300-genuine")


def genuine_args() -> list[str]:
    """The genuine runner's boards, both given the runner the user's cache holds (built
    there if it is not): the runs' own caches start empty, and a qemu board finding no
    runner in its cache would build one (3.5 of a 4.5-minute cold run here), which
    is not what this test is about."""
    from et_hil.boards.qemu.kind import QemuSettings
    from et_hil.firmware.service import ensure_runner, request_for
    from et_hil.programs.cache import default_cache_dir

    elf = ensure_runner(request_for(QemuSettings().firmware), cache_dir=default_cache_dir()).elf
    return [
        *(f"--et-board={name}" for name in GENUINE),
        f"--et-board-file={GENUINE_FVP / 'corstone300-portable.toml'}",
        *(f"--et-runner-elf={name}={elf}" for name in GENUINE),
    ]


# Every CI run: the edge-case suite (every kind of program input and output: int64
# and bool inputs, embeddings, several and nested outputs, channels-last; quantized and
# float), which is where loading from the cache can go wrong. `make stability` sets
# ET_HIL_STABILITY_SUITES=all: the model and operator suites too (31 operators, int8
# and a16w8: 7 minutes more here).
SUITE_FILES = ("test_edge_cases.py",)


def suite_args() -> list[str]:
    """The suites this run checks (see :data:`SUITE_FILES`); never the real networks,
    whose cold builds take minutes each (the mutation benchmark covers them)."""
    if os.environ.get("ET_HIL_STABILITY_SUITES") == "all":
        return [str(SUITES), "-m", "not real_model"]
    return [str(SUITES / name) for name in SUITE_FILES]


def expected_runs() -> tuple[int, int]:
    """How many tests at least (seen here): passed on the genuine runner, and passed on
    host and tosa together. The edge cases: all 10 on the runner, 15 of 20 on host and
    tosa (tosa runs quantized programs only). Every suite: 34 of 87, 80 of 112 (the rest
    skip with reasons: float programs on tosa, a16w8 and ops the portable quantizer leaves
    in float on host)."""
    return (34, 80) if os.environ.get("ET_HIL_STABILITY_SUITES") == "all" else (10, 15)


def run_suites(
    cache: Path, results: Path, cwd: Path, extra: list[str], workers: int = 2
) -> list[dict[str, Any]]:
    """``pytest suites --et-board=host --et-board=tosa ... -n WORKERS`` in a fresh process
    (``-n 0``: no xdist, the session's own process runs the tests); its records."""
    env = dict(os.environ)
    env["PATH"] = f"{GENUINE_FVP}{os.pathsep}{env['PATH']}"
    env["ET_HIL_DOUBLE_PYTHON"] = sys.executable
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *suite_args(),
            "--et-board=host",
            "--et-board=tosa",
            *extra,
            "-n",
            str(workers),
            f"--et-build-cache={cache}",
            f"--et-results={results}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=cwd,
        env=env,
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


def by_test(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[str, str | None]]]:
    """Per test (board left out of its id): each board's outcome and failure class."""
    table: dict[str, dict[str, tuple[str, str | None]]] = collections.defaultdict(dict)
    names = sorted(("host", "tosa", *GENUINE), key=len, reverse=True)  # longest first
    pattern = re.compile(r"\[(" + "|".join(map(re.escape, names)) + r")-?")
    for r in records:
        test = pattern.sub("[", r["test"]).replace("[]", "")
        table[test][r["board"]] = (r["outcome"], r["failure_class"])
    return table


def assert_genuine_verdicts(records: list[dict[str, Any]]) -> None:
    """qemu-m55 and the FVP path give host's verdict on every test."""
    table = by_test(records)
    differ = {
        test: boards
        for test, boards in table.items()
        if "host" in boards
        and not boards["host"] == boards["qemu-m55"] == boards["corstone300-genuine"]
    }
    assert differ == {}
    # every portable program that runs on host ran on the genuine runner
    ran = [t for t, boards in table.items() if boards.get("qemu-m55", ("",))[0] == "passed"]
    assert len(ran) >= expected_runs()[0]

    genuine = [r for r in records if r["board"] == "corstone300-genuine" and r.get("ran")]
    assert genuine, "the FVP path ran nothing"
    facts = genuine[0]["board_facts"]
    assert facts["where"] == "local"
    assert facts["firmware"]["elf_sha256"] == facts["runner_elf_sha256"]
    assert facts["firmware"]["operator_count"] > 200  # the wide kernel list
    assert "operators" not in facts["firmware"]  # a wide list stays in the build record


@pytest.mark.timeout(3000)  # two whole-suite runs, each bounded by its subprocess timeout
def test_cold_and_warm_cache_give_the_same_verdicts(tmp_path: Path) -> None:
    from tests.test_qemu_board import _need_tools

    _need_tools()
    extra = genuine_args()
    cache = tmp_path / "cache"
    cold = run_suites(cache, tmp_path / "cold.jsonl", tmp_path, extra)
    shards = [tmp_path / f"warm-{i}.jsonl" for i in (1, 2)]
    for i, results in enumerate(shards, 1):
        shard = ["--et-shard", f"{i}/2", f"--et-durations-from={tmp_path / 'cold.jsonl'}"]
        # One process per shard: a warm shard only loads and runs (its tests take seconds),
        # so two more workers importing torch would cost more than they save. The warm
        # shards run host and tosa only: the cache is theirs to load from (a saved
        # program, the op libraries its reference needs); the genuine boards are handed
        # the same program file either way, so their check is the cold run's.
        run_suites(cache, results, tmp_path, shard, workers=0)
    merged = merge_results(shards, expect_shards=2)
    warm = [json.loads(line.text) for line in merged.lines]  # as the cold run's: JSON
    assert_genuine_verdicts(cold)
    every_cold = cold
    cold = [r for r in cold if r["board"] in ("host", "tosa")]
    # every test of the unsharded run ran in exactly one shard
    assert merged.missing == []
    assert (merged.duplicates, merged.replaced) == (0, 0)
    assert sum(merged.inputs.values()) == len(cold)
    assert sorted((r["test"], r["board"]) for r in warm) == sorted(
        (r["test"], r["board"]) for r in cold
    )
    assert all(n > 0 for n in merged.inputs.values())

    ran = [r for r in cold if r["outcome"] == "passed" and r["board"] in ("host", "tosa")]
    assert len(ran) >= expected_runs()[1]
    assert {r["board"] for r in ran} == {"host", "tosa"}  # (the genuine boards share them)
    assert any("edge" in r["test"] and "int8" in r["test"] for r in ran)
    # the cold run built every program in the process that ran it
    # (a portable program is shared by host and the genuine boards: one of them
    # built it, in its own process, and the others found it)
    built: dict[str, bool] = collections.defaultdict(bool)
    for r in every_cold:
        for c in r.get("checks", []):
            built[c["artifact"]["key"]] |= not c["artifact"]["cache_hit"]
    assert all(built.values())
    assert not any(
        c["artifact"]["cache_hit"] for r in ran if r["board"] == "tosa" for c in r["checks"]
    )
    # the warm run built nothing: every artifact came from the cache, loaded fresh
    assert all(
        c["artifact"]["cache_hit"] for r in warm if r["outcome"] == "passed" for c in r["checks"]
    )
    assert verdicts(warm) == verdicts(cold)
