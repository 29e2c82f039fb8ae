"""Regression baselines: per-test, per-board figures to compare a run with.

A baseline is a text file meant to be committed and reviewed: JSON Lines, one
entry per (test, board), sorted, each with its figures (:mod:`et_hil.report.figures`)
rounded to 6 significant digits, so an update's diff shows only what moved.

Each figure has a limit (:class:`~et_hil.baseline_limits.Limit`): how far it may
move in its worse direction before it is a regression, and whether a regression
fails the test or only warns. Defaults are
:data:`~et_hil.baseline_limits.DEFAULT_LIMITS`; a board file's ``[baseline]``
table and the ``et_baseline`` marker override them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from et_hil.baseline_limits import (
    DEFAULT_LIMITS,
    Action,
    Limit,
    check_overrides,
    limit_for,
)
from et_hil.errors import ConfigError
from et_hil.report.figures import (
    SNR_CEILING_DB,
    base_name,
    figures_of,
    higher_is_worse,
)
from et_hil.report.record_parts import Change, ChangeKind

if TYPE_CHECKING:
    from et_hil.report.record import Record

__all__ = [
    "DEFAULT_LIMITS",
    "Action",
    "Baseline",
    "Change",
    "ChangeKind",
    "ChangeRow",
    "Limit",
    "check_overrides",
    "compare_figures",
    "limit_for",
    "recorded_changes",
    "table",
]

# Changes smaller than this, in the figure's unit, are noise whatever the limit says:
# a 0.2 ms host execution that takes 0.35 ms on a busy machine is not a regression.
NOISE_FLOOR: dict[str, float] = {"execute_s": 0.005}


@dataclasses.dataclass(frozen=True)
class ChangeRow:
    """One change of one test on one board, with the baseline it is against (as the
    HTML report and ``et-hil baseline compare`` list them).

    Attributes:
        test: the test's node id.
        board: the board it ran on.
        file: the baseline file.
        change: the figure's change.
    """

    test: str
    board: str | None
    file: str | None
    change: Change


def recorded_changes(records: Iterable[Record]) -> list[ChangeRow]:
    """The changes the records' own runs found against ``--et-baseline``."""
    return [
        ChangeRow(record.test, record.board, record.baseline.file, change)
        for record in records
        if record.baseline
        for change in record.baseline.changes
    ]


def compare_figures(
    now: Mapping[str, float],
    baseline: Mapping[str, float],
    overrides: Iterable[Mapping[str, Any]] = (),
) -> list[Change]:
    """The changes of ``now`` against ``baseline`` worth reporting (unchanged figures
    and changes within their limit in the better direction by less than noise are left out)."""
    overrides = list(overrides)
    changes: list[Change] = []
    for figure in sorted(set(now) | set(baseline)):
        limit = limit_for(figure, overrides)
        old, new = baseline.get(figure), now.get(figure)
        if base_name(figure) == "snr_db":  # (values from before the ceiling, or raw)
            old = None if old is None else min(old, SNR_CEILING_DB)
            new = None if new is None else min(new, SNR_CEILING_DB)
        # Baselines keep 6 significant digits: compare at that precision, so the
        # rounding itself is never a change.
        new = None if new is None else _round(new)
        if old is None or new is None:
            kind: ChangeKind = "new" if old is None else "missing"
            changes.append(Change(figure, old, new, None, limit.text, kind, limit.action))
            continue
        change = _change(old, new, limit.relative)
        if change is None or abs(new - old) <= NOISE_FLOOR.get(base_name(figure), 0.0):
            continue
        worse = change if higher_is_worse(figure) else -change
        if worse > 0 and not limit.allows(worse):
            kind = "regression" if limit.action == "fail" else "warning"
        elif worse < 0 and not limit.allows(-worse) and abs(_change(old, new, True) or 0.0) > 1e-6:
            # Better by more than the limit allows either way: run-to-run noise
            # inside the band (a wall time 20% faster) is not an improvement.
            kind = "improvement"
        else:
            continue
        changes.append(Change(figure, old, new, change, limit.text, kind, limit.action))
    return changes


def _change(old: float, new: float, relative: bool) -> float | None:
    """new - old (relative: as a fraction of |old|); None when both are the same."""
    if old == new or (math.isnan(old) and math.isnan(new)):
        return None
    if math.isinf(old) or math.isinf(new):
        return new - old  # +-inf: from or to an exact match (SNR), always reported
    delta = new - old
    if not relative:
        return delta
    return delta / abs(old) if old != 0 else math.copysign(math.inf, delta)


def _round(value: float) -> float:
    """6 significant digits: enough to see a regression, few enough to keep diffs quiet.
    Whole numbers (bytes, cycles) stay exact: a few bytes more of a 2 MB plan count."""
    if not math.isfinite(value) or (value.is_integer() and abs(value) < 2**53):
        return value
    return float(f"{value:.6g}")


class BaselineEntry(msgspec.Struct):
    """One line of a baseline file: a test's figures on a board."""

    test: str
    board: str
    figures: dict[str, float]


# Lax: baselines write infinities as strings ("inf"), which decode to floats.
_ENTRY = msgspec.json.Decoder(BaselineEntry, strict=False)


def _entry(line: str) -> BaselineEntry:
    """A baseline line decoded; ``Infinity`` as early baselines wrote it is read too.

    Raises:
        msgspec.ValidationError: the line is JSON but not an entry.
        ValueError: the line is not JSON.
    """
    try:
        return _ENTRY.decode(line)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError:  # not JSON to msgspec: maybe to Python (Infinity)
        return msgspec.convert(json.loads(line), BaselineEntry, strict=False)


