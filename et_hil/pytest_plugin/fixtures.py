"""The fixtures of the pytest plugin: ``board``, ``et_build``, ``et_check``, ``et_debug``.

Registered as a plugin by :mod:`et_hil.pytest_plugin.plugin` (its ``pytest_addhooks``).
torch and ExecuTorch are imported only when a fixture first needs them.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from et_hil.boards.base import Availability, RunsGivenInputs
from et_hil.boards.spec import BoardSpec
from et_hil.errors import ConfigError, FailureClass, HarnessError
from et_hil.pytest_plugin.options import CONFIG_KEY, RUN_ID_KEY, marker_tolerances
from et_hil.pytest_plugin.session import HarnessSession
from et_hil.report import repro
from et_hil.report.record import CheckRecord, ComparisonRecord, RecordDraft, run_timings
from et_hil.report.record_parts import ArtifactSummary, DebugRecord
from et_hil.tolerance import Tolerance
from et_hil.verdict.check import CheckHooks
from et_hil.verdict.delegation import DelegationSpec

if TYPE_CHECKING:
    import torch

    from et_hil.boards import Board, RunResult
    from et_hil.programs.artifact import Artifact
    from et_hil.programs.faults import Fault
    from et_hil.programs.program_file import ProgramFile
    from et_hil.programs.quantization import QuantConfig
    from et_hil.verdict.check import CheckResult
    from et_hil.verdict.program_check import ProgramResult

SESSION_KEY = pytest.StashKey[HarnessSession]()
DRAFT_KEY = pytest.StashKey[RecordDraft]()

DEBUG_ROWS = 12  # rows of the divergence table a failure message shows

# The first line of a failed check's message, by its failure class.
FAILURE_HEADLINES = {
    FailureClass.NUMERIC_MISMATCH: "outputs differ from the reference",
    FailureClass.DEGENERATE: "degenerate outputs: there is nothing to judge the board by",
    FailureClass.QUANTIZATION_QUALITY: (
        "the quantized model is further from float than this test allows "
        "(the board agrees with fake-quant: the model's quantization, not the board)"
    ),
}
# A numeric mismatch that only the per-layer confirmation found (et_hil.verdict.confirm).
LAYERS_HEADLINE = (
    "outputs within rounding of fake-quant, but a layer diverges on its own "
    "(the per-layer pass confirms such outputs; --et-confirm=off judges the outputs alone)"
)
# Why a failure of this class starts no per-layer pass (it would find nothing).
NO_DEBUG_PASS = {
    FailureClass.DEGENERATE: "a degenerate output has no layer to blame on the board",
    FailureClass.QUANTIZATION_QUALITY: (
        "the board agrees with fake-quant; only the quantization-quality limit failed"
    ),
}


def session_of(config: pytest.Config) -> HarnessSession:
    """This process's harness session (boards and builder), made on first use."""
    if SESSION_KEY not in config.stash:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        config.stash[SESSION_KEY] = HarnessSession(config.stash[CONFIG_KEY], worker)
    return config.stash[SESSION_KEY]


def draft_of(item: pytest.Item) -> RecordDraft:
    """What the fixtures have noted about ``item`` so far (its record, unfinished)."""
    if DRAFT_KEY not in item.stash:
        item.stash[DRAFT_KEY] = RecordDraft()
    return item.stash[DRAFT_KEY]


@pytest.fixture
def board(request: pytest.FixtureRequest) -> Board:
    """The board this test runs on (one test per ``--et-board``); skips where it cannot run."""
    hc = request.config.stash[CONFIG_KEY]
    name = getattr(request, "param", hc.selected[0])
    spec = hc.boards[name]
    draft = draft_of(request.node)
    draft.board = name
    needed = [c for m in request.node.iter_markers("et_needs") for c in m.args]
    missing = sorted(set(needed) - spec.capabilities)
    if missing:
        pytest.skip(f"board '{name}' lacks {', '.join(missing)} (needed by this test)")
    if hc.build_only:
        return BuildOnlyBoard(spec)
    the_board = session_of(request.config).board(name)
    availability = the_board.availability()
    if not availability.ok:
        draft.failure_class = str(FailureClass.BOARD_UNAVAILABLE)
        message = f"board '{name}' cannot run here: {availability.reason}"
        if availability.hint:
            message += f" ({availability.hint})"
        if hc.require_boards:
            pytest.fail(message + " [--et-require-boards]", pytrace=False)
        pytest.skip(message)
    return the_board


