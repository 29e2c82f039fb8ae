"""Regression baselines: per-test, per-board figures to compare a run with.

A baseline is a text file meant to be committed and reviewed: JSON Lines, one
entry per (test, board), sorted, each with its figures (:mod:`harness.report.figures`)
rounded to 6 significant digits, so an update's diff shows only what moved.

Each figure has a limit (:class:`Limit`): how far it may move in its worse
direction before it is a regression, and whether a regression fails the test or
only warns. Defaults are :data:`DEFAULT_LIMITS`; a board file's ``[baseline]``
table and the ``et_baseline`` marker override them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.report.figures import (
    HIGHER_IS_WORSE,
    PMU_FIGURES,
    SNR_CEILING_DB,
    base_name,
    figures_of,
    higher_is_worse,
    number,
)

Action = Literal["fail", "warn"]
ChangeKind = Literal["regression", "warning", "improvement", "new", "missing"]

_LIMIT = re.compile(
    r"^\s*(?:(?P<action>fail|warn)\s*:?\s+)?(?P<amount>[+-]?\d+(?:\.\d*)?)\s*(?P<pct>%)?\s*$"
)


@dataclasses.dataclass(frozen=True)
class Limit:
    """How far a figure may get worse before it is a regression.

    Attributes:
        amount: the allowed change in the worse direction (>= 0).
        relative: ``amount`` is a fraction of the baseline value (written ``+2%``),
            else it is in the figure's unit (``+0`` bytes, ``-1`` dB).
        action: ``fail`` fails the test; ``warn`` only reports it.
        text: the limit as written, for tables.
        signed: the text gave the worse direction's sign (else :func:`limit_for` puts
            the figure's own).
    """

    amount: float
    relative: bool
    action: Action
    text: str
    signed: bool = True

    @classmethod
    def parse(cls, value: Any, where: str) -> Limit:
        """A limit from its text (``"+2%"``, ``"-1"``, ``"warn +50%"``) or table
        (``{limit = "+2%", action = "warn"}``).

        The sign is the worse direction and must match the figure's (checked by
        :func:`limit_for` and :func:`check_overrides`); here it is kept in ``text``.

        Raises:
            ConfigError: naming ``where`` and the accepted forms.
        """
        action: str | None = None
        if isinstance(value, Mapping):
            unknown = set(value) - {"limit", "action"}
            action = value.get("action")
            if unknown or action not in (None, "fail", "warn"):
                raise ConfigError(
                    f"{where}: a limit table has 'limit' and 'action' ('fail' or 'warn'); "
                    f"got {dict(value)}"
                )
            value = value.get("limit")
        match = _LIMIT.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f"{where}: limit {value!r} is not one of the forms '+2%', '+0', '-1', "
                "'warn +50%' (the sign is the worse direction; % makes it relative)"
            )
        amount = abs(float(match["amount"]))
        relative = match["pct"] is not None
        chosen: Action = "warn" if (action or match["action"]) == "warn" else "fail"
        text = match["amount"] + ("%" if relative else "")
        signed = text.startswith(("+", "-"))
        return cls(
            amount / 100 if relative else amount,
            relative,
            chosen,
            text if signed else "+" + text,
            signed,
        )

    def allows(self, change: float) -> bool:
        """Whether a change in the worse direction (>= 0 is worse) is within the limit."""
        return change <= self.amount + 1e-12


# Defaults by figure base name (see harness.report.figures); a pmu.* figure takes
# "pmu", anything unknown takes "*". Cycles may wobble a little when tools change;
# memory must not grow silently; accuracy is in its own units.
DEFAULT_LIMITS: dict[str, str] = {
    "snr_db": "-1",  # dB
    "max_lsb": "+1",  # quantization steps
    "top1": "-0.01",  # fraction of samples
    "vela.cycles_total": "+2%",
    "vela.cycles_npu": "+2%",
    "vela.inference_time_s": "+2%",
    "vela.sram_bytes": "+0",
    "vela.off_chip_flash_bytes": "+0",
    "pmu": "+2%",
    "pte_bytes": "+2%",
    "planned_memory_bytes": "+0",
    "execute_s": "warn +50%",  # wall time of a shared machine: report, never fail
    "*": "+2%",
}


# Changes smaller than this, in the figure's unit, are noise whatever the limit says:
# a 0.2 ms host execution that takes 0.35 ms on a busy machine is not a regression.
NOISE_FLOOR: dict[str, float] = {"execute_s": 0.005}


def _short(figure: str) -> str:
    return base_name(figure).rpartition(".")[2]


def limit_for(figure: str, overrides: Iterable[Mapping[str, Any]] = (), where: str = "") -> Limit:
    """The limit of ``figure``: the last override that names it, else the default.

    An override key names a figure exactly (``snr_db@eager_float``), by base name
    (``snr_db``, ``vela.cycles_total``) or by its last part (``cycles_total``).
    """
    keys = (
        figure,
        base_name(figure),
        _short(figure),
        *(("pmu",) if figure.startswith("pmu.") else ()),
    )
    chosen: Any = None
    for table in overrides:
        for key in keys:
            if key in table:
                chosen = table[key]
                break
    if chosen is None:
        base = base_name(figure)
        chosen = DEFAULT_LIMITS.get(base) or (
            DEFAULT_LIMITS["pmu"] if base.startswith("pmu.") else DEFAULT_LIMITS["*"]
        )
    limit = Limit.parse(chosen, where or f"limit of {figure}")
    if problem := _sign_problem(figure, limit):
        raise ConfigError(f"{where or 'limit'}: {problem}")
    if not limit.signed:  # unsigned: the figure's worse direction
        sign = "+" if higher_is_worse(figure) else "-"
        limit = dataclasses.replace(limit, text=sign + limit.text[1:], signed=True)
    return limit


def _is_pmu(key: str) -> bool:
    base = base_name(key)
    return base == "pmu" or base.startswith("pmu.") or base in PMU_FIGURES


def _known_key(key: str) -> bool:
    """Whether an override key names a figure (exactly, by base or by last part)."""
    base = base_name(key)
    return _is_pmu(key) or any(b == base or _short(b) == base for b in HIGHER_IS_WORSE)


def _sign_problem(key: str, limit: Limit) -> str | None:
    """Why a limit's sign contradicts its figure's worse direction (None: it does not)."""
    known = [b for b in HIGHER_IS_WORSE if b in (key, base_name(key)) or _short(b) == key]
    if _is_pmu(key):
        worse_up = True
    elif known:
        worse_up = higher_is_worse(known[0])
    else:
        return None  # a figure this version does not know: no direction to check
    sign = "+" if worse_up else "-"
    if limit.signed and limit.text[0] != sign:
        direction = "larger" if worse_up else "smaller"
        return (
            f"limit {limit.text!r} for {key}: a {direction} {key} is worse, so its limit "
            f"is written '{sign}{limit.text[1:]}'"
        )
    return None


def check_overrides(table: Mapping[str, Any], where: str) -> list[str]:
    """Problems of a limits table (a board file's ``[baseline]``, a marker's arguments)."""
    problems = []
    for key, value in table.items():
        try:
            limit = Limit.parse(value, f"{where}: {key}")
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not _known_key(str(key)):
            problems.append(
                f"{where}: {key}: no such figure (figures: {', '.join(HIGHER_IS_WORSE)}, "
                f"pmu, pmu.<counter>, their last parts, and NAME@QUALIFIER)"
            )
        elif problem := _sign_problem(str(key), limit):
            problems.append(f"{where}: {problem}")
    return problems


@dataclasses.dataclass(frozen=True)
class Change:
    """One figure of one test against its baseline.

    Attributes:
        figure: the figure's name.
        baseline: its baseline value (None: new figure).
        now: its value in this run (None: missing from this run).
        change: now - baseline, as a fraction of the baseline for relative limits.
        limit: the limit's text.
        kind: regression (fails), warning (a regression whose limit only warns),
            improvement, new or missing.
        action: the limit's action.
    """

    figure: str
    baseline: float | None
    now: float | None
    change: float | None
    limit: str
    kind: ChangeKind
    action: Action

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the results writer turns infinities into strings)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        """A change as a results file holds it (infinities as strings: 'inf')."""
        return cls(
            figure=str(data.get("figure")),
            baseline=number(data.get("baseline")),
            now=number(data.get("now")),
            change=number(data.get("change")),
            limit=str(data.get("limit")),
            kind=data.get("kind", "regression"),
            action=data.get("action", "fail"),
        )


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
                entry = json.loads(line)
                key = (str(entry["test"]), str(entry["board"]))
                figures = {str(k): float(v) for k, v in entry["figures"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(
                    f"baseline {path}:{line_no}: not a baseline entry "
                    '({"test": ..., "board": ..., "figures": {...}}): ' + f"{exc}"
                ) from exc
            entries[key] = figures
        return cls(entries, path)

    def entry(self, test: str, board: str | None) -> dict[str, float] | None:
        """The figures of ``test`` on ``board``, or None when the baseline has none."""
        return self.entries.get((test, board or ""))

    def changes_for(
        self, record: Mapping[str, Any], overrides: Iterable[Mapping[str, Any]] = ()
    ) -> list[Change] | None:
        """A record's changes against its entry (None: no entry for it)."""
        old = self.entry(str(record.get("test")), record.get("board"))
        if old is None:
            return None
        return compare_figures(figures_of(record), old, overrides)

    def update(
        self,
        records: Iterable[Mapping[str, Any]],
        overrides_for: Callable[[str], Iterable[Mapping[str, Any]]] = lambda board: (),
    ) -> dict[str, int]:
        """Take the figures of tests that passed (or were skipped after building,
        as under ``--build-only``, or failed only by a baseline regression) from ``records``.

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
            accepted = record.get("failure_class") == "regression"
            if record.get("outcome") not in ("passed", "skipped") and not accepted:
                continue
            now = {k: _round(v) for k, v in figures_of(record).items()}
            if not now:  # skipped before anything was built
                continue
            key = (str(record.get("test")), str(record.get("board") or ""))
            overrides = list(overrides_for(key[1]))
            old = self.entries.get(key, {})
            # A build-only record has no run figures: keep the entry's, not drop them.
            merged = dict(old) if record.get("ran") is False else {}
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
