"""One harness session per process: the configuration, the boards and the builder."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from pathlib import Path

from et_hil.boards import Board, BoardOptions, make_board
from et_hil.boards.spec import BoardSpec
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache
from et_hil.report.baseline import Baseline
from et_hil.report.quarantine import QuarantineEntry
from et_hil.verdict.golden import GoldenReferences


@dataclasses.dataclass(frozen=True)
class HarnessConfig:
    """Settings resolved once from options, environment and defaults.

    Attributes:
        boards: known boards by name.
        selected: names to run on, in order.
        require_boards: fail (instead of skip) tests on boards that cannot run here.
        build_only: build and record, run nothing.
        cache_dir: artifact cache folder.
        use_cache: False with ``--et-no-cache``.
        results_path: the JSON Lines results file.
        run_timeout_s: overrides every board's run timeout when set.
        board_options: command-line settings per board (runner ELF, FVP mode).
        debug: when to make the per-layer divergence table (``--et-debug``):
            ``on-failure``, ``always`` or ``off``.
        debug_strategy: how the per-layer pass taps layers (``--et-debug-strategy``).
        confirm: ``layers`` to confirm outputs within rounding of fake-quant with the
            per-layer pass (``--et-confirm``), ``off`` to judge outputs alone.
        baseline: figures to compare each test with (``--et-baseline``).
        quarantine: known failures that do not fail the run (``--et-quarantine``).
        shard: (index, count) of ``--et-shard``, counting from 1.
        shard_durations: recorded test durations that balance the shards.
        today: the day quarantine expiries are judged by (one per run: a run that
            crosses midnight does not change its verdicts halfway).
    """

    boards: Mapping[str, BoardSpec]
    selected: tuple[str, ...]
    require_boards: bool
    build_only: bool
    cache_dir: Path
    use_cache: bool
    results_path: Path
    run_timeout_s: float | None = None
    board_options: Mapping[str, BoardOptions] = dataclasses.field(default_factory=dict)
    debug: str = "on-failure"
    debug_strategy: str = "auto"
    confirm: str = "layers"
    baseline: Baseline | None = None
    quarantine: tuple[QuarantineEntry, ...] = ()
    shard: tuple[int, int] | None = None
    shard_durations: Mapping[str, float] = dataclasses.field(default_factory=dict)
    today: datetime.date = dataclasses.field(default_factory=datetime.date.today)

    @property
    def shard_label(self) -> str | None:
        """``i/n`` of ``--et-shard``, as records carry it."""
        return f"{self.shard[0]}/{self.shard[1]}" if self.shard else None

    @property
    def log_dir(self) -> Path:
        """Where board logs go: beside the results file."""
        return self.results_path.parent / "logs"


class HarnessSession:
    """Boards (opened on first use, one per name) and the builder of one process.

    Args:
        config: the resolved settings.
        worker_id: ``gw0``... under xdist, ``main`` otherwise (names log files).
    """

    def __init__(self, config: HarnessConfig, worker_id: str = "main") -> None:
        self.config = config
        self.worker_id = worker_id
        self.cache = ArtifactCache(config.cache_dir, enabled=config.use_cache)
        self.builder = Builder(self.cache)
        self._boards: dict[str, Board] = {}
        # Reference boards of the golden references (host runtime, TOSA reference
        # model), started on first use.
        self.golden = GoldenReferences(self.builder, config.log_dir / worker_id / "golden")

    def board(self, name: str) -> Board:
        """The board called ``name``, created and opened on first use."""
        if name not in self._boards:
            board = make_board(
                self.config.boards[name],
                self.config.log_dir / self.worker_id,
                self.config.board_options.get(name),
            )
            if board.availability().ok:
                board.open()
            self._boards[name] = board
        return self._boards[name]

    def close(self) -> None:
        """Close every board and drop ``--et-no-cache`` scratch files."""
        for board in self._boards.values():
            board.close()
        self._boards.clear()
        self.golden.close()
        self.cache.close()