class BuildOnlyBoard(RunsGivenInputs):
    """What the ``board`` fixture gives under ``--et-build-only``: builds work, runs skip."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec

    def availability(self) -> Availability:
        """Nothing runs, so nothing is needed."""
        return Availability(True)

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def run(self, *args: Any, **kwargs: Any) -> RunResult:
        """Skip the test: ``--et-build-only`` runs nothing."""
        pytest.skip(f"--et-build-only: nothing ran on {self.spec.name}")


def _add_artifact(item: pytest.Item, artifact: Artifact) -> None:
    draft_of(item).artifact = ArtifactSummary.of(artifact)
    item.user_properties.extend(
        [
            ("et_artifact", artifact.key[:16]),
            ("et_cache_hit", artifact.cache_hit),
            ("et_pte_bytes", artifact.metadata.get("pte_bytes")),
        ]
    )


@pytest.fixture
def et_build(request: pytest.FixtureRequest, board: Board) -> Callable[..., Artifact]:
    """``et_build(model, example_inputs, *, quantize=None, calibration=None) -> Artifact``.

    Builds (or finds in the cache) the program of ``model`` for this test's board.
    """
    session = session_of(request.config)

    def build(
        model: torch.nn.Module,
        example_inputs: Any,
        *,
        quantize: bool | str | QuantConfig | None = None,
        calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    ) -> Artifact:
        from et_hil.programs.quiet import third_party_warnings_silenced

        with third_party_warnings_silenced():
            artifact = session.builder.build(
                model,
                example_inputs,
                target=board.spec.target,
                board=board.spec.name,
                quantize=quantize,
                calibration=calibration,
                vela=board.spec.sections.get("vela"),
            )
        _add_artifact(request.node, artifact)
        return artifact

    return build


def _merge(base: Tolerance, changes: Mapping[str, Any]) -> Tolerance:
    return dataclasses.replace(base, **{k: float(v) for k, v in changes.items()})


def _resolve_tolerances(
    item: pytest.Item,
    board: Board,
    quantized: bool,
    tolerance: Tolerance | Mapping[str, Any] | None,
    vs_float: Tolerance | Mapping[str, Any] | None,
) -> tuple[Tolerance, Tolerance]:
    """Board defaults, then ``et_tolerance`` markers (closest last), then arguments."""
    policy = board.spec.tolerance
    main = policy.quantized if quantized else policy.float
    secondary = policy.quantized_vs_float
    for marker in reversed(list(item.iter_markers("et_tolerance"))):
        marker_main, marker_vs_float = marker_tolerances(marker.kwargs, item.nodeid)
        main, secondary = _merge(main, marker_main), _merge(secondary, marker_vs_float)
    resolved = []
    for given, base, label in ((tolerance, main, "tolerance"), (vs_float, secondary, "vs_float")):
        if given is None or isinstance(given, Tolerance):
            resolved.append(given or base)
            continue
        try:
            Tolerance.from_mapping(given, f"{item.nodeid}: {label}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        resolved.append(_merge(base, given))
    return resolved[0], resolved[1]


def _add_lowering_properties(item: pytest.Item, artifact: Artifact) -> None:
    delegation = artifact.metadata.get("delegation") or {}
    properties: list[tuple[str, object]] = [
        ("et_delegated_subgraphs", delegation.get("delegated_subgraphs")),
        ("et_cpu_fallback", ",".join(delegation.get("cpu_fallback") or {}) or "none"),
    ]
    vela = (artifact.metadata.get("vela") or {}).get("total")
    if vela:
        properties += [
            ("et_vela_cycles", vela["cycles_total"]),
            ("et_vela_npu_cycles", vela["cycles_npu"]),
            ("et_vela_macs", vela["nn_macs"]),
            ("et_vela_inference_time_s", vela["inference_time_s"]),
            ("et_vela_sram_bytes", vela["sram_bytes"]),
            ("et_vela_off_chip_flash_bytes", vela["off_chip_flash_bytes"]),
        ]
    item.user_properties.extend(properties)


class _RecordingHooks(CheckHooks):
    """What ``et_check`` adds to :func:`et_hil.verdict.check.check_model`: the test's
    record and JUnit properties at each stage, its markers' limits, and the
    ``--et-build-only`` stop before the run."""

    def __init__(
        self,
        item: pytest.Item,
        board: Board,
        this: CheckRecord,
        *,
        tolerance: Tolerance | Mapping[str, Any] | None,
        vs_float: Tolerance | Mapping[str, Any] | None,
        build_only: bool,
        run_dir: Path,
    ) -> None:
        self.item, self.board, self.this = item, board, this
        self.tolerance, self.vs_float = tolerance, vs_float
        self.build_only, self.run_dir = build_only, run_dir
        self.main: Tolerance | None = None  # the main comparison's limits, once resolved
        self.secondary: Tolerance | None = None  # a quantized program's, against float

    def built(self, artifact: Artifact) -> None:
        """Record the program and its lowering; warn when it was not quantized as asked."""
        _add_artifact(self.item, artifact)
        _add_lowering_properties(self.item, artifact)
        self.this.artifact = ArtifactSummary.of(artifact)
        self.this.delegation = artifact.metadata.get("delegation")
        self.this.vela = artifact.metadata.get("vela")
        if skipped := artifact.metadata.get("quantization_skipped"):
            # stacklevel 4: this hook <- check_model <- et_check's check <- the test
            warnings.warn(f"model '{artifact.model_name}': {skipped}", stacklevel=4)
            self.this.quantization_note = skipped

    def limits(
        self, artifact: Artifact, tolerance: Tolerance | None, vs_float: Tolerance | None
    ) -> tuple[Tolerance | None, Tolerance | None]:
        """Board defaults, then ``et_tolerance`` markers, then the call's arguments."""
        self.main, self.secondary = _resolve_tolerances(
            self.item, self.board, artifact.quantized, self.tolerance, self.vs_float
        )
        return self.main, self.secondary

    def delegation_not_applicable(self, reason: str) -> None:
        """Say in the record why a full-delegation requirement was ignored."""
        self.this.full_delegation = reason

    def before_run(self, artifact: Artifact) -> None:
        """Under ``--et-build-only``, skip the test here: the program is built and checked."""
        if self.build_only:
            from et_hil.verdict.build_line import build_line

            self.this.ran = False
            pytest.skip(
                f"built {artifact.key[:12]} for {self.board.spec.name}: "
                f"{build_line(artifact, self.board.spec)}; nothing ran (--et-build-only)"
            )
        self.this.run_dir = str(self.run_dir)
        self.this.ran = True


