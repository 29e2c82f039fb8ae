"""The pytest plugin: options, the board matrix, fixtures and result records.

Registered through the ``pytest11`` entry point, so it loads in every pytest run
of an environment that has et-hil installed: importing it must stay cheap.
torch and ExecuTorch are imported only when a fixture first needs them.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.boards import registry, signals
from harness.boards.base import Availability, BoardOptions, RunsGivenInputs
from harness.boards.spec import (
    CAPABILITIES,
    BoardSpec,
    load_board_files,
    load_boards,
    resolve_board_names,
)
from harness.build.cache import default_cache_dir
from harness.build.quiet import quiet_torch_trace_log
from harness.errors import ConfigError, FailureClass, HarnessError, RunError
from harness.pytest.session import HarnessConfig, HarnessSession
from harness.report import repro
from harness.report.results import ResultsWriter, read_records
from harness.verdict.tolerance import Tolerance

if TYPE_CHECKING:
    import torch

    from harness.boards import Board, RunResult
    from harness.build.artifact import Artifact
    from harness.build.quantization import QuantConfig
    from harness.verdict.check import CheckResult

CONFIG_KEY = pytest.StashKey[HarnessConfig]()
SESSION_KEY = pytest.StashKey[HarnessSession]()
RUN_ID_KEY = pytest.StashKey[str]()
RECORD_KEY = pytest.StashKey[dict[str, Any]]()
REPORTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SIGNALS_KEY = pytest.StashKey[dict[int, Any]]()

MARKERS = (
    "et_needs(*capabilities): run only on boards with these capabilities "
    f"({', '.join(CAPABILITIES)}); skipped with the reason elsewhere",
    "et_full_delegation: fail when ops other than the boundary quantize/dequantize are "
    "left to the CPU (named in the failure)",
    "et_tolerance(**limits, vs_float=None): override the board's default tolerance "
    "(atol, rtol, max_lsb, min_snr_db, min_cosine, min_top1) for this test",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the et-hil options."""
    group = parser.getgroup("et-hil", "ExecuTorch hardware-in-the-loop (et-hil)")
    group.addoption(
        "--board",
        action="append",
        default=[],
        metavar="NAME|FILE.toml",
        help="run board tests on NAME, or on the boards of a board file; repeat for a "
        "matrix (default: host). 'et-hil boards' lists them.",
    )
    group.addoption(
        "--board-file",
        action="append",
        default=[],
        metavar="PATH",
        help="add the board defined in this TOML file (repeatable)",
    )
    group.addoption(
        "--require-boards",
        action="store_true",
        help="fail, instead of skip, tests on boards that cannot run on this machine",
    )
    group.addoption(
        "--build-only", action="store_true", help="build and record programs, run nothing"
    )
    group.addoption("--no-cache", action="store_true", help="rebuild every program")
    group.addoption(
        "--build-cache",
        metavar="DIR",
        help="artifact cache folder (default: $ET_HIL_CACHE_DIR or ~/.cache/et-hil)",
    )
    group.addoption(
        "--results",
        metavar="PATH",
        help="JSON Lines file of per-test records (default: et-hil-results/results.jsonl)",
    )
    group.addoption(
        "--runner-elf",
        action="append",
        default=[],
        metavar="[BOARD=]PATH",
        help="runner ELF for an FVP or serial board (over its board file's); "
        "without BOARD= it applies to every selected board",
    )
    group.addoption(
        "--compile-target",
        metavar="TARGET",
        help="build for TARGET instead of each board's own (e.g. 'portable' for CPU-only "
        "programs on a Corstone with upstream's portable-ops runner)",
    )
    group.addoption(
        "--et-debug",
        choices=("on-failure", "always", "off"),
        default="on-failure",
        help="per-layer divergence table (every layer tapped, run on the board, compared "
        "with fake-quant and eager float): for failing checks (default), for every check, "
        "or never. Off under --build-only",
    )
    group.addoption(
        "--run-timeout",
        type=float,
        metavar="SECONDS",
        help="time limit of one run on a board (default: the board file's run_timeout_s)",
    )
    for kind in registry.kinds().values():  # built-in kinds' own options (--fvp-...)
        if kind.add_options is not None:
            kind.add_options(group)