@dataclasses.dataclass
class Baseline:
    """Figures per (test, board), as read from or written to a baseline file."""

    entries: dict[tuple[str, str], dict[str, float]] = dataclasses.field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """Read a baseline file.

        Raises:
            ConfigError: the file is missing or a line is not a baseline entry
                (naming the file and line).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"baseline {path}: cannot read it ({exc.strerror}); write one with "
                "'et-hil baseline update RESULTS --baseline FILE'"
            ) from exc
        entries: dict[tuple[str, str], dict[str, float]] = {}
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = _entry(line)
            except (msgspec.DecodeError, ValueError) as exc:
                raise ConfigError(
                    f"baseline {path}:{line_no}: not a baseline entry "
                    '({"test": ..., "board": ..., "figures": {...}}): ' + f"{exc}"
                ) from exc
            entries[(entry.test, entry.board)] = entry.figures
        return cls(entries, path)

    def entry(self, test: str, board: str | None) -> dict[str, float] | None:
        """The figures of ``test`` on ``board``, or None when the baseline has none."""
        return self.entries.get((test, board or ""))

    def changes_for(
        self, record: Record, overrides: Iterable[Mapping[str, Any]] = ()
    ) -> list[Change] | None:
        """A record's changes against its entry (None: no entry for it)."""
        old = self.entry(record.test, record.board)
        if old is None:
            return None
        return compare_figures(figures_of(record), old, overrides)

    def update(
        self,
        records: Iterable[Record],
        overrides_for: Callable[[str], Iterable[Mapping[str, Any]]] = lambda board: (),
    ) -> dict[str, int]:
        """Take the figures of tests that passed (or were skipped after building,
        as under ``--et-build-only``, or failed only by a baseline regression) from ``records``.

        Entries of tests not in ``records`` (or that failed otherwise) are kept as they are.
        Within an entry, a figure keeps its old value while the new one is within its
        limit both ways, so run-to-run noise does not rewrite the file.

        Args:
            records: results records.
            overrides_for: a board's limits over the defaults (its file's ``[baseline]``).

        Returns:
            counts of entries ``added``, ``changed``, ``kept``.
        """
        original = dict(self.entries)
        for record in records:
            # A test failed only by its regression is taken: updating is how a
            # reviewer accepts it (the diff of the file shows what moved).
            accepted = record.failure_class == "regression"
            if record.outcome not in ("passed", "skipped") and not accepted:
                continue
            now = {k: _round(v) for k, v in figures_of(record).items()}
            if not now:  # skipped before anything was built
                continue
            key = (record.test, record.board or "")
            overrides = list(overrides_for(key[1]))
            old = self.entries.get(key, {})
            # A build-only record has no run figures: keep the entry's, not drop them.
            merged = dict(old) if record.ran is False else {}
            for figure, value in now.items():
                previous = old.get(figure)
                if previous is not None and _within_both_ways(figure, previous, value, overrides):
                    merged[figure] = previous
                else:
                    merged[figure] = value
            self.entries[key] = merged
        added = sum(1 for key in self.entries if key not in original)
        changed = sum(1 for key, old in original.items() if self.entries[key] != old)
        return {"added": added, "changed": changed, "kept": len(original) - changed}

    def dumps(self) -> str:
        """The file's text: one sorted entry per line, keys sorted."""
        lines = [
            json.dumps(
                {
                    "test": test,
                    "board": board,
                    # strict JSON: infinities as results files write them ("inf")
                    "figures": {
                        k: v if math.isfinite(v) else str(v) for k, v in sorted(figures.items())
                    },
                },
                sort_keys=True,
            )
            for (test, board), figures in sorted(self.entries.items())
        ]
        return "".join(line + "\n" for line in lines)

    def write(self, path: Path) -> None:
        """Write the file (whole, through a temporary file: a reader never sees half)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.dumps(), encoding="utf-8")
        partial.replace(path)


def _within_both_ways(
    figure: str, old: float, new: float, overrides: Iterable[Mapping[str, Any]]
) -> bool:
    limit = limit_for(figure, overrides)
    change = _change(old, new, limit.relative)
    return change is None or (
        math.isfinite(change) and limit.allows(abs(change)) and limit.amount > 0
    )


def table(changes: Iterable[Change], kinds: Iterable[str] = ("regression", "warning")) -> str:
    """A plain-text table of changes: figure, baseline, now, change, limit."""
    wanted = set(kinds)
    rows = [("figure", "baseline", "now", "change", "limit", "")]
    for c in changes:
        if c.kind in wanted:
            rows.append((c.figure, fmt(c.baseline), fmt(c.now), change_text(c), c.limit, c.kind))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def fmt(value: float | None) -> str:
    """A figure's value for tables: 6 significant digits, '-' for none."""
    if value is None:
        return "-"
    return f"{value:.6g}"


def change_text(change: Change) -> str:
    """A change as people read it: ``+3.1%`` for relative limits, ``-1.52`` otherwise."""
    if change.change is None:
        return "-"
    if change.limit.endswith("%"):
        return (
            f"{change.change * 100:+.2f}%" if math.isfinite(change.change) else f"{change.change:+}"
        )
    return f"{change.change:+.4g}"