def _record_result(
    item: pytest.Item, this: CheckRecord, result: CheckResult, started: float
) -> None:
    """The run's facts into the check's record and the test's JUnit properties."""
    this.timings = {
        **{k: round(v, 6) for k, v in result.timings.items()},
        **run_timings(result.run),
        "check_s": round(time.perf_counter() - started, 6),
    }
    this.etdump = str(result.run.etdump_path) if result.run.etdump_path else None
    this.board_facts = dict(result.run.facts)
    this.comparisons = [ComparisonRecord.of(c) for c in result.comparisons]
    this.passed = result.passed
    if result.degenerate:
        this.degenerate = list(result.degenerate)
    if result.golden:
        this.golden = result.golden
    item.user_properties.append(("et_execute_ms", round(result.run.execute_s * 1e3, 4)))
    item.user_properties.append(("et_timing_fidelity", str(result.run.fidelity)))
    for c in result.comparisons:
        for m in c.metrics:
            prefix = f"et_{c.reference}_out{m.index}"
            item.user_properties.append((f"{prefix}_snr_db", round(m.snr_db, 3)))
            item.user_properties.append((f"{prefix}_max_abs", m.max_abs))
            if m.max_lsb is not None:
                item.user_properties.append((f"{prefix}_max_lsb", round(m.max_lsb, 4)))
    item.user_properties.append(("et_verdict", "pass" if result.passed else "fail"))


