"""What real models cost: cold build, warm run, peak memory and .pte size per target,
and the cold build against upstream's own lowering of the same model.

    python benchmarks/real_model_cost.py [--model NAME ...] [--target TARGET ...] \\
        [--out et-hil-results/cost.jsonl]

Each build runs in a fresh process with an empty cache, so its wall time is a cold
build and its peak resident memory (``ru_maxrss``) is the build's own (the ~6 s of
importing torch is not counted in the build time, but is in the memory). For the
tosa-int and portable targets another fresh process lowers the model as upstream's
APIs do it, without the harness (export, PT2E prepare / calibrate / convert,
re-export, ``to_edge_transform_and_lower`` with the target's partitioner,
``to_executorch``); the ratio is the harness's build over upstream's.
Each has a process of its own and builds twice there: the first build in a process
pays seconds of imports and one-time setup that later ones do not (with both in one
process, whichever ran first was 1.5-2.4x the other on the MLPerf Tiny models), so
the table has both ratios: first build against first, and a later build (what a
pytest worker pays for every model after its first) against a later one.
The warm run is a check with the cache filled: the board's run (median of 3) on
host, tosa and qemu-m55-cmsis. Rows go to ``--out`` as they finish; the table is
printed at the end (and by ``--summary FILE``). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("portable", "tosa-int", "cortex-m55", "ethos-u55-128", "ethos-u85-256")
UPSTREAM_TARGETS = ("portable", "tosa-int")
RUN_BOARDS = {"portable": "host", "tosa-int": "tosa", "cortex-m55": "qemu-m55-cmsis"}

# One side's builds in a fresh process: the harness's, or upstream's lowering (twice).
_CHILD = r"""
import json, resource, sys, tempfile, time
sys.path.insert(0, sys.argv[1] + "/suites")
import torch
import real_models
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache

name, target, cache, which = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
entry = real_models.REAL_MODELS[name]
model, inputs = entry.make()
calibration = entry.calibration()
result = {"model": name, "target": target}


def harness_build():
    t0 = time.perf_counter()
    artifact = Builder(ArtifactCache(cache)).build(
        model, inputs, target=target, board=target, quantize="int8", calibration=calibration
    )
    result["build_s"] = round(time.perf_counter() - t0, 2)
    if target in ("tosa-int", "portable"):
        # Again, in this process, into an empty cache: a worker's later builds.
        with tempfile.TemporaryDirectory(prefix="et-hil-cost-") as again:
            t0 = time.perf_counter()
            Builder(ArtifactCache(again)).build(
                model, inputs, target=target, board=target, quantize="int8",
                calibration=calibration,
            )
            result["later_build_s"] = round(time.perf_counter() - t0, 2)
    result["pte_bytes"] = artifact.metadata["pte_bytes"]
    vela = (artifact.metadata.get("vela") or {}).get("total") or {}
    result["vela_cycles"] = vela.get("cycles_total")
    result["vela_sram_bytes"] = vela.get("sram_bytes")
    delegation = artifact.metadata.get("delegation") or {}
    result["partitions"] = delegation.get("delegated_subgraphs")
    result["cpu_ops"] = sum((delegation.get("cpu_fallback") or {}).values())


def upstream_build(key):
    t0 = time.perf_counter()
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    exported = torch.export.export(model, inputs, strict=False)
    if target == "tosa-int":
        from executorch.backends.arm.quantizer import (
            TOSAQuantizer, get_symmetric_quantization_config)
        from executorch.backends.arm.tosa.compile_spec import TosaCompileSpec
        from executorch.backends.arm.tosa.partitioner import TOSAPartitioner

        quantizer = TOSAQuantizer(TosaCompileSpec("TOSA-1.0+INT")).set_global(
            get_symmetric_quantization_config(is_per_channel=True))
        partitioner = [TOSAPartitioner(TosaCompileSpec("TOSA-1.0+INT"))]
    else:
        import executorch.kernels.quantized  # noqa: F401
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)

        quantizer = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True))
        partitioner = None
    prepared = prepare_pt2e(exported.module(check_guards=False), quantizer)
    for sample in calibration:
        prepared(*sample)
    converted = torch.export.export(convert_pt2e(prepared), inputs, strict=False)
    edge = to_edge_transform_and_lower(converted, partitioner=partitioner)
    buffer = edge.to_executorch().buffer
    result[key] = round(time.perf_counter() - t0, 2)
    result["upstream_pte_bytes"] = len(buffer)


if which == "upstream":
    upstream_build("upstream_s")  # first in the process: its imports included, as the harness's
    upstream_build("upstream_later_s")
else:
    harness_build()
result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print("RESULT " + json.dumps(result))
"""


def _child(name: str, target: str, cache: Path, which: str) -> dict[str, Any]:
    """One build (``which``: ``et_hil`` or ``upstream``) in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), name, target, str(cache), which],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"model": name, "target": target, "error": done.stderr[-600:]}
    return dict(json.loads(line.removeprefix("RESULT ")))


