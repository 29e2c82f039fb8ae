"""Build -> run -> compare, as one library call (the plugin's ``et_check`` calls it too)."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from et_hil.boards.base import Board, RunResult, as_numpy
from et_hil.boards.spec import BoardSpec
from et_hil.programs.artifact import Artifact
from et_hil.programs.builder import Builder, run_eager, validate_inputs
from et_hil.programs.quantization import QuantConfig
from et_hil.programs.quiet import third_party_warnings_silenced
from et_hil.programs.target_registry import get_target
from et_hil.tolerance import Tolerance, Tolerances
from et_hil.verdict.compare import (
    Comparison,
    compare_with_references,
    failure_class_of,
    format_table,
)
from et_hil.verdict.confirm import (
    LayerTable,
    layers_comparison,
    needs_confirmation,
    not_confirmed,
)
from et_hil.verdict.degenerate import degenerate_outputs
from et_hil.verdict.golden import Golden, GoldenReferences, golden_kind

if TYPE_CHECKING:
    import torch

    from et_hil.errors import FailureClass
    from et_hil.programs.faults import Fault
    from et_hil.programs.taps import TapPlan
    from et_hil.verdict.delegation import DelegationSpec


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a failed check leaves behind, for a repro folder: the program, the board,
    the inputs, the references and limits, and what the board gave (``outputs``
    ``None`` when the run itself failed). The caller keeps it
    (:func:`et_hil.report.repro.keeper` writes a repro folder); this stage only
    hands it over."""

    artifact: Artifact
    spec: BoardSpec
    inputs: Sequence[Any]
    references: Mapping[str, Sequence[Any]]
    tolerances: Tolerances
    outputs: Sequence[Any] | None
    run_dir: Path
    failure_class: str
    message: str
    timeout_s: float | None
    debug_buffer_size: int
    options: Any = None
    runner_elf: Path | None = None


