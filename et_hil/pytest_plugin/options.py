"""The et-hil command-line options, the markers, and the settings they resolve to.

Registered as a plugin by :mod:`et_hil.pytest_plugin.plugin` (its ``pytest_addhooks``);
like it, cheap to import: no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from et_hil.boards import registry
from et_hil.boards.base import BoardOptions
from et_hil.boards.spec import CAPABILITIES, load_board_files, load_boards, resolve_board_names
from et_hil.errors import ConfigError, EtHilDeprecationWarning, HarnessError
from et_hil.programs.cache import default_cache_dir
from et_hil.pytest_plugin.session import HarnessConfig
from et_hil.pytest_plugin.shard import parse_shard, recorded_durations
from et_hil.report.baseline import Baseline, check_overrides
from et_hil.report.quarantine import QuarantineEntry, load_quarantine
from et_hil.tolerance import Tolerance

CONFIG_KEY = pytest.StashKey[HarnessConfig]()  # set by the plugin's pytest_configure
RUN_ID_KEY = pytest.StashKey[str]()  # the run id every record carries, shared with workers

MARKERS = (
    "et_needs(*capabilities): run only on boards with these capabilities "
    f"({', '.join(CAPABILITIES)}); skipped with the reason elsewhere",
    "et_full_delegation: fail when ops other than the boundary quantize/dequantize are "
    "left to the CPU (named in the failure)",
    "et_delegation(partitions=None, delegated=None, cpu=None): what must be delegated (ops, "
    "optionally with counts; the number of partitions) and which ops may stay on the CPU",
    "et_tolerance(**limits, vs_float=None): override the board's default tolerance "
    "(atol, rtol, max_lsb, min_snr_db, min_cosine, min_top1) for this test",
    "et_baseline(limits=None, **limits): regression limits against --et-baseline for this test, "
    "per figure (e.g. cycles_total='+5%', snr_db='warn -2'; a dict for full figure names)",
)


PREFIX = "--et-"
#: old spelling -> the option that replaced it (filled as options are added)
DEPRECATED_SPELLINGS: dict[str, str] = {}


class EtOptionGroup:
    """pytest's et-hil option group, holding every option to one prefix, ``--et-``.

    A renamed option keeps its old spelling for one release: ``deprecated`` names
    still parse (hidden from ``--help``, same destination) and
    :func:`warn_deprecated_spellings` says what to type instead. Built-in kinds add
    their options through it too (their ``add_options`` hook), so a kind's options
    carry the prefix like the plugin's own.
    """

    def __init__(self, group: pytest.OptionGroup) -> None:
        self._group = group

    def addoption(self, name: str, *, deprecated: Sequence[str] = (), **kwargs: Any) -> None:
        """Add ``name`` (``--et-...``); ``deprecated`` spellings parse to the same
        destination, which stays the first old spelling's so code reading
        ``config.option`` keeps working across the rename.

        Raises:
            ConfigError: ``name`` lacks the prefix (a kind's ``add_options`` at fault).
        """
        if not name.startswith(PREFIX):
            raise ConfigError(
                f"option {name}: et-hil's options start with {PREFIX} (a board kind's "
                f"add_options hook adds {PREFIX}{name.lstrip('-')}, not {name})"
            )
        if "dest" not in kwargs:
            kwargs["dest"] = (deprecated[0] if deprecated else name).lstrip("-").replace("-", "_")
        self._group.addoption(name, **kwargs)
        for old in deprecated:
            # default=SUPPRESS: the new spelling's default stands; help=SUPPRESS: --help
            # shows one spelling.
            hidden = {k: v for k, v in kwargs.items() if k not in ("help", "default")}
            self._group.addoption(old, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **hidden)
            DEPRECATED_SPELLINGS[old] = name


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the et-hil options."""
    group = EtOptionGroup(parser.getgroup("et-hil", "ExecuTorch hardware-in-the-loop (et-hil)"))
    group.addoption(
        "--et-board",
        deprecated=["--board"],
        action="append",
        default=[],
        metavar="NAME|FILE.toml",
        help="run board tests on NAME, or on the boards of a board file; repeat for a "
        "matrix (default: host). 'et-hil boards' lists them.",
    )
    group.addoption(
        "--et-board-file",
        deprecated=["--board-file"],
        action="append",
        default=[],
        metavar="PATH",
        help="add the board defined in this TOML file (repeatable)",
    )
    group.addoption(
        "--et-require-boards",
        deprecated=["--require-boards"],
        action="store_true",
        help="fail, instead of skip, tests on boards that cannot run on this machine",
    )
    group.addoption(
        "--et-build-only",
        deprecated=["--build-only"],
        action="store_true",
        help="build and record programs, run nothing",
    )
    group.addoption(
        "--et-no-cache",
        deprecated=["--no-cache"],
        action="store_true",
        help="rebuild every program",
    )
    group.addoption(
        "--et-build-cache",
        deprecated=["--build-cache"],
        metavar="DIR",
        help="artifact cache folder (default: $ET_HIL_CACHE_DIR or ~/.cache/et-hil)",
    )
    group.addoption(
        "--et-results",
        deprecated=["--results"],
        metavar="PATH",
        help="JSON Lines file of per-test records (default: et-hil-results/results.jsonl)",
    )
    group.addoption(
        "--et-runner-elf",
        deprecated=["--runner-elf"],
        action="append",
        default=[],
        metavar="[BOARD=]PATH",
        help="runner ELF for an FVP or serial board (over its board file's); "
        "without BOARD= it applies to every selected board",
    )
    group.addoption(
        "--et-compile-target",
        deprecated=["--compile-target"],
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
        "or never. Off under --et-build-only",
    )
    group.addoption(
        "--et-confirm",
        choices=("layers", "off"),
        default="layers",
        help="quantized outputs that differ from fake-quant within the rounding allowance: "
        "confirm them layer by layer (the per-layer pass; a layer that diverges on its own "
        "fails the check, the default), or judge the outputs alone (off)",
    )
    group.addoption(
        "--et-debug-strategy",
        choices=("auto", "all", "bisect"),
        default="auto",
        help="how the per-layer pass taps the layers: every layer in one build (all), "
        "split over several builds (bisect), or all when the board can carry every tap "
        "and bisect when it cannot (auto, the default)",
    )
    group.addoption(
        "--et-run-timeout",
        deprecated=["--run-timeout"],
        type=float,
        metavar="SECONDS",
        help="time limit of one run on a board (default: the board file's run_timeout_s)",
    )
    group.addoption(
        "--et-baseline",
        deprecated=["--baseline"],
        metavar="FILE",
        help="compare each test's figures (accuracy, Vela cycles/SRAM/flash, PMU cycles, "
        "sizes, run time) with this baseline file; a regression past its limit fails "
        "the test. 'et-hil baseline update' writes one",
    )
    group.addoption(
        "--et-quarantine",
        deprecated=["--quarantine"],
        metavar="FILE",
        help="known failures (TOML: test, board, reason, issue, expires) that run and are "
        "reported but do not fail the run until they expire (default: the "
        "et_quarantine ini setting)",
    )
    group.addoption(
        "--et-shard",
        deprecated=["--shard"],
        metavar="I/N",
        help="run shard I of N (from 1) of the selected tests, balanced by recorded "
        "durations; every test lands in exactly one shard",
    )
    group.addoption(
        "--et-durations-from",
        deprecated=["--durations-from"],
        action="append",
        default=[],
        metavar="RESULTS",
        help="results files whose durations balance --et-shard, the same for every shard "
        "(e.g. last night's merged results); without it every test weighs the same",
    )
    parser.addini(
        "et_quarantine", "quarantine file used when --et-quarantine is not given", default=""
    )
    for kind in registry.kinds().values():  # kinds' own options (--et-fvp-...)
        if kind.add_options is not None:
            kind.add_options(group)


def warn_deprecated_spellings(config: pytest.Config) -> None:
    """Warn once per run (on the controller, not each xdist worker) for every old
    option spelling on the command line, in ``PYTEST_ADDOPTS`` or in ``addopts``."""
    if hasattr(config, "workerinput"):
        return
    given = [
        *config.invocation_params.args,
        *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
        *config.getini("addopts"),
    ]
    used = dict.fromkeys(str(arg).split("=", 1)[0] for arg in given)
    for old in used:
        if old in DEPRECATED_SPELLINGS:
            config.issue_config_time_warning(
                EtHilDeprecationWarning(
                    f"{old} is deprecated: use {DEPRECATED_SPELLINGS[old]} (every et-hil option "
                    f"now starts with {PREFIX}; the old spelling goes in the next release)"
                ),
                stacklevel=2,
            )


def _resolve_config(config: pytest.Config) -> HarnessConfig:
    """The harness settings of this pytest run, from its options (a bad one is a usage error)."""
    option = config.option
    try:
        # --et-board also takes a board (or lab) file: its boards are added and selected
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
        raise pytest.UsageError(f"--et-run-timeout must be positive, got {option.run_timeout}")
    elves: dict[str, Path] = {}
    for value in option.runner_elf:
        name, sep, path = value.rpartition("=")
        targets = [name] if sep else list(selected)
        if sep and name not in boards:
            raise pytest.UsageError(f"--et-runner-elf {value}: unknown board '{name}'")
        for target in targets:
            elves[target] = Path(path).expanduser().resolve()
    if option.compile_target:
        from et_hil.programs.target_registry import get_target

        try:
            get_target(option.compile_target, board="--et-compile-target")
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
    baseline, quarantine, shard, durations = _regression_settings(config, results.resolve())
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
        debug_strategy=option.et_debug_strategy,
        confirm=option.et_confirm,
        baseline=baseline,
        quarantine=quarantine,
        shard=shard,
        shard_durations=durations,
    )