def cold_build(name: str, target: str, cache: Path) -> dict[str, Any]:
    """One model's cold build for one target, in a fresh process with the empty cache
    ``cache`` (which it fills: the warm runs use it); for the targets upstream's APIs
    lower alone, upstream's lowering too, in a fresh process of its own."""
    row = _child(name, target, cache, "et_hil")
    if "error" in row or target not in UPSTREAM_TARGETS:
        return row
    upstream = _child(name, target, cache, "upstream")
    if "error" in upstream:
        return {**row, "upstream_error": upstream["error"]}
    row["upstream_s"] = upstream["upstream_s"]
    row["upstream_later_s"] = upstream["upstream_later_s"]
    row["upstream_pte_bytes"] = upstream["upstream_pte_bytes"]
    row["upstream_peak_rss_mb"] = upstream["peak_rss_mb"]
    return row


def warm_runs(name: str, target: str, cache: Path) -> dict[str, Any]:
    """The median of three runs of the warm program on the target's board here."""
    sys.path.insert(0, str(ROOT / "suites"))
    import real_models  # type: ignore[import-not-found]

    from et_hil.boards import make_board
    from et_hil.boards.spec import load_boards
    from et_hil.programs.builder import Builder
    from et_hil.programs.cache import ArtifactCache
    from et_hil.verdict.check import check_model

    board_name = RUN_BOARDS[target]
    entry = real_models.REAL_MODELS[name]
    model, inputs = entry.make()
    builder = Builder(ArtifactCache(cache))
    with tempfile.TemporaryDirectory(prefix="et-hil-run-") as work:
        board = make_board(load_boards()[board_name], Path(work))
        board.open()
        try:
            runs, checks = [], []
            for i in range(4):  # the first finds the program and warms up: not counted
                t0 = time.perf_counter()
                result = check_model(
                    builder, board, model, inputs, run_dir=Path(work) / f"run{i}",
                    quantize="int8", calibration=entry.calibration(),
                )  # fmt: skip
                if i:
                    checks.append(time.perf_counter() - t0)
                    runs.append(result.run.execute_s)
        finally:
            board.close()
    return {
        "board": board_name,
        "warm_check_s": round(statistics.median(checks), 3),
        "execute_s": round(statistics.median(runs), 4),
        "fidelity": str(result.run.fidelity),
    }


def _vs(harness: float | None, upstream: float | None) -> str:
    """``7.4 s / 3.9 s (1.90x)``: the harness's build against upstream's lowering."""
    if harness is None:
        return "-"
    if not upstream:
        return f"{harness} s"
    return f"{harness} s / {upstream} s ({harness / upstream:.2f}x)"


def summary(rows: list[dict[str, Any]]) -> str:
    """The README's table."""
    lines = [
        "| model | target | cold build / upstream's (ratio) | a later build in the process / "
        "upstream's (ratio) | peak RSS | .pte | warm check (run) on | Vela cycles / SRAM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            last = r["error"].splitlines()[-1][:80] if r["error"] else "?"
            lines.append(f"| {r['model']} | {r['target']} | error: {last} ||||||")
            continue
        warm = (
            f"{r['warm_check_s']} s ({1000 * r['execute_s']:.1f} ms) on {r['board']}"
            if "warm_check_s" in r
            else "-"
        )
        vela = (
            f"{r['vela_cycles']:,} / {r['vela_sram_bytes'] // 1024} KiB"
            if r.get("vela_cycles")
            else "-"
        )
        lines.append(
            f"| {r['model']} | {r['target']} | {_vs(r['build_s'], r.get('upstream_s'))} | "
            f"{_vs(r.get('later_build_s'), r.get('upstream_later_s'))} | "
            f"{r['peak_rss_mb']:.0f} MB | {r['pte_bytes'] / 1024:.0f} KiB | {warm} | {vela} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--target", action="append", default=None)
    parser.add_argument("--out", type=Path, default=Path("et-hil-results/cost.jsonl"))
    parser.add_argument("--summary", type=Path, default=None)
    parser.add_argument("--no-runs", action="store_true", help="cold builds only")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary([json.loads(x) for x in args.summary.read_text().splitlines()]))
        return 0
    sys.path.insert(0, str(ROOT / "suites"))
    import real_models

    names = args.model or list(real_models.REAL_MODELS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        for target in args.target or TARGETS:
            with tempfile.TemporaryDirectory(prefix="et-hil-cost-") as cache:
                row = cold_build(name, target, cache=Path(cache))
                if "error" not in row and target in RUN_BOARDS and not args.no_runs:
                    row.update(warm_runs(name, target, Path(cache)))
            print(json.dumps(row), flush=True)
            rows.append(row)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