def _resolve_config(config: pytest.Config) -> HarnessConfig:
    option = config.option
    try:
        # --board also takes a board (or lab) file: its boards are added and selected
        files = [b for b in option.board if b.endswith(".toml")]
        boards = load_boards([*option.board_file, *files])
        names = []
        for value in option.board or ["host"]:
            if value in files:
                names += [spec.name for spec in load_board_files(value)]
            else:
                names.append(value)
        selected = resolve_board_names(names, boards)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    results = Path(option.results) if option.results else Path("et-hil-results/results.jsonl")
    if not results.is_absolute():
        results = Path(config.invocation_params.dir) / results
    cache_dir = Path(option.build_cache) if option.build_cache else default_cache_dir()
    if option.run_timeout is not None and option.run_timeout <= 0:
        raise pytest.UsageError(f"--run-timeout must be positive, got {option.run_timeout}")
    elves: dict[str, Path] = {}
    for value in option.runner_elf:
        name, sep, path = value.rpartition("=")
        targets = [name] if sep else list(selected)
        if sep and name not in boards:
            raise pytest.UsageError(f"--runner-elf {value}: unknown board '{name}'")
        for target in targets:
            elves[target] = Path(path).expanduser().resolve()
    if option.compile_target:
        from harness.build.targets import get_target

        try:
            get_target(option.compile_target, board="--compile-target")
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from exc
        boards = {
            name: dataclasses.replace(spec, target=option.compile_target)
            for name, spec in boards.items()
        }
    try:
        kind_options = {
            kind.name: kind.options_from(option)
            for kind in registry.kinds().values()
            if kind.options_from is not None
        }
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    board_options = {
        name: BoardOptions(
            runner_elf=elves.get(name),
            cache_dir=cache_dir.expanduser().resolve(),
            kind_options=kind_options,
        )
        for name in boards
    }
    return HarnessConfig(
        boards=boards,
        selected=tuple(selected),
        require_boards=option.require_boards,
        build_only=option.build_only,
        cache_dir=cache_dir.expanduser().resolve(),
        use_cache=not option.no_cache,
        results_path=results.resolve(),
        run_timeout_s=option.run_timeout,
        board_options=board_options,
        debug="off" if option.build_only else option.et_debug,
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add et-hil's hooks (``pytest_et_hil_board_kinds``)."""
    from harness.pytest import hooks

    pluginmanager.add_hookspecs(hooks)


def _register_board_kinds(config: pytest.Config) -> None:
    """Register the board kinds of conftest.py files and plugins."""
    for plugin_kinds in config.hook.pytest_et_hil_board_kinds():
        try:
            registry.register(plugin_kinds, source="pytest_et_hil_board_kinds")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from exc


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options once; start the results file (in the controlling process)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    _register_board_kinds(config)
    # CI cancels with SIGTERM: unwind as Ctrl-C does, so no simulator is orphaned.
    config.stash[SIGNALS_KEY] = signals.install()
    quiet_torch_trace_log()
    harness_config = _resolve_config(config)
    config.stash[CONFIG_KEY] = harness_config
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        # The results file is started afresh by this run's first record (see
        # ResultsWriter), so pytest runs without board tests leave it alone.
        config.stash[RUN_ID_KEY] = uuid.uuid4().hex[:12]
    else:
        config.stash[RUN_ID_KEY] = workerinput.get("et_hil_run_id", "unknown")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: give workers the run id of the controller."""
    node.workerinput["et_hil_run_id"] = node.config.stash[RUN_ID_KEY]


def _session(config: pytest.Config) -> HarnessSession:
    if SESSION_KEY not in config.stash:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        config.stash[SESSION_KEY] = HarnessSession(config.stash[CONFIG_KEY], worker)
    return config.stash[SESSION_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close boards: nothing is left running."""
    try:
        if SESSION_KEY in config.stash:
            config.stash[SESSION_KEY].close()
    finally:
        signals.restore(config.stash.get(SIGNALS_KEY, {}))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where tests run, where programs are cached and where results go."""
    hc = config.stash[CONFIG_KEY]
    cache = str(hc.cache_dir) if hc.use_cache else "off (--no-cache)"
    mode = " (build only)" if hc.build_only else ""
    return [
        f"et-hil: boards {', '.join(hc.selected)}{mode}; cache {cache}",
        f"et-hil: results {hc.results_path}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses the ``board`` fixture once per selected board."""
    if "board" in metafunc.fixturenames:
        for marker in metafunc.definition.iter_markers("parametrize"):
            names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
            if "board" in (
                [n.strip() for n in names.split(",")] if isinstance(names, str) else names
            ):
                return  # the test chooses its boards itself
        selected = list(metafunc.config.stash[CONFIG_KEY].selected)
        metafunc.parametrize("board", selected, indirect=True, ids=selected)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reject misused markers before anything runs."""
    for item in items:
        for marker in item.iter_markers("et_needs"):
            unknown = [c for c in marker.args if c not in CAPABILITIES]
            if unknown or marker.kwargs:
                raise pytest.UsageError(
                    f"{item.nodeid}: et_needs takes capability names "
                    f"({', '.join(CAPABILITIES)}); got {unknown or marker.kwargs}"
                )
        for marker in item.iter_markers("et_tolerance"):
            try:
                _marker_tolerances(marker.kwargs, where=item.nodeid)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from exc


def pytest_itemcollected(item: pytest.Item) -> None:
    """Open the selected boards as soon as a test that needs one is collected, so
    the host runtime's ~5 s import overlaps the rest of collection and the builds."""
    config = item.config
    hc = config.stash[CONFIG_KEY]
    if hc.build_only or SESSION_KEY in config.stash:
        return
    if "board" in getattr(item, "fixturenames", ()):
        session = _session(config)
        for name in hc.selected:
            try:
                session.board(name)
            except HarnessError as exc:
                raise pytest.UsageError(str(exc)) from exc


def _marker_tolerances(
    kwargs: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    main = {k: v for k, v in kwargs.items() if k != "vs_float"}
    vs_float = dict(kwargs.get("vs_float") or {})
    Tolerance.from_mapping(main, f"{where}: et_tolerance")
    Tolerance.from_mapping(vs_float, f"{where}: et_tolerance(vs_float=...)")
    return main, vs_float


def _record(item: pytest.Item) -> dict[str, Any]:
    if RECORD_KEY not in item.stash:
        item.stash[RECORD_KEY] = {}
    return item.stash[RECORD_KEY]


@pytest.fixture
def board(request: pytest.FixtureRequest) -> Board:
    """The board this test runs on (one test per ``--board``); skips where it cannot run."""
    hc = request.config.stash[CONFIG_KEY]
    name = getattr(request, "param", hc.selected[0])
    spec = hc.boards[name]
    record = _record(request.node)
    record["board"] = name
    needed = [c for m in request.node.iter_markers("et_needs") for c in m.args]
    missing = sorted(set(needed) - spec.capabilities)
    if missing:
        pytest.skip(f"board '{name}' lacks {', '.join(missing)} (needed by this test)")
    if hc.build_only:
        return BuildOnlyBoard(spec)
    the_board = _session(request.config).board(name)
    availability = the_board.availability()
    if not availability.ok:
        record["failure_class"] = str(FailureClass.BOARD_UNAVAILABLE)
        message = f"board '{name}' cannot run here: {availability.reason}"
        if availability.hint:
            message += f" ({availability.hint})"
        if hc.require_boards:
            pytest.fail(message + " [--require-boards]", pytrace=False)
        pytest.skip(message)
    return the_board


class BuildOnlyBoard(RunsGivenInputs):
    """What the ``board`` fixture gives under ``--build-only``: builds work, runs skip."""

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
        """Skip the test: ``--build-only`` runs nothing."""
        pytest.skip(f"--build-only: nothing ran on {self.spec.name}")


def _add_artifact(item: pytest.Item, artifact: Artifact) -> None:
    _record(item)["artifact"] = artifact.summary()
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
    session = _session(request.config)

    def build(
        model: torch.nn.Module,
        example_inputs: Any,
        *,
        quantize: bool | str | QuantConfig | None = None,
        calibration: Sequence[Sequence[torch.Tensor]] | None = None,
    ) -> Artifact:
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
        marker_main, marker_vs_float = _marker_tolerances(marker.kwargs, item.nodeid)
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
    :class:`~harness.verdict.tolerance.Tolerance`), ``debug_buffer_size``,
    ``require_full_delegation`` (default: the board file or the
    ``et_full_delegation`` marker).
    """
    hc = request.config.stash[CONFIG_KEY]
    session = _session(request.config)
    item = request.node
    record = _record(item)

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
    ) -> CheckResult | None:
        from harness.build.quantization import QuantConfig
        from harness.build.targets import get_target
        from harness.verdict.check import build_for_board, preflight, run_and_compare

        spec = board.spec
        target = get_target(spec.target, board=spec.name, vela=spec.sections.get("vela"))
        if target.int_only and QuantConfig.coerce(quantize) is None:
            pytest.skip(
                f"board '{spec.name}' (target {spec.target}) runs quantized programs only; "
                "this test builds a float program"
            )
        checks = record.setdefault("checks", [])
        this: dict[str, Any] = {}
        checks.append(this)
        number = len(checks)  # the n-th et_check call of this test

        started = time.perf_counter()
        artifact = build_for_board(
            session.builder, board, model, inputs, quantize=quantize, calibration=calibration
        )
        artifact_s = time.perf_counter() - started
        _add_artifact(item, artifact)
        _add_lowering_properties(item, artifact)
        this["artifact"] = artifact.summary()
        this["delegation"] = artifact.metadata.get("delegation")
        this["vela"] = artifact.metadata.get("vela")
        if skipped := artifact.metadata.get("quantization_skipped"):
            warnings.warn(f"model '{artifact.model_name}': {skipped}", stacklevel=2)
            this["quantization_note"] = skipped
        main, secondary = _resolve_tolerances(item, board, artifact.quantized, tolerance, vs_float)
        if require_full_delegation is None:
            require_full_delegation = spec.require_full_delegation or any(
                True for _ in item.iter_markers("et_full_delegation")
            )
        if require_full_delegation and not target.delegates:
            # A marker written for NPU boards does not apply where nothing can be
            # delegated (the default host board of a matrix): the check still runs.
            this["full_delegation"] = f"not applicable: target {spec.target} has no delegate"
            require_full_delegation = False
        preflight(artifact, board, require_full_delegation=require_full_delegation)
        if hc.build_only:
            this["ran"] = False
            pytest.skip(f"built {artifact.key[:12]} for {spec.name}; nothing ran (--build-only)")

        run_dir = tmp_path / ("run" if number == 1 else f"run{number}")  # one per call
        this["run_dir"] = str(run_dir)
        repro_root = hc.results_path.parent / "repro"
        run_id = request.config.stash[RUN_ID_KEY]
        repro_dir = repro.run_folder(repro_root, hc.results_path, run_id) / (
            repro.case_folder_name(item.nodeid, number)
        )
        this["ran"] = True
        result = run_and_compare(
            board,
            artifact,
            reference or model,
            inputs,
            run_dir=run_dir,
            tolerance=main,
            vs_float=secondary,
            debug_buffer_size=debug_buffer_size,
            timeout_s=hc.run_timeout_s,
            repro_dir=repro_dir,
            test=item.nodeid,
            repro_owner=(hc.results_path, run_id),
        )
        this["timings"] = {
            "artifact_s": round(artifact_s, 6),
            **{k: round(v, 6) for k, v in result.timings.items()},
            **result.run.timings(),
            "check_s": round(time.perf_counter() - started, 6),
        }
        this["etdump"] = str(result.run.etdump_path) if result.run.etdump_path else None
        this["board_facts"] = {k: v for k, v in result.run.extra.items() if not k.endswith("_s")}
        this["comparisons"] = [
            {
                "reference": c.reference,
                "passed": c.passed,
                "problems": list(c.problems),
                "metrics": [m.as_dict() for m in c.metrics],
                "checks": [dataclasses.asdict(ch) for ch in c.checks],
            }
            for c in result.comparisons
        ]
        this["passed"] = result.passed
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
        divergence = ""
        if hc.debug == "always" or (hc.debug == "on-failure" and not result.passed):
            divergence = _debug_pass(
                session.builder, board, model, inputs, this,
                quantize=quantize, calibration=calibration,
                tolerance=main,
                run_dir=run_dir.with_name(run_dir.name + "-debug"),
                keep_in=result.repro_dir, timeout_s=hc.run_timeout_s,
            )  # fmt: skip
        if not result.passed:
            this["failure_class"] = record["failure_class"] = str(FailureClass.NUMERIC_MISMATCH)
            where = _repro_line(result.repro_dir, result.repro_error)
            this["repro"] = str(result.repro_dir) if result.repro_dir else None
            pytest.fail(
                f"model '{result.artifact.model_name}' on board '{spec.name}': "
                f"outputs differ from the reference\n{result.table()}{divergence}{where}",
                pytrace=False,
            )
        return result

    return check


DEBUG_ROWS = 12  # rows of the divergence table a failure message shows


def _debug_pass(
    builder: Any,
    board: Board,
    model: Any,
    inputs: Any,
    this: dict[str, Any],
    *,
    keep_in: Path | None,
    **kwargs: Any,
) -> str:
    """Run the per-layer divergence pass; record it, keep its files beside the
    repro folder (or the run folder), and return the failure message's part."""
    from harness.build.quiet import third_party_warnings_silenced
    from harness.verdict.debug import debug_model

    try:
        with third_party_warnings_silenced():
            report = debug_model(builder, board, model, inputs, **kwargs)
    except Exception as exc:  # the check's own verdict stands, whatever the pass hit
        this["debug"] = {"error": f"{type(exc).__name__}: {exc}"}
        if not isinstance(exc, HarnessError):  # a defect of the pass itself: say so loudly
            warnings.warn(f"et-hil debug pass failed: {type(exc).__name__}: {exc}", stacklevel=2)
        return f"\nper-layer table: not made ({type(exc).__name__}: {str(exc)[:300]})"
    folder = keep_in if keep_in is not None else kwargs["run_dir"]
    files = report.write(folder)
    this["debug"] = {**report.as_dict(), "files": [str(f) for f in files]}
    return f"\n{report.summary()}\n{report.table(rows=DEBUG_ROWS)}\nper-layer table: {files[1]}"


@pytest.fixture
def et_debug(request: pytest.FixtureRequest, board: Board, tmp_path: Path) -> Callable[..., Any]:
    """``et_debug(model, inputs, *, quantize=None, calibration=None, tolerance=None,
    fault=None) -> DivergenceReport``: the per-layer divergence table of the model
    on this test's board, without a failure (see :mod:`harness.verdict.debug`). The table
    is also written to the test's record and to ``divergence.{json,csv}``."""
    hc = request.config.stash[CONFIG_KEY]
    session = _session(request.config)
    record = _record(request.node)

    def debug(model: Any, inputs: Any, **kwargs: Any) -> Any:
        from harness.build.quiet import third_party_warnings_silenced
        from harness.verdict.debug import debug_model

        tolerance = kwargs.pop("tolerance", None)
        if isinstance(tolerance, Mapping):
            tolerance = Tolerance.from_mapping(tolerance, f"{request.node.nodeid}: et_debug")
        run_dir = tmp_path / f"debug{len(record.get('debug_reports', [])) + 1}"
        with third_party_warnings_silenced():
            report = debug_model(
                session.builder, board, model, inputs, run_dir=run_dir,
                tolerance=tolerance, timeout_s=hc.run_timeout_s, **kwargs,
            )  # fmt: skip
        files = report.write(run_dir)
        record.setdefault("debug_reports", []).append(
            {**report.as_dict(), "files": [str(f) for f in files]}
        )
        return report

    return debug


def _repro_line(folder: Path | None, error: str | None) -> str:
    """The failure message's pointer to the repro folder (kept, unlike pytest's tmp_path)."""
    if folder is not None:
        return f"\nrepro: {folder}\nrerun: et-hil repro {folder}"
    return f"\nno repro folder: {error}" if error else ""


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Shorten harness errors to their message; write the record after teardown."""
    report: pytest.TestReport = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, HarnessError):
        exc = call.excinfo.value
        text = f"{type(exc).__name__} [{exc.failure_class}]: {exc}"
        record = _record(item)
        record.setdefault("failure_class", str(exc.failure_class))
        if isinstance(exc, RunError):
            text += _repro_line(exc.repro_dir, exc.repro_error)
            if record.get("checks"):
                this = record["checks"][-1]
                this["failure_class"] = str(exc.failure_class)
                this["repro"] = str(exc.repro_dir) if exc.repro_dir else None
        report.longrepr = text
    if "board" in getattr(item, "fixturenames", ()):
        reports = item.stash.setdefault(REPORTS_KEY, {})
        reports[report.when] = report
        if report.when == "teardown":
            record = _write_record(item, reports)
            # JUnit reads properties from the teardown report: the verdict's facts.
            report.user_properties.extend(_junit_facts(record))
    return report


def _junit_facts(record: Mapping[str, Any]) -> list[tuple[str, object]]:
    """What a JUnit consumer needs to sort failures: board, class, versions, repro."""
    versions = record.get("versions") or {}
    facts: list[tuple[str, object]] = [
        ("et_board", record.get("board")),
        ("et_failure_class", record.get("failure_class") or "none"),
        ("et_versions", ",".join(f"{k}={v}" for k, v in sorted(versions.items()))),
    ]
    if record.get("repro"):
        facts.append(("et_repro", record["repro"]))
    return facts


def _outcome(reports: Mapping[str, pytest.TestReport]) -> tuple[str, str]:
    for when in ("setup", "call", "teardown"):
        report = reports.get(when)
        if report is None:
            continue
        if report.failed:
            return ("failed" if when == "call" else "error"), str(report.longrepr)[:2000]
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            return "skipped", reason
    return "passed", ""


# Per-check fields; the record's top level repeats those of its main check.
_CHECK_FIELDS = (
    "artifact",
    "delegation",
    "vela",
    "ran",
    "run_dir",
    "timings",
    "etdump",
    "board_facts",
    "repro",
    "quantization_note",
    "full_delegation",
    "debug",
)


def _main_check(checks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The check a record is about: the first that failed (or never finished), else the last."""
    for this in checks:
        if this.get("failure_class") or not this.get("passed", False):
            return this
    return checks[-1]


def _write_record(item: pytest.Item, reports: Mapping[str, pytest.TestReport]) -> dict[str, Any]:
    from harness.versions import tool_versions

    config = item.config
    hc = config.stash[CONFIG_KEY]
    record = _record(item)
    outcome, message = _outcome(reports)
    if outcome in ("failed", "error") and "failure_class" not in record:
        record["failure_class"] = str(FailureClass.TEST_ERROR)
    if outcome == "passed":
        record.pop("failure_class", None)
    if "board" not in record:  # skipped before the board fixture ran (skip/skipif markers)
        callspec = getattr(item, "callspec", None)
        record["board"] = callspec.params.get("board") if callspec else hc.selected[0]
    if checks := record.get("checks"):
        main = _main_check(checks)
        record.update({k: main[k] for k in _CHECK_FIELDS if k in main})
        record["comparisons"] = [c for this in checks for c in this.get("comparisons", [])]
    record.update(
        {
            "run_id": config.stash[RUN_ID_KEY],
            "test": item.nodeid,
            "outcome": outcome,
            "message": message,
            "duration_s": round(sum(r.duration for r in reports.values()), 4),
            "worker": getattr(config, "workerinput", {}).get("workerid", "main"),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": tool_versions(),
        }
    )
    record.setdefault("failure_class", None)
    repro_root = hc.results_path.parent / "repro"
    run_id = config.stash[RUN_ID_KEY]
    writer = ResultsWriter(
        hc.results_path,
        run_id=run_id,
        # A new run replaces the file's records; it may drop the repro folders it
        # can prove belonged to those records, and nothing else.
        on_new_run=lambda: repro.prune_replaced_runs(repro_root, hc.results_path, run_id),
    )
    writer.append(record)
    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Per-board summary of this run, read back from the results file."""
    if hasattr(config, "workerinput"):
        return
    hc = config.stash[CONFIG_KEY]
    run_id = config.stash[RUN_ID_KEY]
    records = [r for r in read_records(hc.results_path) if r.get("run_id") == run_id]
    if not records:
        return
    terminalreporter.section("et-hil summary")
    by_board: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_board.setdefault(r.get("board", "?"), []).append(r)
    for name, rows in by_board.items():
        counts = {
            o: sum(1 for r in rows if r["outcome"] == o)
            for o in ("passed", "failed", "error", "skipped")
        }
        artifacts = [r["artifact"] for r in rows if r.get("artifact")]
        hits = sum(1 for a in artifacts if a.get("cache_hit"))
        executes = [
            r["timings"]["execute_s"]
            for r in rows
            if r.get("timings", {}).get("execute_s") is not None
        ]
        median = f"{statistics.median(executes) * 1e3:.3f} ms" if executes else "-"
        terminalreporter.write_line(
            f"{name:<16} passed {counts['passed']}, failed {counts['failed']}, "
            f"errors {counts['error']}, skipped {counts['skipped']}; "
            f"programs from cache {hits}/{len(artifacts)}; median execute {median}"
        )
    terminalreporter.write_line(f"records: {hc.results_path} ({len(records)} tests)")
