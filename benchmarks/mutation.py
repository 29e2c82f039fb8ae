"""Mutation testing of the verdict: clean real models pass, single-layer faults fail.

    python benchmarks/mutation.py --board host --board tosa [--model NAME ...] \
        [--out et-hil-results/mutation] [--kinds weights,sign,requantize]

For every real model of ``suites/real_models.py`` (or those named) and every board
given: the clean int8 program is checked with the board's default limits (it must
pass: a failure is a false alarm), then one program per fault, each with one layer
broken (:mod:`harness.build.faults`): weights x1.25, one output channel's sign
flipped, the requantization one step off; each at an early, a middle and a late
layer. A fault must fail the check (detected). The table says, per board, the
false alarms, the detection rate, and every fault that went undetected with the
metrics it showed.

Every case's outputs and references are kept in ``OUT/<board>/<model>.npz`` (and
the verdicts in ``OUT/cases.jsonl``), so limits can be studied without running
the boards again. A benchmark, not a test: ``make mutation`` runs it over every
model; CI runs a slice (tests/test_mutation.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.boards import make_board
from harness.boards.base import Board, as_numpy
from harness.boards.spec import builtin_board_dir, load_board_file
from harness.build import faults, front
from harness.build.builder import Builder
from harness.build.cache import ArtifactCache, default_cache_dir
from harness.build.faults import Fault
from harness.errors import HarnessError
from harness.verdict.check import CheckResult, check_model, fake_quant_reference
from harness.verdict.replay import replay

SUITES = Path(__file__).resolve().parent.parent / "suites"
POSITIONS = ("early", "middle", "late")
KINDS = ("weights", "sign", "requantize")
JITTERS = (0.01, 0.05, 0.1)  # LSB: the rounding-noise replays kept for study


@dataclasses.dataclass(frozen=True)
class Case:
    """One program checked: the clean model, or one fault at one position."""

    model: str
    board: str
    kind: str  # "clean" or a fault kind
    position: str  # "" for clean
    fault: Fault | None


def pick(points: Sequence[str], position: str) -> str:
    """The point at ``position``: early (a tenth in), middle, late (the last but one:
    the last is usually the classifier, where any fault shows at once)."""
    if not points:
        raise ValueError("no point to put a fault at")
    index = {
        "early": len(points) // 10,
        "middle": len(points) // 2,
        "late": max(0, len(points) - 2),
    }[position]
    return points[index]


def fault_cases(model: str, board: str, program: Any, kinds: Sequence[str]) -> Iterator[Case]:
    """The clean case, then each fault kind at each position of ``program``."""
    yield Case(model, board, "clean", "", None)
    # Every kind breaks a weighted layer (conv, linear): its requantization is a
    # real rescale on every backend, where a pooling's output may share its input's
    # quantization and be folded away by a lowering (seen on tosa: a fault there
    # changed nothing).
    weighted = faults.weighted_points(program.graph_module)
    for kind in kinds:
        for position in POSITIONS:
            node = pick(weighted, position)
            fault = Fault(node, kind=kind, factor=1.25)
            yield Case(model, board, kind, position, fault)


def verdict_summary(result: CheckResult) -> dict[str, Any]:
    """The check's verdict and the metrics a person judges by, per comparison."""
    return {
        "passed": result.passed,
        "failure_class": result.failure_class if hasattr(result, "failure_class") else None,
        "comparisons": [
            {
                "reference": c.reference,
                "passed": c.passed,
                "problems": list(c.problems),
                "failed": [f"{k.output} {k.metric} {k.value} ({k.limit})" for k in c.failures()],
                "metrics": [m.as_dict() for m in c.metrics],
            }
            for c in result.comparisons
        ],
    }


def models(names: Sequence[str] | None) -> dict[str, Any]:
    """The real models (name -> factory giving the model and its inputs)."""
    sys.path.insert(0, str(SUITES))
    import real_models  # type: ignore[import-not-found]

    registry = real_models.REAL_MODELS
    if names:
        unknown = sorted(set(names) - set(registry))
        if unknown:
            raise SystemExit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(registry)}")
        return {n: registry[n] for n in names}
    return dict(registry)


def collect(
    builder: Builder, board: Board, name: str, factory: Any, out: Path, kinds: Sequence[str]
) -> list[dict[str, Any]]:
    """Check the clean model and each fault on ``board``; keep outputs and references."""
    model, inputs = factory.make()
    calibration = factory.calibration()
    work = out / board.spec.name / name
    work.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    clean_artifact = None
    cases: Iterator[Case] = iter([Case(name, board.spec.name, "clean", "", None)])
    while (case := next(cases, None)) is not None:
        label = case.kind if case.fault is None else f"{case.kind}-{case.position}"
        t0 = time.perf_counter()
        try:
            result = check_model(
                builder, board, model, inputs, run_dir=work / label, quantize="int8",
                calibration=calibration, fault=case.fault,
            )  # fmt: skip
        except HarnessError as exc:
            rows.append({**_case_dict(case), "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            print(f"  {label}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        arrays[f"{label}/board"] = np.stack([as_numpy(o) for o in result.run.outputs[:1]])
        row = {**_case_dict(case), "seconds": round(seconds, 2), **verdict_summary(result)}
        rows.append(row)
        print(f"  {label}: {'pass' if result.passed else 'FAIL'} ({seconds:.1f} s)", flush=True)
        if case.fault is None:
            clean_artifact = result.artifact
            reference = fake_quant_reference(result.artifact)
            arrays["fake_quant"] = as_numpy(replay(reference, inputs).outputs[0])
            arrays["eager_float"] = as_numpy(model(*inputs))
            for jitter in JITTERS:
                for seed in range(3):
                    noisy = replay(reference, inputs, jitter=jitter, seed=seed)
                    arrays[f"jitter{jitter:g}/{seed}"] = as_numpy(noisy.outputs[0])
            program = front.load_program(
                result.artifact.reference_path,  # type: ignore[arg-type]
                result.artifact.metadata.get("reference_op_namespaces") or (),
                name,
            )
            cases = fault_cases(name, board.spec.name, program, kinds)
            next(cases)  # the clean case: done
    if clean_artifact is not None:
        arrays["scales"] = np.array(
            [s if s is not None else np.nan for s in clean_artifact.output_scales]
        )
    np.savez_compressed(out / board.spec.name / f"{name}.npz", **arrays)
    return rows


def _case_dict(case: Case) -> dict[str, Any]:
    return {
        "model": case.model,
        "board": case.board,
        "kind": case.kind,
        "position": case.position,
        "fault": case.fault.describe() if case.fault else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--board", action="append", required=True)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--out", type=Path, default=Path("et-hil-results/mutation"))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    torch.set_grad_enabled(False)
    builder = Builder(ArtifactCache(args.cache or default_cache_dir()))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "cases.jsonl").open("a") as log:
        for board_name in args.board:
            board = make_board(
                load_board_file(builtin_board_dir() / f"{board_name}.toml"), args.out / "work"
            )
            board.open()
            try:
                for name, factory in models(args.model).items():
                    print(f"{board_name} {name}", flush=True)
                    for row in collect(builder, board, name, factory, args.out, kinds):
                        log.write(json.dumps(row) + "\n")
                        log.flush()
            finally:
                board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
