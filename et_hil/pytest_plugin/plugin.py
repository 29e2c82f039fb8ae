"""The pytest plugin: the hooks that map a pytest run onto the harness.

Registered through the ``pytest11`` entry point, so it loads in every pytest run
of an environment that has et-hil installed: importing it must stay cheap.
torch and ExecuTorch are imported only when a fixture first needs them.

The plugin is three modules: this one (hooks: configuration, the board matrix,
records and the summary), :mod:`et_hil.pytest_plugin.options` (command-line options
and the settings they resolve to) and :mod:`et_hil.pytest_plugin.fixtures` (``board``,
``et_build``, ``et_check``, ``et_debug``); :func:`pytest_addhooks` registers the other two.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from et_hil.boards import registry
from et_hil.boards.spec import CAPABILITIES
from et_hil.errors import ConfigError, HarnessError, RunError
from et_hil.processes import signals
from et_hil.programs import target_registry
from et_hil.programs.quiet import quiet_third_party_logs, quiet_torch_trace_log
from et_hil.pytest_plugin.fixtures import (
    SESSION_KEY,
    draft_of,
    marker_delegation,
    repro_line,
    session_of,
)
from et_hil.pytest_plugin.options import (
    CONFIG_KEY,
    MARKERS,
    RUN_ID_KEY,
    _resolve_config,
    marker_baseline_limits,
    marker_tolerances,
    warn_deprecated_spellings,
)
from et_hil.pytest_plugin.regressions import (
    apply_baseline,
    apply_quarantine,
    select_shard,
    summary_lines,
    write_plan,
)
from et_hil.report import repro
from et_hil.report.record import Outcome, Record, make_record
from et_hil.report.results import ResultsWriter, read_records
from et_hil.report.sessions import LiveRun

REPORTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SIGNALS_KEY = pytest.StashKey[dict[int, Any]]()
LIVE_KEY = pytest.StashKey[LiveRun]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add et-hil's hooks (``pytest_et_hil_board_kinds``, ``pytest_et_hil_compile_targets``),
    and register the plugin's other two modules.

    They are registered here, not named in ``pytest_plugins``: this module imports
    them already, and pytest would warn twice (``PytestAssertRewriteWarning``) that
    it cannot rewrite modules imported before it was asked to.
    """
    from et_hil.pytest_plugin import fixtures, hooks, options

    pluginmanager.add_hookspecs(hooks)
    for module in (options, fixtures):
        if pluginmanager.get_plugin(module.__name__) is None:
            pluginmanager.register(module, module.__name__)


def _register_board_kinds(config: pytest.Config) -> None:
    """Register the board kinds of conftest.py files and plugins."""
    for plugin_kinds in config.hook.pytest_et_hil_board_kinds():
        try:
            registry.register(plugin_kinds, source="pytest_et_hil_board_kinds")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from exc