# Keeps a failed check's evidence; returns where (a repro folder), or None.
KeepEvidence = Callable[[Evidence], "Path | None"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Everything one check produced.

    Attributes:
        artifact: the built program.
        run: the board's result.
        comparisons: the board against each reference, and the model's quantization
            quality (see :func:`et_hil.verdict.compare.compare_with_references`).
        timings: seconds spent per stage in this process.
        repro_dir: the repro folder left by a failed check (see :mod:`et_hil.report.repro`).
        repro_error: why no repro folder could be left, if so.
        degenerate: why a reference or the board's output carries nothing to judge
            by, one sentence per output (:mod:`et_hil.verdict.degenerate`).
        golden: what computed the golden reference, or why it was not computed
            (empty: none applies to this board and program).
    """

    artifact: Artifact
    run: RunResult
    comparisons: tuple[Comparison, ...]
    timings: Mapping[str, float]
    repro_dir: Path | None = None
    repro_error: str | None = None
    degenerate: tuple[str, ...] = ()
    golden: str = ""

    @property
    def failure_class(self) -> FailureClass | None:
        """Why the check failed, or ``None`` when it passed: ``degenerate`` first (no
        comparison means anything then), then ``numeric_mismatch`` (the board),
        then ``quantization_quality`` (the model, against limits the test set)."""
        return failure_class_of(self.comparisons, self.degenerate)

    @property
    def passed(self) -> bool:
        """True when nothing is degenerate and every comparison passed."""
        return self.failure_class is None

    def comparison(self, reference: str) -> Comparison:
        """The comparison with ``reference`` (``fake_quant``, ``eager_float``,
        ``quantization``, ``golden``).

        Raises:
            KeyError: this check made no such comparison (naming the ones it made).
        """
        for c in self.comparisons:
            if c.reference == reference:
                return c
        made = ", ".join(c.reference for c in self.comparisons)
        raise KeyError(f"no comparison with {reference!r} in this check (made: {made})")

    def table(self, *, only_failed: bool = False) -> str:
        """The metric table (reference, output, metric, value, limit), after the
        degenerate outputs, if any."""
        text = format_table(self.comparisons, only_failed=only_failed)
        if self.degenerate:
            text = "degenerate:\n" + "\n".join(f"  {d}" for d in self.degenerate) + "\n" + text
        return text


def fake_quant_reference(artifact: Artifact) -> Any:
    """The artifact's fake-quant reference (the PT2E-converted model), loaded once."""
    from et_hil.programs import front

    if artifact.reference_path is None:
        raise ValueError(f"artifact {artifact.key[:12]} is not quantized: no fake-quant reference")
    return front.reference_module(
        artifact.reference_path,
        tuple(artifact.metadata.get("reference_op_namespaces") or ()),
        artifact.model_name,
    )


def fake_quant_outputs(artifact: Artifact, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Outputs of the artifact's fake-quant reference."""
    return run_eager(fake_quant_reference(artifact), inputs)


def _to_numpy(tensors: Sequence[Any]) -> list[np.ndarray[Any, Any]]:
    return [as_numpy(t) for t in tensors]


def preflight(
    artifact: Artifact,
    board: Board,
    *,
    require_full_delegation: bool,
    delegation: DelegationSpec | None = None,
) -> None:
    """Checks made before any run: full delegation (when required), what the test
    says must be delegated (``delegation``), and memory fit.

    Raises:
        DelegationError: ops other than the boundary quantize/dequantize stayed on
            the CPU, or the partitions break ``delegation``.
        FitError: the program needs more memory than the board file gives.
    """
    from et_hil.errors import DelegationError, FitError
    from et_hil.verdict.fit import fit_problems

    fallback = (artifact.metadata.get("delegation") or {}).get("cpu_fallback") or {}
    if require_full_delegation and fallback:
        ops = ", ".join(f"{op} x{n}" for op, n in fallback.items())
        raise DelegationError(
            f"board '{board.spec.name}' requires full delegation, but model "
            f"'{artifact.model_name}' leaves these ops to the CPU: {ops}"
        )
    if delegation is not None and (
        problems := delegation.problems(artifact.metadata.get("delegation") or {})
    ):
        raise DelegationError(
            f"model '{artifact.model_name}' on board '{board.spec.name}' is not delegated "
            f"as the test requires: {'; '.join(problems)}"
        )
    # Checked against the memory the board's runner mode really puts the program in.
    if problems := fit_problems(artifact, board.spec):
        raise FitError(
            f"model '{artifact.model_name}' does not fit board '{board.spec.name}' "
            f"(checked before running): {'; '.join(problems)}"
        )


def build_for_board(
    builder: Builder,
    board: Board,
    model: torch.nn.Module,
    inputs: Any,
    *,
    quantize: bool | str | QuantConfig | None = None,
    calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    taps: TapPlan | None = None,
    dynamic_shapes: Any = None,
    fault: Fault | None = None,
) -> Artifact:
    """Build (or find in the cache) ``model``'s program for ``board``'s target
    (with ``taps``: every layer surfaced as an output, see :mod:`et_hil.verdict.debug`;
    with ``dynamic_shapes``: bounded dynamic shapes, see :mod:`et_hil.programs.dynamic_shapes`;
    with ``fault``: one layer broken on purpose, see :mod:`et_hil.programs.faults`).

    Raises:
        BuildError: the model, inputs or target are at fault; the message names them.
    """
    with third_party_warnings_silenced():
        return builder.build(
            model,
            inputs,
            target=board.spec.target,
            board=board.spec.name,
            quantize=quantize,
            calibration=calibration,
            vela=board.spec.sections.get("vela"),
            taps=taps,
            dynamic_shapes=dynamic_shapes,
            fault=fault,
        )


class CheckHooks:
    """What a caller adds between the stages of :func:`check_model`; here each does nothing.

    The pytest plugin's ``et_check`` subclasses it to record every stage, to apply
    the test's ``et_tolerance`` markers, and to stop under ``--et-build-only``: the
    fixture and the library call then run one and the same pipeline.
    """

    def built(self, artifact: Artifact) -> None:
        """The program is built (or found in the cache); nothing is checked yet."""

    def limits(
        self, artifact: Artifact, tolerance: Tolerance | None, vs_float: Tolerance | None
    ) -> tuple[Tolerance | None, Tolerance | None]:
        """The limits to judge ``artifact``'s outputs with (None: the board file's).

        Called once the build says whether the program is quantized, since the
        board's defaults differ between quantized and float programs.
        """
        return tolerance, vs_float

    def delegation_not_applicable(self, reason: str) -> None:
        """Full delegation was required on a target that delegates nothing; ignored."""

    def before_run(self, artifact: Artifact) -> None:
        """The preflight checks passed; raise here to stop before the run."""


def check_model(
    builder: Builder,
    board: Board,
    model: torch.nn.Module,
    inputs: Any,
    *,
    run_dir: Path,
    quantize: bool | str | QuantConfig | None = None,
    calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    reference: torch.nn.Module | None = None,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
    debug_buffer_size: int = 0,
    timeout_s: float | None = None,
    require_full_delegation: bool | None = None,
    keep: KeepEvidence | None = None,
    hooks: CheckHooks | None = None,
    delegation: DelegationSpec | None = None,
    dynamic_shapes: Any = None,
    fault: Fault | None = None,
    golden: GoldenReferences | None = None,
    confirm: Callable[[], LayerTable] | None = None,
) -> CheckResult:
    """Build ``model`` for ``board``, run it on ``inputs``, compare with references.

    The whole pipeline as one call: :func:`build_for_board`, :func:`preflight`,
    :func:`run_and_compare`. The plugin's ``et_check`` calls it too, with
    ``hooks`` that record each stage.

    Args:
        builder: builds (or finds) the artifact.
        board: where to run.
        model: the eager model.
        inputs: a tensor or tuple of tensors; also the export example inputs.
        run_dir: folder for this run's files.
        quantize: see :meth:`et_hil.programs.builder.Builder.build`.
        calibration: calibration input tuples.
        reference: the eager model to compare with (default: ``model``).
        tolerance: limits of the main comparison (float programs: against eager
            float; quantized: against fake-quant); default from the board file.
        vs_float: limits of a quantized program against eager float.
        debug_buffer_size: bytes for intermediate outputs in the ETDump (0: off).
        timeout_s: time limit of the run (default: the board file's).
        require_full_delegation: fail when ops stay on the CPU (default: the board
            file's); not applicable, and ignored, on targets without a delegate.
        keep: keeps a failed check's :class:`Evidence` (a repro folder:
            :func:`et_hil.report.repro.keeper`); none: nothing is kept.
        hooks: called between the stages (see :class:`CheckHooks`).
        delegation: what must be delegated and what may stay on the CPU
            (:class:`~et_hil.verdict.delegation.DelegationSpec`); not applicable,
            and ignored, on targets without a delegate.
        dynamic_shapes: bounded dynamic shapes, as ``torch.export`` takes them; the
            program runs here at the size of ``inputs``
            (:func:`et_hil.verdict.dynamic.check_sizes` runs the others).
        fault: one layer of the program broken on purpose, its references kept
            right (:mod:`et_hil.programs.faults`): how the verdict itself is tested.
        golden: computes the board's golden reference, where one applies
            (:mod:`et_hil.verdict.golden`); none is made without it.
        confirm: makes the per-layer pass of this check (:func:`run_and_compare`
            calls it when the outputs differ from fake-quant within rounding only).

    Returns:
        The result; its ``timings`` start with ``artifact_s``, the build's seconds.

    Raises:
        BuildError, RunError, ConfigError: no result could be produced.
        DelegationError, FitError: the preflight checks failed.
    """
    hooks = hooks or CheckHooks()
    t0 = time.perf_counter()
    artifact = build_for_board(
        builder,
        board,
        model,
        inputs,
        quantize=quantize,
        calibration=calibration,
        dynamic_shapes=dynamic_shapes,
        fault=fault,
    )
    artifact_s = time.perf_counter() - t0
    hooks.built(artifact)
    tolerance, vs_float = hooks.limits(artifact, tolerance, vs_float)
    spec = board.spec
    if require_full_delegation is None:
        require_full_delegation = spec.require_full_delegation
    target = get_target(spec.target, board=spec.name, vela=spec.sections.get("vela"))
    if (require_full_delegation or delegation is not None) and not target.delegates:
        # Nothing can be delegated (e.g. the host board of a matrix whose test was
        # written for NPU boards): the requirement does not apply, the check still runs.
        hooks.delegation_not_applicable(f"not applicable: target {spec.target} has no delegate")
        require_full_delegation, delegation = False, None
    preflight(
        artifact, board, require_full_delegation=require_full_delegation, delegation=delegation
    )
    hooks.before_run(artifact)
    golden_of = None
    if golden is not None and golden_kind(board, artifact) is not None:
        # A fault stands for a board that computes a layer wrongly: the golden
        # reference is what a correct implementation computes for the intended
        # program, so it comes from the program without the fault.
        intended = artifact if fault is None else build_for_board(
            builder, board, model, inputs, quantize=quantize, calibration=calibration,
            dynamic_shapes=dynamic_shapes,
        )  # fmt: skip

        def golden_of(tensors: Sequence[torch.Tensor]) -> Golden | None:
            return golden.outputs(
                board, intended, model, tensors, run_dir=run_dir,
                quantize=quantize, calibration=calibration,
            )  # fmt: skip

    result = run_and_compare(
        board,
        artifact,
        reference or model,
        inputs,
        run_dir=run_dir,
        tolerance=tolerance,
        vs_float=vs_float,
        debug_buffer_size=debug_buffer_size,
        timeout_s=timeout_s,
        keep=keep,
        golden=golden_of,
        confirm=confirm,
    )
    return dataclasses.replace(result, timings={"artifact_s": artifact_s, **result.timings})


def resolve_tolerances(
    board: Board,
    artifact: Artifact,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
) -> Tolerances:
    """The limits a check applies: the given ones, else the board file's."""
    policy = board.spec.tolerance
    main = tolerance or (policy.quantized if artifact.quantized else policy.float)
    return Tolerances(
        main=main,
        vs_float=vs_float or policy.quantized_vs_float,
        fallback=policy.float,
        golden=policy.golden,
    )


def _check_fidelity(board: Board, run: RunResult) -> None:
    """A run's timing fidelity must be one its kind declares: timings are compared
    (and reported) by fidelity, so an undeclared one would mix with others.

    Raises:
        HarnessError: naming the board, its kind and what the kind declares.
    """
    from et_hil.boards import registry
    from et_hil.errors import HarnessError

    declared = registry.get(board.spec.kind).fidelities
    if str(run.fidelity) not in declared:
        raise HarnessError(
            f"board '{board.spec.name}' of kind '{board.spec.kind}' returned fidelity "
            f"'{run.fidelity}', which its kind does not declare ({', '.join(declared)}); "
            "add it to the kind's BoardKind(fidelities=...)"
        )


def _confirmed(confirm: Callable[[], LayerTable], reason: str) -> Comparison:
    """The per-layer pass's verdict on outputs within rounding (see
    :mod:`et_hil.verdict.confirm`); a pass that cannot be made leaves the outputs'
    own verdict standing, and says why."""
    from et_hil.errors import HarnessError

    try:
        report = confirm()
    except Exception as exc:  # the outputs' own verdict stands, whatever the pass hit
        if not isinstance(exc, HarnessError):  # a defect of the pass itself: say so loudly
            warnings.warn(
                f"et-hil per-layer pass failed: {type(exc).__name__}: {exc}", stacklevel=3
            )
        why = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"
        return not_confirmed(reason, why)
    return layers_comparison(report, reason)


def run_and_compare(
    board: Board,
    artifact: Artifact,
    reference: torch.nn.Module,
    inputs: Any,
    *,
    run_dir: Path,
    tolerance: Tolerance | None = None,
    vs_float: Tolerance | None = None,
    debug_buffer_size: int = 0,
    timeout_s: float | None = None,
    keep: KeepEvidence | None = None,
    golden: Callable[[Sequence[torch.Tensor]], Golden | None] | None = None,
    confirm: Callable[[], LayerTable] | None = None,
) -> CheckResult:
    """Run a built artifact on ``board`` and compare it with the eager ``reference``
    (and with the artifact's fake-quant reference when it is quantized, and with
    ``golden(inputs)``, the board's golden reference, when given).

    Outputs that differ from fake-quant but pass by the rounding allowance alone are
    confirmed layer by layer with ``confirm()``, the per-layer pass, when given
    (:mod:`et_hil.verdict.confirm`): a layer that diverges on its own fails the check.

    When the run fails or the outputs differ, ``keep`` (when given) keeps the
    :class:`Evidence`: the result's ``repro_dir``, or the raised error's ``repro_dir``
    attribute, names where.

    Raises:
        RunError, ConfigError: no result could be produced.
    """
    from et_hil.errors import HarnessError, RunError

    timings: dict[str, float] = {}
    tensors = validate_inputs(reference, inputs)
    note = None
    if (fed := board.inputs_it_runs(artifact, _to_numpy(tensors))) is not None:
        import torch

        # The firmware cannot take these inputs (UART runner without BundleIO):
        # compare on what it really ran, and say so.
        tensors = tuple(torch.from_numpy(a) for a in fed)
        note = (
            f"board '{board.spec.name}' ran all-ones inputs (firmware without BundleIO); "
            "outputs compared with eager on all-ones, not on the test's inputs"
        )
        warnings.warn(note, stacklevel=2)

    t0 = time.perf_counter()
    with third_party_warnings_silenced():
        references = {"eager_float": _to_numpy(run_eager(reference.eval(), tensors))}
        if artifact.quantized:
            fake_quant = _to_numpy(fake_quant_outputs(artifact, tensors))
            references = {"fake_quant": fake_quant, **references}
    golden_note = ""
    if golden is not None:
        try:
            made = golden(tensors)
        except HarnessError as exc:  # the board's own verdict stands without it
            golden_note = f"not computed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            warnings.warn(f"golden reference {golden_note}", stacklevel=2)
        else:
            if made is not None:
                references["golden"] = made.outputs
                golden_note = made.source
                timings["golden_s"] = made.seconds
    timings["reference_s"] = time.perf_counter() - t0
    tolerances = resolve_tolerances(board, artifact, tolerance, vs_float)
    arrays = _to_numpy(tensors)

    def keep_repro(outputs: Sequence[Any] | None, failure_class: str, message: str) -> Path | None:
        if keep is None:
            return None
        return keep(
            Evidence(
                artifact=artifact,
                spec=board.spec,
                inputs=arrays,
                references=references,
                tolerances=tolerances,
                outputs=outputs,
                run_dir=run_dir,
                failure_class=failure_class,
                message=message,
                timeout_s=timeout_s,
                debug_buffer_size=debug_buffer_size,
                options=getattr(board, "options", None),
                runner_elf=getattr(board, "runner_elf", None),
            )
        )

    t0 = time.perf_counter()
    try:
        run = board.run(
            artifact,
            arrays,
            run_dir=run_dir,
            timeout_s=timeout_s,
            debug_buffer_size=debug_buffer_size,
            expected=next(iter(references.values())),
        )
    except RunError as exc:
        try:
            if kept := keep_repro(None, str(exc.failure_class), exc.message):
                exc.kept_in(run_dir, kept)
        except OSError as copy_exc:  # the failure matters more than its repro copy
            exc.repro_error = f"could not keep a repro folder: {copy_exc}"
        raise
    timings["run_s"] = time.perf_counter() - t0
    _check_fidelity(board, run)
    if note:
        run = dataclasses.replace(run, facts={**run.facts, "inputs": note})

    t0 = time.perf_counter()
    comparisons = compare_with_references(
        run.outputs, references, artifact, tolerances, golden_source=golden_note
    )
    degenerate = degenerate_outputs(
        _to_numpy(run.outputs),
        references["eager_float"],
        references.get("fake_quant"),
        artifact.output_scales if artifact.quantized else None,
    )
    timings["compare_s"] = time.perf_counter() - t0 + timings.pop("reference_s")
    confirmable = confirm is not None and not degenerate and failure_class_of(comparisons) is None
    if confirmable and (reason := needs_confirmation(comparisons, tolerances)) is not None:
        assert confirm is not None
        t0 = time.perf_counter()
        comparisons = (*comparisons, _confirmed(confirm, reason))
        timings["confirm_s"] = time.perf_counter() - t0
    result = CheckResult(
        artifact, run, comparisons, timings, degenerate=tuple(degenerate), golden=golden_note
    )
    if result.failure_class is not None:
        try:
            kept = keep_repro(
                run.outputs, str(result.failure_class), result.table(only_failed=True)
            )
        except OSError as copy_exc:
            kept, result = None, dataclasses.replace(result, repro_error=str(copy_exc))
        result = dataclasses.replace(result, repro_dir=kept)
    return result