@pytest.fixture
def et_check(
    request: pytest.FixtureRequest, board: Board, tmp_path: Path
) -> Callable[..., CheckResult | None]:
    """``et_check(model, inputs, *, quantize=None, ...) -> CheckResult``.

    Builds the program for this test's board, checks delegation and fit, runs
    it, compares it with eager PyTorch (and the fake-quant reference when
    quantized), records the metrics, and fails the test with a metric table when
    outputs differ beyond tolerance. Keyword arguments: ``quantize``,
    ``calibration``, ``reference`` (another eager model to compare with),
    ``tolerance`` and ``vs_float`` (dicts of limits or
    :class:`~et_hil.tolerance.Tolerance`), ``debug_buffer_size``,
    ``require_full_delegation`` (default: the board file or the
    ``et_full_delegation`` marker), ``delegation`` (what must be delegated and
    what may stay on the CPU, :class:`~et_hil.verdict.delegation.DelegationSpec`
    or its dict; default: the ``et_delegation`` marker), ``dynamic_shapes``
    (bounded dynamic shapes, as ``torch.export`` takes them: the program also runs
    at its smallest and largest sizes), ``fault`` (one layer of the program broken
    on purpose, :class:`~et_hil.programs.faults.Fault`: to see the verdict catch it).

    Quantized outputs that differ from fake-quant within the rounding allowance are
    confirmed layer by layer (``--et-confirm``, :mod:`et_hil.verdict.confirm`).

    The pipeline is :func:`et_hil.verdict.check.check_model`'s; the fixture adds
    the record, the JUnit properties, the skips, the per-layer pass and the failure.
    """
    hc = request.config.stash[CONFIG_KEY]
    session = session_of(request.config)
    item = request.node
    draft = draft_of(item)

    def check(
        model: torch.nn.Module,
        inputs: Any,
        *,
        quantize: bool | str | QuantConfig | None = None,
        calibration: Sequence[Sequence[torch.Tensor]] | None = None,
        reference: torch.nn.Module | None = None,
        tolerance: Tolerance | Mapping[str, Any] | None = None,
        vs_float: Tolerance | Mapping[str, Any] | None = None,
        debug_buffer_size: int = 0,
        require_full_delegation: bool | None = None,
        delegation: DelegationSpec | Mapping[str, Any] | None = None,
        dynamic_shapes: Any = None,
        fault: Fault | None = None,
    ) -> CheckResult | None:
        from et_hil.programs.quantization import QuantConfig
        from et_hil.programs.target_registry import get_target
        from et_hil.verdict import dynamic
        from et_hil.verdict.check import check_model

        spec = board.spec
        if dynamic_shapes is not None and (why := dynamic.unsupported(board)) is not None:
            pytest.skip(why)
        target = get_target(spec.target, board=spec.name, vela=spec.sections.get("vela"))
        if target.int_only and QuantConfig.coerce(quantize) is None:
            pytest.skip(
                f"board '{spec.name}' (target {spec.target}) runs quantized programs only; "
                "this test builds a float program"
            )
        this = CheckRecord()
        draft.checks.append(this)
        number = len(draft.checks)  # the n-th et_check call of this test
        if require_full_delegation is None:
            require_full_delegation = spec.require_full_delegation or any(
                True for _ in item.iter_markers("et_full_delegation")
            )
        spec_of_delegation = _delegation(item, delegation)
        run_dir = tmp_path / ("run" if number == 1 else f"run{number}")  # one per call
        run_id = request.config.stash[RUN_ID_KEY]
        repro_dir = repro.run_folder(
            hc.results_path.parent / "repro", hc.results_path, run_id
        ) / repro.case_folder_name(item.nodeid, number)
        hooks = _RecordingHooks(
            item, board, this, tolerance=tolerance, vs_float=vs_float,
            build_only=hc.build_only, run_dir=run_dir,
        )  # fmt: skip
        debug_dir = run_dir.with_name(run_dir.name + "-debug")
        tables: list[Any] = []  # the per-layer table made for this check, once made

        def per_layer_table() -> Any:
            """This check's per-layer pass: the verdict's confirmation of outputs within
            rounding, or the table of a failure (:mod:`et_hil.verdict.debug`)."""
            from et_hil.programs.quiet import third_party_warnings_silenced
            from et_hil.verdict.debug import debug_model

            with third_party_warnings_silenced():
                report = debug_model(
                    session.builder, board, model, inputs,
                    quantize=quantize, calibration=calibration, fault=fault,
                    tolerance=hooks.main, run_dir=debug_dir,
                    timeout_s=hc.run_timeout_s, strategy=hc.debug_strategy,
                )  # fmt: skip
            tables.append(report)
            return report

        started = time.perf_counter()
        result = check_model(
            session.builder,
            board,
            model,
            inputs,
            run_dir=run_dir,
            quantize=quantize,
            calibration=calibration,
            reference=reference,
            debug_buffer_size=debug_buffer_size,
            timeout_s=hc.run_timeout_s,
            require_full_delegation=require_full_delegation,
            keep=repro.keeper(repro_dir, test=item.nodeid, owner=(hc.results_path, run_id)),
            hooks=hooks,
            delegation=spec_of_delegation,
            dynamic_shapes=dynamic_shapes,
            golden=session.golden,
            fault=fault,
            confirm=per_layer_table if hc.confirm == "layers" else None,
        )
        _record_result(item, this, result, started)
        if dynamic_shapes is not None:
            from et_hil.programs.builder import validate_inputs

            tensors = validate_inputs(model, inputs)
            this.size, this.input_shapes = "example", [list(t.shape) for t in tensors]
        failure = result.failure_class
        divergence = ""
        if tables:  # the verdict made the per-layer pass already: keep it
            divergence = _keep_report(tables[0], this, result.repro_dir or debug_dir)
        elif hc.debug == "always" or (
            hc.debug == "on-failure" and failure == FailureClass.NUMERIC_MISMATCH
        ):
            divergence = _debug_pass(per_layer_table, this, result.repro_dir or debug_dir)
        elif hc.debug == "on-failure" and failure is not None:
            divergence = f"\nper-layer table: not made ({NO_DEBUG_PASS[failure]})"
        if failure is not None:
            this.failure_class = draft.failure_class = str(failure)
            where = repro_line(result.repro_dir, result.repro_error)
            this.repro = str(result.repro_dir) if result.repro_dir else None
            headline = FAILURE_HEADLINES[failure]
            if _failed_by_layers(result):
                headline = LAYERS_HEADLINE
            pytest.fail(
                f"model '{result.artifact.model_name}' on board '{spec.name}': "
                f"{headline}\n{result.table()}{divergence}{where}",
                pytrace=False,
            )
        if dynamic_shapes is not None:
            _check_other_sizes(
                item, board, result, reference or model, tensors, hooks, run_dir, repro_dir
            )
        return result

    return check