def _register_compile_targets(config: pytest.Config) -> None:
    """Register the compile targets of conftest.py files and plugins."""
    for plugin_targets in config.hook.pytest_et_hil_compile_targets():
        try:
            target_registry.register(plugin_targets, source="pytest_et_hil_compile_targets")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from exc


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options once; start the results file (in the controlling process)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    _register_board_kinds(config)
    _register_compile_targets(config)
    # CI cancels with SIGTERM: unwind as Ctrl-C does, so no simulator is orphaned.
    config.stash[SIGNALS_KEY] = signals.install()
    quiet_torch_trace_log()
    quiet_third_party_logs()
    warn_deprecated_spellings(config)
    harness_config = _resolve_config(config)
    config.stash[CONFIG_KEY] = harness_config
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        # The results file is started afresh by this run's first record (see
        # ResultsWriter), so pytest runs without board tests leave it alone.
        config.stash[RUN_ID_KEY] = uuid.uuid4().hex[:12]
    else:
        config.stash[RUN_ID_KEY] = workerinput.get("et_hil_run_id", "unknown")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark this run live on its results file (controlling process only) until it
    ends, so another session sharing the file keeps its records and repro folders."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    hc = config.stash[CONFIG_KEY]
    live = LiveRun(hc.results_path, config.stash[RUN_ID_KEY])
    try:
        live.start()
    except OSError:
        return  # an unwritable results folder: writing the first record says so
    config.stash[LIVE_KEY] = live


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: give workers the run id of the controller."""
    node.workerinput["et_hil_run_id"] = node.config.stash[RUN_ID_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close boards: nothing is left running."""
    try:
        if SESSION_KEY in config.stash:
            config.stash[SESSION_KEY].close()
    finally:
        if LIVE_KEY in config.stash:
            config.stash[LIVE_KEY].end()
        signals.restore(config.stash.get(SIGNALS_KEY, {}))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where tests run, where programs are cached and where results go."""
    hc = config.stash[CONFIG_KEY]
    cache = str(hc.cache_dir) if hc.use_cache else "off (--et-no-cache)"
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
                marker_tolerances(marker.kwargs, where=item.nodeid)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from exc
        for marker in item.iter_markers("et_delegation"):
            try:
                marker_delegation(marker, where=item.nodeid)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from exc
        for marker in item.iter_markers("et_baseline"):
            try:
                marker_baseline_limits(marker.args, marker.kwargs, where=item.nodeid)
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from exc


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After -k/-m deselection: keep this ``--et-shard``'s tests and note the plan."""
    hc = config.stash[CONFIG_KEY]
    if hc.shard is not None:
        select_shard(config, items, hc.shard, hc.shard_durations)
    write_plan(config, items)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Open the selected boards as soon as a test that needs one is collected, so
    the host runtime's ~5 s import overlaps the rest of collection and the builds."""
    config = item.config
    hc = config.stash[CONFIG_KEY]
    if hc.build_only or SESSION_KEY in config.stash:
        return
    if "board" in getattr(item, "fixturenames", ()):
        session = session_of(config)
        for name in hc.selected:
            try:
                session.board(name)
            except HarnessError as exc:
                raise pytest.UsageError(str(exc)) from exc


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Shorten harness errors to their message; write the record after teardown."""
    report: pytest.TestReport = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, HarnessError):
        exc = call.excinfo.value
        text = f"{type(exc).__name__} [{exc.failure_class}]: {exc}"
        draft = draft_of(item)
        if draft.failure_class is None:  # the first cause stands
            draft.failure_class = str(exc.failure_class)
        if isinstance(exc, RunError):
            text += repro_line(exc.repro_dir, exc.repro_error)
            if draft.checks:
                this = draft.checks[-1]
                this.failure_class = str(exc.failure_class)
                this.repro = str(exc.repro_dir) if exc.repro_dir else None
                if exc.board_facts and not this.board_facts:
                    this.board_facts = dict(exc.board_facts)
        report.longrepr = text
    if "board" in getattr(item, "fixturenames", ()):
        if report.when == "call":
            # A figure past its baseline limit fails a test that passed (or only
            # built); a quarantined failure becomes xfailed, an expired entry fails.
            apply_baseline(item, report)
        if report.when in ("setup", "call"):
            apply_quarantine(item, report)
        reports = item.stash.setdefault(REPORTS_KEY, {})
        reports[report.when] = report
        if report.when == "teardown":
            record = _write_record(item, reports)
            # JUnit reads properties from the teardown report: the verdict's facts.
            report.user_properties.extend(_junit_facts(record))
    return report


def _junit_facts(record: Record) -> list[tuple[str, object]]:
    """What a JUnit consumer needs to sort failures: board, class, versions, repro."""
    facts: list[tuple[str, object]] = [
        ("et_board", record.board),
        ("et_failure_class", record.failure_class or "none"),
        ("et_versions", ",".join(f"{k}={v}" for k, v in sorted(record.versions.items()))),
    ]
    if isinstance(record.repro, str) and record.repro:
        facts.append(("et_repro", record.repro))
    return facts


def _outcome(reports: Mapping[str, pytest.TestReport]) -> tuple[Outcome, str]:
    for when in ("setup", "call", "teardown"):
        report = reports.get(when)
        if report is None:
            continue
        if hasattr(report, "et_quarantined_failure"):  # the true outcome, quarantined
            return ("failed" if when == "call" else "error"), report.et_quarantined_failure
        if report.failed:
            return ("failed" if when == "call" else "error"), str(report.longrepr)[:2000]
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            return "skipped", reason
    return "passed", ""


def _write_record(item: pytest.Item, reports: Mapping[str, pytest.TestReport]) -> Record:
    """Make the test's record (:func:`et_hil.report.record.make_record`) and append it."""
    from et_hil.versions import tool_versions

    config = item.config
    hc = config.stash[CONFIG_KEY]
    run_id = config.stash[RUN_ID_KEY]
    outcome, message = _outcome(reports)
    callspec = getattr(item, "callspec", None)
    record = make_record(
        draft_of(item),
        run_id=run_id,
        test=item.nodeid,
        outcome=outcome,
        message=message,
        duration_s=sum(r.duration for r in reports.values()),
        worker=getattr(config, "workerinput", {}).get("workerid", "main"),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=tool_versions(),
        # a test skipped before its board fixture ran (skip/skipif markers)
        board=callspec.params.get("board") if callspec else hc.selected[0],
        shard=hc.shard_label,
    )
    repro_root = hc.results_path.parent / "repro"
    writer = ResultsWriter(
        hc.results_path,
        run_id=run_id,
        # A new run drops the records of runs that ended; it may drop the repro
        # folders it can prove belonged to those records, and nothing else.
        on_new_run=lambda keep: repro.prune_replaced_runs(repro_root, hc.results_path, keep),
    )
    writer.append(record)
    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Per-board summary of this run, read back from the results file."""
    if hasattr(config, "workerinput"):
        return
    hc = config.stash[CONFIG_KEY]
    run_id = config.stash[RUN_ID_KEY]
    records = [r for r in read_records(hc.results_path) if r.run_id == run_id]
    if not records:
        return
    terminalreporter.section("et-hil summary")
    by_board: dict[str, list[Record]] = {}
    for r in records:
        by_board.setdefault(str(r.board), []).append(r)
    for name, rows in by_board.items():
        held = [r for r in rows if r.quarantined]
        counts = {
            o: sum(1 for r in rows if r.outcome == o and not r.quarantined)
            for o in ("passed", "failed", "error", "skipped")
        }
        artifacts = [r.artifact for r in rows if r.artifact]
        hits = sum(1 for a in artifacts if a.cache_hit)
        executes = [s for r in rows if (s := r.seconds("execute_s")) is not None]
        median = f"{statistics.median(executes) * 1e3:.3f} ms" if executes else "-"
        terminalreporter.write_line(
            f"{name!s:<16} passed {counts['passed']}, failed {counts['failed']}, "
            f"errors {counts['error']}, skipped {counts['skipped']}"
            + (f", quarantined {len(held)}" if held else "")
            + "; "
            f"programs from cache {hits}/{len(artifacts)}; median execute {median}"
        )
    if hc.build_only:  # what each build told, one line a test (skip reasons are hidden)
        for r in records:
            message = r.message.removeprefix("Skipped: ")
            if r.outcome == "skipped" and message.startswith("built "):
                terminalreporter.write_line(f"{r.test}: {message}")
    for line in summary_lines(records, hc):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"records: {hc.results_path} ({len(records)} tests)")
