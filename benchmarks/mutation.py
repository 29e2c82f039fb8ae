"""Mutation testing of the verdict: clean real models pass, single-layer faults fail.

    python benchmarks/mutation.py --board host --board tosa [--model NAME ...] \\
        [--out et-hil-results/mutation] [--kinds weights,sign,requantize]
    python benchmarks/mutation.py --summary et-hil-results/mutation

For every real model of ``suites/real_models.py`` (or those named) and every board
given, with the board's default limits and, where one applies, its golden
reference (:mod:`et_hil.verdict.golden`), as ``et_check`` judges:

* the clean int8 program must pass (a failure is a **false alarm**);
* outputs that differ from fake-quant within the rounding allowance are confirmed
  layer by layer, as ``et_check`` does by default (:mod:`et_hil.verdict.confirm`;
  ``--outputs-only`` judges the outputs alone);
* one program per fault, each with one weighted layer broken
  (:mod:`et_hil.programs.faults`): weights x1.25, one output channel's sign flipped,
  the layer's requantization one step off; each at an early, a middle and a late
  weighted layer. A fault must fail the check (**detected**).

A fault that leaves the board's outputs exactly as the clean program's is
**masked**: nothing at the outputs shows it (a later layer clipped it away, or the
backend's lowering did not carry it), so no output verdict can see it; such faults
are listed with the reason and left out of the detection rate.

Each case's verdict and metrics go to ``OUT/cases.jsonl`` as they finish (a killed
campaign resumes where it stopped; ``--fresh`` starts over), and its outputs and
references to ``OUT/<board>/<model>.npz``, to study limits without rerunning boards.
``--summary`` prints the table the README shows. A benchmark, not a test: ``make
mutation`` runs it over every model; CI runs a slice (tests/test_mutation.py).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SUITES = Path(__file__).resolve().parent.parent / "suites"
POSITIONS = ("early", "middle", "late")
KINDS = ("weights", "sign", "requantize")


@dataclasses.dataclass(frozen=True)
class Case:
    """One program checked: the clean model, or one fault at one position."""

    model: str
    board: str
    kind: str  # "clean" or a fault kind
    position: str  # "" for clean
    node: str = ""  # the faulted layer's tap point

    @property
    def label(self) -> str:
        """``clean`` or ``<kind>-<position>``."""
        return self.kind if self.kind == "clean" else f"{self.kind}-{self.position}"


def pick(points: Sequence[str], position: str) -> str:
    """The point at ``position``: early (a tenth in), middle, late (the last but one:
    the last is usually the classifier, where any fault shows at once)."""
    if not points:
        raise ValueError("no weighted layer to put a fault at")
    index = {
        "early": len(points) // 10,
        "middle": len(points) // 2,
        "late": max(0, len(points) - 2),
    }[position]
    return points[index]


def fault_cases(model: str, board: str, program: Any, kinds: Sequence[str]) -> Iterator[Case]:
    """Each fault kind at each position of ``program`` (the front: an exported program).

    Every kind breaks a weighted layer (conv, linear): its requantization is a real
    rescale on every backend, where a pooling's output may share its input's
    quantization and be folded away by a lowering (seen on tosa: a fault there
    changed nothing).
    """
    from et_hil.programs import faults

    weighted = faults.weighted_points(program.graph_module)
    for kind in kinds:
        for position in POSITIONS:
            yield Case(model, board, kind, position, pick(weighted, position))


def fault_of(case: Case) -> Any:
    """The :class:`~et_hil.programs.faults.Fault` a case puts into its program."""
    from et_hil.programs.faults import Fault

    return Fault(case.node, kind=case.kind, factor=1.25, channel=0, steps=1)


def _metrics(result: Any) -> dict[str, Any]:
    """The metrics a person judges by, per comparison (first output)."""
    out: dict[str, Any] = {}
    for c in result.comparisons:
        if not c.metrics:
            continue
        m = c.metrics[0]
        out[c.reference] = {
            "max_lsb": m.max_lsb,
            "snr_db": m.snr_db,
            "cosine": m.cosine,
            "top1": m.top1,
            "top5": m.top5,
            "bias_lsb": m.bias_lsb,
            "within_1lsb": m.within_1lsb,
            "failed": [f"{k.metric} {k.value:.4g} ({k.limit})" if isinstance(k.value, float)
                       else f"{k.metric} {k.value} ({k.limit})" for k in c.failures()],
        }  # fmt: skip
    return out


def models(names: Sequence[str] | None) -> dict[str, Any]:
    """The real models (name -> ``RealModel`` entry of ``suites/real_models.py``)."""
    sys.path.insert(0, str(SUITES))
    import real_models  # type: ignore[import-not-found]

    registry = real_models.REAL_MODELS
    if names:
        unknown = sorted(set(names) - set(registry))
        if unknown:
            raise SystemExit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(registry)}")
        return {n: registry[n] for n in names}
    return dict(registry)


class Campaign:
    """Runs the cases of one board, keeping what every case gave."""

    def __init__(
        self,
        out: Path,
        board: Any,
        builder: Any,
        golden: Any,
        *,
        debug: bool = True,
        confirm: bool = True,
    ) -> None:
        self.out = out
        self.board = board
        self.builder = builder
        self.golden = golden
        self.debug = debug  # run the per-layer pass on the clean case and detected faults
        self.confirm = confirm  # outputs within rounding are confirmed layer by layer
        self.done = _finished_cases(out / "cases.jsonl")

    def _debug_report(
        self, model: Any, inputs: Any, calibration: Any, case: Case, work: Path
    ) -> Any:
        """The per-layer pass of a case (:mod:`et_hil.verdict.debug`)."""
        from et_hil.verdict.debug import debug_model

        return debug_model(
            self.builder, self.board, model, inputs, run_dir=work / f"{case.label}-debug",
            quantize="int8", calibration=calibration,
            fault=None if case.kind == "clean" else fault_of(case),
        )  # fmt: skip

    def _debug(self, report: Any, case: Case, seconds: float) -> dict[str, Any]:
        """What the per-layer pass of a case says: does it name the faulted layer
        first (or, clean, no layer), what did it cost, and how large were the layers'
        own errors (what the local limits are calibrated on)."""
        first = report.first_divergent
        own = [r.local for r in report.rows if r.local is not None and r.node != case.node]
        return {
            "seconds": round(seconds, 2),
            "builds": report.timings.get("builds"),
            "strategy": report.strategy,
            "layers": len(report.rows),
            "first_divergent": first.node if first else None,
            "first_divergent_name": first.name if first else None,
            "localized": (first is None) if case.kind == "clean" else (
                first is not None and first.node == case.node
            ),
            "summary": report.summary(),
            # the other layers' own errors: what a correct layer does on this board
            "others_max_lsb": max((m.max_lsb or 0.0 for m in own), default=0.0),
            "others_max_off": max((m.off_share or 0.0 for m in own), default=0.0),
            "others_max_bias": max((abs(m.bias_lsb or 0.0) for m in own), default=0.0),
        }  # fmt: skip

    def model(self, name: str, entry: Any, kinds: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Check the clean model, then each fault; yields one row per case."""
        from et_hil.boards.base import as_numpy
        from et_hil.errors import HarnessError
        from et_hil.programs import front
        from et_hil.verdict import confirm as confirm_module
        from et_hil.verdict.check import check_model

        model, inputs = entry.make()
        calibration = entry.calibration()
        board_name = self.board.spec.name
        work = self.out / board_name / name
        work.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        clean_outputs: Any = None
        cases: list[Case] = [Case(name, board_name, "clean", "")]
        index = 0
        while index < len(cases):
            case = cases[index]
            index += 1
            earlier = (board_name, name, case.label) in self.done
            if earlier and case.kind != "clean":
                continue  # a resumed campaign: this fault is in cases.jsonl already
            t0 = time.perf_counter()
            confirmations: list[tuple[Any, float]] = []

            def confirm(case: Case = case, confirmations: list[Any] = confirmations) -> Any:
                started = time.perf_counter()
                report = self._debug_report(model, inputs, calibration, case, work)
                confirmations.append((report, time.perf_counter() - started))
                return report

            try:
                result = check_model(
                    self.builder, self.board, model, inputs, run_dir=work / case.label,
                    quantize="int8", calibration=calibration, golden=self.golden,
                    fault=None if case.kind == "clean" else fault_of(case),
                    confirm=confirm if self.confirm else None,
                )  # fmt: skip
            except HarnessError as exc:
                yield {**dataclasses.asdict(case), "error": f"{type(exc).__name__}: {exc}"[:400]}
                continue
            outputs = [as_numpy(o) for o in result.run.outputs]
            row = {
                **dataclasses.asdict(case),
                "seconds": round(time.perf_counter() - t0, 2),
                "passed": result.passed,
                "failure_class": str(result.failure_class) if result.failure_class else None,
                "golden": result.golden,
                "metrics": _metrics(result),
            }
            arrays[f"{case.label}/board"] = outputs[0]
            layers = [c for c in result.comparisons if c.reference == confirm_module.REFERENCE]
            row["confirmed_by_layers"] = (
                {"passed": layers[0].passed, "source": layers[0].source} if layers else None
            )
            if confirmations:  # the verdict's own per-layer pass
                report, seconds = confirmations[0]
                row["debug"] = self._debug(report, case, seconds)
            elif self.debug and (case.kind == "clean" or not result.passed):
                started = time.perf_counter()
                try:
                    report = self._debug_report(model, inputs, calibration, case, work)
                except HarnessError as exc:
                    row["debug"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
                else:
                    row["debug"] = self._debug(report, case, time.perf_counter() - started)
            if case.kind == "clean":
                clean_outputs = outputs
                artifact = result.artifact
                arrays["scales"] = np.array(
                    [s if s is not None else np.nan for s in artifact.output_scales]
                )
                program = front.load_program(
                    artifact.reference_path,  # quantized: its front is the reference
                    artifact.metadata.get("reference_op_namespaces") or (),
                    name,
                )
                cases += [c for c in fault_cases(name, board_name, program, kinds)]
            elif clean_outputs is not None:
                row["changed_outputs"] = any(
                    not np.array_equal(a, b) for a, b in zip(outputs, clean_outputs, strict=True)
                )
            if not earlier:
                yield row
        np.savez_compressed(self.out / board_name / f"{name}.npz", **arrays)


def _finished_cases(path: Path) -> set[tuple[str, str, str]]:
    """(board, model, label) of the cases already in ``path``."""
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text().splitlines():
        row = json.loads(line)
        label = row["kind"] if row["kind"] == "clean" else f"{row['kind']}-{row['position']}"
        done.add((row["board"], row["model"], label))
    return done


def run(args: argparse.Namespace) -> int:
    """Run the campaign for every board and model asked for."""
    import torch

    from et_hil.boards import make_board
    from et_hil.boards.spec import load_boards
    from et_hil.programs.builder import Builder
    from et_hil.programs.cache import ArtifactCache, default_cache_dir
    from et_hil.programs.quiet import third_party_warnings_silenced
    from et_hil.verdict.golden import GoldenReferences

    torch.set_grad_enabled(False)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "cases.jsonl"
    if args.fresh:
        log_path.unlink(missing_ok=True)
    builder = Builder(ArtifactCache(args.cache or default_cache_dir()))
    golden = GoldenReferences(builder, args.out / "golden")
    chosen = models(args.model)
    try:
        for board_name in args.board:
            board = make_board(load_boards()[board_name], args.out / "logs")
            board.open()
            campaign = Campaign(
                args.out, board, builder, golden,
                debug=not args.no_debug, confirm=not args.outputs_only,
            )  # fmt: skip
            try:
                for name, entry in chosen.items():
                    print(f"{board_name} {name}", flush=True)
                    with third_party_warnings_silenced():
                        for row in campaign.model(name, entry, args.kinds.split(",")):
                            _report(row)
                            with log_path.open("a") as log:
                                log.write(json.dumps(row) + "\n")
            finally:
                board.close()
    finally:
        golden.close()
    print(summary(log_path))
    return 0


def _report(row: dict[str, Any]) -> None:
    label = row["kind"] if row["kind"] == "clean" else f"{row['kind']}-{row['position']}"
    if "error" in row:
        print(f"  {label}: {row['error'].splitlines()[0][:160]}", flush=True)
        return
    verdict = "pass" if row["passed"] else f"FAIL ({row['failure_class']})"
    print(f"  {label}: {verdict} ({row['seconds']} s)", flush=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return str(value)


def summary(path: Path) -> str:
    """The campaign's table (markdown): per board, false alarms, detection, misses."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_board: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        by_board[row["board"]].append(row)
    lines = [
        "| board | models | false alarms | faults | masked | detected | detection | "
        "by golden reference | by per-layer pass | localized | clean tables |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    misses: list[str] = []
    masked: list[str] = []
    errors: list[str] = []
    for board, cases in by_board.items():
        clean = [c for c in cases if c["kind"] == "clean" and "error" not in c]
        faulty = [c for c in cases if c["kind"] != "clean" and "error" not in c]
        errors += [f"{board} {c['model']} {c['kind']} {c['position']}: {c['error'][:200]}"
                   for c in cases if "error" in c]  # fmt: skip
        alarms = [c for c in clean if not c["passed"]]
        hidden = [c for c in faulty if not c.get("changed_outputs", True)]
        judged = [c for c in faulty if c.get("changed_outputs", True)]
        detected = [c for c in judged if not c["passed"]]
        by_golden = [
            c for c in detected if (c["metrics"].get("golden") or {}).get("failed")
            and not (c["metrics"].get("fake_quant") or {}).get("failed")
        ]  # fmt: skip
        # outputs within rounding of fake-quant, failed by a layer diverging on its own
        by_layers = [
            c for c in detected if (c.get("confirmed_by_layers") or {}).get("passed") is False
        ]
        rate = f"{100 * len(detected) / len(judged):.1f}%" if judged else "-"
        tabled = [c for c in detected if "first_divergent" in (c.get("debug") or {})]
        placed = [c for c in tabled if c["debug"]["localized"]]
        clean_tables = [c for c in clean if "first_divergent" in (c.get("debug") or {})]
        quiet = [c for c in clean_tables if c["debug"]["localized"]]
        located = f"{len(placed)}/{len(tabled)}" if tabled else "-"
        lines.append(
            f"| {board} | {len(clean)} | {len(alarms)} | {len(faulty)} | {len(hidden)} | "
            f"{len(detected)} | {rate} | {len(by_golden)} | {len(by_layers)} | {located} | "
            f"{len(quiet)}/{len(clean_tables)} |"
        )
        for c in tabled:
            if not c["debug"]["localized"]:
                misses.append(
                    f"- not localized: {board} {c['model']} {c['kind']} at {c['node']}: "
                    f"{c['debug']['summary']}"
                )
        for c in clean_tables:
            if not c["debug"]["localized"]:
                misses.append(f"- clean table names a layer: {board} {c['model']}: "
                              f"{c['debug']['summary']}")  # fmt: skip
        for c in alarms:
            misses.append(f"- false alarm: {board} {c['model']}: {c['failure_class']} "
                          f"{_failed(c)}")  # fmt: skip
        for c in judged:
            if c["passed"]:
                fq = c["metrics"].get("fake_quant") or {}
                q = c["metrics"].get("quantization") or {}
                misses.append(
                    f"- missed: {board} {c['model']} {c['kind']} at the {c['position']} layer "
                    f"({c['node']}): {_fmt(fq.get('max_lsb'))} LSB, SNR "
                    f"{_fmt(fq.get('snr_db'))} dB vs fake-quant, against a quantization SNR "
                    f"of {_fmt(q.get('snr_db'))} dB"
                )
        for c in hidden:
            masked.append(f"- masked: {board} {c['model']} {c['kind']} at the {c['position']} "
                          f"layer ({c['node']}): the outputs did not change")  # fmt: skip
    return "\n".join([*lines, "", *misses, *masked, *(f"- error: {e}" for e in errors)])


def _failed(row: dict[str, Any]) -> str:
    failed = [f for m in row["metrics"].values() for f in m.get("failed", [])]
    return "; ".join(failed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--board", action="append", default=[])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--out", type=Path, default=Path("et-hil-results/mutation"))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="forget earlier cases in OUT")
    parser.add_argument(
        "--no-debug", action="store_true", help="skip the per-layer pass (verdicts only)"
    )
    parser.add_argument(
        "--outputs-only",
        action="store_true",
        help="judge the outputs alone: no per-layer confirmation of outputs within "
        "rounding (as et_check does with --et-confirm=off)",
    )
    parser.add_argument("--summary", type=Path, default=None, help="print OUT's table and exit")
    args = parser.parse_args(argv)
    if args.summary is not None:
        print(summary(args.summary / "cases.jsonl"))
        return 0
    if not args.board:
        parser.error("give at least one --board (or --summary OUT)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