def _failed_by_layers(result: CheckResult) -> bool:
    """True when the per-layer confirmation alone failed the check."""
    from et_hil.verdict.confirm import REFERENCE

    failed = {c.reference for c in result.comparisons if not c.passed}
    return failed == {REFERENCE}


def _check_other_sizes(
    item: pytest.Item,
    board: Board,
    example: CheckResult,
    reference: Any,
    inputs: Sequence[Any],
    hooks: _RecordingHooks,
    run_dir: Path,
    repro_dir: Path,
) -> None:
    """A dynamic-shape program at its smallest and largest sizes, each recorded as a
    check of its own; fails the test at the first size whose outputs differ."""
    from et_hil.verdict import dynamic

    hc = item.config.stash[CONFIG_KEY]
    draft = draft_of(item)
    started = time.perf_counter()
    sized_results = dynamic.check_sizes(
        board, example.artifact, reference, inputs,
        run_dir=run_dir, tolerance=hooks.main, vs_float=hooks.secondary,
        timeout_s=hc.run_timeout_s,
        keep=lambda label: repro.keeper(
            repro_dir.with_name(f"{repro_dir.name}-{label}"), test=item.nodeid,
            owner=(hc.results_path, item.config.stash[RUN_ID_KEY]),
        ),
    )  # fmt: skip
    for sized in sized_results:
        this = CheckRecord(size=sized.size.label, input_shapes=sized.size.shapes)
        draft.checks.append(this)
        this.artifact = ArtifactSummary.of(example.artifact)
        this.delegation = example.artifact.metadata.get("delegation")
        this.ran, this.run_dir = True, str(sized.result.run.run_dir)
        _record_result(item, this, sized.result, started)
        if (failure := sized.result.failure_class) is not None:
            this.failure_class = draft.failure_class = str(failure)
            result = sized.result
            this.repro = str(result.repro_dir) if result.repro_dir else None
            pytest.fail(
                f"model '{result.artifact.model_name}' on board '{board.spec.name}' at its "
                f"{dynamic.describe(sized.size)}: {FAILURE_HEADLINES[failure]}\n"
                f"{result.table()}{repro_line(result.repro_dir, result.repro_error)}",
                pytrace=False,
            )