def _regression_settings(
    config: pytest.Config, results: Path
) -> tuple[Baseline | None, tuple[QuarantineEntry, ...], tuple[int, int] | None, dict[str, float]]:
    """``--et-baseline``, ``--et-quarantine`` (or the ini setting), ``--et-shard`` and the
    durations that balance it; a bad one is a usage error naming it."""
    option = config.option
    here = Path(config.invocation_params.dir)
    try:
        baseline = Baseline.load(here / option.baseline) if option.baseline else None
        quarantine_file = option.quarantine or config.getini("et_quarantine")
        quarantine: tuple[QuarantineEntry, ...] = ()
        if quarantine_file:
            base = here if option.quarantine else config.rootpath
            quarantine = tuple(load_quarantine(base / quarantine_file))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    shard = None
    durations: dict[str, float] = {}
    if option.shard:
        try:
            shard = parse_shard(option.shard)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from exc
        # Only given files: every job of a matrix must see the same durations, and a
        # job's own last results differ from job to job (without them: equal weights).
        sources = [here / p for p in option.durations_from]
        for source in sources:
            if not source.is_file():
                raise pytest.UsageError(f"--et-durations-from {source}: no such results file")
        try:
            durations = recorded_durations(sources)
        except ConfigError as exc:
            raise pytest.UsageError(f"--et-durations-from: {exc}") from exc
    return baseline, quarantine, shard, durations


def marker_tolerances(
    kwargs: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ``et_tolerance`` marker's limits: (main, vs_float); raises ValueError naming
    ``where`` when one is unknown or not a number."""
    main = {k: v for k, v in kwargs.items() if k != "vs_float"}
    vs_float = dict(kwargs.get("vs_float") or {})
    Tolerance.from_mapping(main, f"{where}: et_tolerance")
    Tolerance.from_mapping(vs_float, f"{where}: et_tolerance(vs_float=...)")
    return main, vs_float


def marker_baseline_limits(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """An ``et_baseline`` marker's limits (a dict argument and keywords); raises
    ValueError naming ``where`` when one does not parse."""
    limits: dict[str, Any] = {}
    for arg in args:
        if not isinstance(arg, Mapping):
            raise ValueError(f"{where}: et_baseline takes a dict of figure -> limit, got {arg!r}")
        limits.update(arg)
    limits.update(kwargs.get("limits") or {})
    limits.update({k: v for k, v in kwargs.items() if k != "limits"})
    problems = check_overrides(limits, f"{where}: et_baseline")
    if problems:
        raise ValueError("; ".join(problems))
    return limits