def _debug_pass(make_table: Callable[[], Any], this: CheckRecord, folder: Path) -> str:
    """Run the per-layer divergence pass; record it, keep its files in ``folder`` (the
    repro folder, else the run's debug folder), and return the failure message's part."""
    try:
        report = make_table()
    except Exception as exc:  # the check's own verdict stands, whatever the pass hit
        this.debug = DebugRecord.failed(f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, HarnessError):  # a defect of the pass itself: say so loudly
            warnings.warn(f"et-hil debug pass failed: {type(exc).__name__}: {exc}", stacklevel=2)
        return f"\nper-layer table: not made ({type(exc).__name__}: {str(exc)[:300]})"
    return _keep_report(report, this, folder)


def _keep_report(report: Any, this: CheckRecord, folder: Path) -> str:
    """Record a per-layer table, write its files to ``folder``, and return the failure
    message's part."""
    files = report.write(folder)
    this.debug = DebugRecord.of(report, [str(f) for f in files])
    # The summary line, then (a layer diverges) the rows around it; the whole table,
    # of however many layers, is in the file.
    rows = f"\n{report.table(rows=DEBUG_ROWS)}" if report.first_divergent else ""
    return f"\n{report.summary()}{rows}\nper-layer table: {files[1]}"


@pytest.fixture
def et_debug(request: pytest.FixtureRequest, board: Board, tmp_path: Path) -> Callable[..., Any]:
    """``et_debug(model, inputs, *, quantize=None, calibration=None, tolerance=None,
    fault=None) -> DivergenceReport``: the per-layer divergence table of the model
    on this test's board, without a failure (see :mod:`et_hil.verdict.debug`). The table
    is also written to the test's record and to ``divergence.{json,csv}``."""
    hc = request.config.stash[CONFIG_KEY]
    session = session_of(request.config)
    draft = draft_of(request.node)

    def debug(model: Any, inputs: Any, **kwargs: Any) -> Any:
        from et_hil.programs.quiet import third_party_warnings_silenced
        from et_hil.verdict.debug import debug_model

        tolerance = kwargs.pop("tolerance", None)
        kwargs.setdefault("strategy", hc.debug_strategy)
        if isinstance(tolerance, Mapping):
            tolerance = Tolerance.from_mapping(tolerance, f"{request.node.nodeid}: et_debug")
        run_dir = tmp_path / f"debug{len(draft.debug_reports) + 1}"
        with third_party_warnings_silenced():
            report = debug_model(
                session.builder, board, model, inputs, run_dir=run_dir,
                tolerance=tolerance, timeout_s=hc.run_timeout_s, **kwargs,
            )  # fmt: skip
        files = report.write(run_dir)
        draft.debug_reports.append(DebugRecord.of(report, [str(f) for f in files]))
        return report

    return debug


def marker_delegation(marker: pytest.Mark, where: str) -> DelegationSpec:
    """The :class:`DelegationSpec` of an ``et_delegation`` marker.

    Raises:
        ValueError: bad keywords (names the test).
    """
    if marker.args:
        raise ValueError(f"{where}: et_delegation takes keywords (partitions, delegated, cpu)")
    return DelegationSpec.from_mapping(marker.kwargs, where)


def _delegation(
    item: pytest.Item, given: DelegationSpec | Mapping[str, Any] | None
) -> DelegationSpec | None:
    """The call's ``delegation=``, else the closest ``et_delegation`` marker's."""
    if isinstance(given, DelegationSpec):
        return given
    if given is not None:
        try:
            return DelegationSpec.from_mapping(given, f"{item.nodeid}: delegation")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    marker = item.get_closest_marker("et_delegation")
    return marker_delegation(marker, item.nodeid) if marker is not None else None


@pytest.fixture
def et_run(
    request: pytest.FixtureRequest, board: Board, tmp_path: Path
) -> Callable[..., ProgramResult]:
    """``et_run(program, *, inputs=None, expected=None, tolerance=None, case=0)
    -> ProgramResult``: run a program file (``.pte``, or BundleIO ``.bpte``) on this
    test's board, without its model.

    The outputs are judged against ``expected``, else the bundle's expected
    outputs (a quantized program in LSB, within the board's quantized tolerance;
    a float one within its float tolerance); a plain ``.pte`` with neither is run
    for its outputs, timings and ETDump, and its record says nothing was compared.
    The test fails with the metric table when the outputs differ.
    """
    hc = request.config.stash[CONFIG_KEY]
    item = request.node
    draft = draft_of(item)

    def run(
        program: str | Path | ProgramFile,
        *,
        inputs: Sequence[Any] | None = None,
        expected: Sequence[Any] | None = None,
        tolerance: Tolerance | Mapping[str, Any] | None = None,
        case: int = 0,
    ) -> ProgramResult:
        # here, not at the top: the plugin's start-up does not need it (numpy typing, 8 ms)
        from et_hil.programs.program_file import ProgramFile, read_program
        from et_hil.verdict.program_check import run_program

        file = program if isinstance(program, ProgramFile) else read_program(Path(program))
        this = CheckRecord()
        draft.checks.append(this)
        if hc.build_only:
            this.ran = False
            pytest.skip(f"--et-build-only: program {file.path} is built already; nothing ran")
        limits = tolerance
        if isinstance(tolerance, Mapping):
            try:
                limits = Tolerance.from_mapping(tolerance, f"{item.nodeid}: tolerance")
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        run_dir = tmp_path / f"program{len(draft.checks)}"
        started = time.perf_counter()
        result = run_program(
            board, file, run_dir=run_dir, inputs=inputs, expected=expected,
            tolerance=limits if isinstance(limits, Tolerance) else None,
            timeout_s=hc.run_timeout_s, case=case,
        )  # fmt: skip
        _add_artifact(item, result.artifact)
        this.artifact = ArtifactSummary.of(result.artifact)
        this.delegation = result.artifact.metadata.get("delegation")
        this.ran = True
        this.run_dir = str(run_dir)
        this.timings = {
            **{k: round(v, 6) for k, v in result.timings.items()},
            **run_timings(result.run),
            "check_s": round(time.perf_counter() - started, 6),
        }
        this.etdump = str(result.run.etdump_path) if result.run.etdump_path else None
        this.board_facts = {**result.run.facts, "inputs": result.inputs_from}
        this.comparisons = [ComparisonRecord.of(c) for c in result.comparisons]
        this.passed = result.passed
        if not result.passed:
            this.failure_class = draft.failure_class = str(FailureClass.NUMERIC_MISMATCH)
            pytest.fail(
                f"program {file.path} on board '{board.spec.name}': outputs differ from the "
                f"expected ones\n{result.table()}",
                pytrace=False,
            )
        return result

    return run


def repro_line(folder: Path | None, error: str | None) -> str:
    """The failure message's pointer to the repro folder (kept, unlike pytest's tmp_path)."""
    if folder is not None:
        return f"\nrepro: {folder}\nrerun: et-hil repro {folder}"
    return f"\nno repro folder: {error}" if error else ""
