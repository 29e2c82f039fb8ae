"""``et-hil report``: one self-contained HTML page of one or more results files.

One results file is one run. The newest run (by its latest ``finished_at``) is the
*current* run: the header, the board x test matrix, the failures, the baseline
changes and the per-run plots are about it; every run makes the trend plot.

The page stands on its own: CSS inline, plots as ``data:`` URIs, no external URL.
Its one script only logs a plot that failed to load, so that a browser check
(:mod:`et_hil.report.browser`) sees it; the page needs no script to be read.
Every text from a record is escaped: messages and logs hold arbitrary bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from et_hil.errors import ConfigError
from et_hil.report.baseline import ChangeRow, change_text, recorded_changes
from et_hil.report.figures import case_name, number
from et_hil.report.plots import Plot
from et_hil.report.record import Record
from et_hil.report.record_parts import DebugRecord, LayerMetricsRecord
from et_hil.report.results import read_records

OUTCOMES = ("passed", "failed", "error", "skipped", "quarantined")
DETAILED_FAILURES = 200  # beyond this, failures are listed one line each (page size, time)
LOG_LINES = 40
LOG_BYTES = 16_384  # only a log's end is read: logs of long runs are large
DEBUG_ROWS = 60
CHANGE_ROWS = 1000
CHANGE_KINDS = ("regression", "warning", "improvement", "new", "missing")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclasses.dataclass(frozen=True)
class Run:
    """One results file: its records and when its last test finished."""

    path: Path
    records: list[Record]

    @property
    def finished_at(self) -> str:
        """The latest ``finished_at`` of its records ('' when none has one)."""
        return max((r.finished_at for r in self.records), default="")

    @property
    def started_at(self) -> str:
        """The earliest ``finished_at`` of its records (the run's first test ended then)."""
        return min((r.finished_at for r in self.records), default="")

    @property
    def label(self) -> str:
        """A short name for plots: the file's name and the time the run ended."""
        return f"{self.path.stem} {self.finished_at[:16]}".strip()


def _when(stamp: str) -> datetime.datetime:
    """A ``finished_at`` as a time that compares across time zones (bad ones first)."""
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def load_runs(paths: Iterable[Path | str]) -> list[Run]:
    """Read results files, one run each, oldest first (the last one is the current run).

    Raises:
        ConfigError: a file is missing, is not a file, holds no record, or has a
            line that is not one.
    """
    runs = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise ConfigError(f"results file {path} not found")
        if not path.is_file():
            raise ConfigError(f"results file {path} is not a file")
        records = list(read_records(path))
        if not records:
            raise ConfigError(f"results file {path} holds no result record (empty or torn)")
        runs.append(Run(path, records))
    if not runs:
        raise ConfigError("no results file given")
    return sorted(runs, key=lambda run: _when(run.finished_at))


def write_report(
    runs: Sequence[Run],
    out_path: Path,
    *,
    title: str = "et-hil report",
    baseline_changes: Sequence[ChangeRow] | None = None,
) -> Path:
    """Write the page of ``runs`` (oldest first, as :func:`load_runs` gives) to ``out_path``.

    Args:
        runs: the runs; the last is the current one.
        out_path: the ``.html`` file (its folder is created).
        title: the page's title.
        baseline_changes: changes against a baseline with their ``test`` and
            ``board``; None: those the current run's records carry.

    Raises:
        ConfigError: no run, or ``out_path`` cannot be written.
    """
    text = render_report(runs, title=title, baseline_changes=baseline_changes)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"report {out_path}: cannot write it ({exc.strerror})") from exc
    return out_path


def render_report(
    runs: Sequence[Run],
    *,
    title: str = "et-hil report",
    baseline_changes: Sequence[ChangeRow] | None = None,
) -> str:
    """The page of ``runs`` as HTML text (see :func:`write_report`)."""
    if not runs:
        raise ConfigError("no results to report")
    current = runs[-1]
    latest = latest_records(current.records)
    changes = list(baseline_changes) if baseline_changes is not None else recorded_changes(latest)
    body = [
        _header(title, runs, latest),
        _matrix(latest),
        _failures(latest),
        _changes(changes),
        _plots(runs, latest, changes),
    ]
    return _PAGE.format(title=_e(title), css=_CSS, body="\n".join(body), script=_SCRIPT)


def latest_records(records: Sequence[Record]) -> list[Record]:
    """One record per test and board: the last written (a rerun replaces a result)."""
    chosen: dict[tuple[str, str], Record] = {}
    for record in records:
        chosen[(record.test, str(record.board))] = record
    return list(chosen.values())


# -- small helpers -----------------------------------------------------------------------


def _e(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A number as a person reads it (4 significant digits); other values as text."""
    if value is None:
        return "-"
    found = number(value)
    return _e(value) if found is None else _e(f"{found:.4g}")


def _board(record: Record) -> str:
    return record.board or "-"


def _case(record: Record) -> str:
    return case_name(record.test, record.board)


def _outcome(record: Record) -> str:
    """The outcome a person should see: a quarantined failure is not a failure
    (an expired entry's failure is a failure)."""
    return "quarantined" if record.quarantined else record.outcome


def _table(header: Sequence[str], rows: Iterable[str], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _first_line(text: str, limit: int = 240) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- header ------------------------------------------------------------------------------


def _header(title: str, runs: Sequence[Run], records: Sequence[Record]) -> str:
    current = runs[-1]
    boards = sorted({_board(r) for r in records})
    counts = Counter(_outcome(r) for r in records)
    per_board = {b: Counter(_outcome(r) for r in records if _board(r) == b) for b in boards}
    run_ids = sorted({r.run_id for r in records if r.run_id})
    total = " · ".join(f'<span class="o-{o}">{counts[o]} {o}</span>' for o in OUTCOMES if counts[o])
    rows = [
        "<tr><td>{}</td>{}</tr>".format(
            _e(board), "".join(f"<td>{per_board[board][o] or ''}</td>" for o in OUTCOMES)
        )
        for board in boards
    ]
    facts = [
        ("results", f"{_e(current.path)} ({len(records)} records)"),
        ("run", _e(", ".join(run_ids) or "-")),
        ("tests finished", f"{_e(current.started_at)} … {_e(current.finished_at)}"),
        ("boards", _e(", ".join(boards))),
        ("outcomes", total),
    ]
    if len(runs) > 1:
        facts.append(("trend", f"{len(runs)} runs, {_e(runs[0].label)} … {_e(current.label)}"))
    listed = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        f"<header><h1>{_e(title)}</h1><p class='small'>generated {_e(now)}</p>"
        f"<table class='facts'>{listed}</table>"
        f"<h3>Outcomes per board</h3>{_table(['board', *OUTCOMES], rows, 'counts')}"
        f"<h3>Tool versions</h3>{_versions(records)}</header>"
    )


def _versions(records: Sequence[Record]) -> str:
    """Each tool's version; several when the records disagree (a mixed run is worth seeing)."""
    pairs = Counter(
        (tool, str(version)) for record in records for tool, version in record.versions.items()
    )
    seen: dict[str, Counter[str]] = {}
    for (tool, version), count in pairs.items():
        seen.setdefault(tool, Counter())[version] = count
    if not seen:
        return "<p class='note'>no record names its tool versions</p>"
    rows = [
        f"<tr><td>{_e(tool)}</td><td>{_e(', '.join(v for v, _ in versions.most_common()))}</td>"
        "</tr>"
        for tool, versions in sorted(seen.items())
    ]
    return _table(["tool", "version"], rows, "versions")


# -- the board x test matrix ---------------------------------------------------------------


def _failure_ids(records: Sequence[Record]) -> dict[int, str]:
    """Anchor of each failure's entry in the failures section, by record identity."""
    return {id(r): f"f{i}" for i, r in enumerate(_failed(records))}


def _matrix(records: Sequence[Record]) -> str:
    boards = sorted({_board(r) for r in records})
    cells: dict[str, dict[str, Record]] = {}
    for record in records:
        cells.setdefault(_case(record), {})[_board(record)] = record
    anchors = _failure_ids(records)

    def rank(case: str) -> tuple[int, str]:
        # Thousands of rows: the ones to look at come first, then the rest by name.
        seen = {_outcome(r) for r in cells[case].values()}
        return (0 if seen & {"failed", "error"} else 1 if "quarantined" in seen else 2, case)

    rows = []
    for case in sorted(cells, key=rank):
        row = [f"<th>{_e(case)}</th>"]
        for board in boards:
            found = cells[case].get(board)
            row.append("<td class='o-none'>—</td>" if found is None else _cell(found, anchors))
        rows.append(f"<tr>{''.join(row)}</tr>")
    return (
        f"<section><h2>Results: {len(cells)} tests x {len(boards)} boards</h2>"
        "<p class='small'>failing tests first, then quarantined ones, then by name</p>"
        "<div class='scroll'>"
        f"{_table(['test', *boards], rows, 'matrix')}</div></section>"
    )


def _cell(record: Record, anchors: Mapping[int, str]) -> str:
    outcome = _outcome(record)
    text = _e(outcome)
    if outcome == "skipped" and record.ran is False and record.artifact:
        text = "built"  # --et-build-only: the program was made (and Vela's figures taken)
    if record.failure_class:
        text += f"<br><small>{_e(record.failure_class)}</small>"
    if id(record) in anchors:
        text = f"<a href='#{anchors[id(record)]}'>{text}</a>"
    tip = _first_line(record.message, 200)
    if outcome == "quarantined" and record.quarantine:
        tip = f"quarantined: {record.quarantine.reason}; {tip}"
    title = f" title='{_e(tip)}'" if tip else ""
    return f"<td class='o-{_e(outcome)}'{title}>{text}</td>"


# -- failures -------------------------------------------------------------------------------


def _failed(records: Sequence[Record]) -> list[Record]:
    """Failures and errors, real ones before quarantined ones, then by test and board."""
    failed = [r for r in records if r.outcome in ("failed", "error")]
    return sorted(failed, key=lambda r: (bool(r.quarantine), _case(r), _board(r)))


def _failures(records: Sequence[Record]) -> str:
    failed = _failed(records)
    if not failed:
        return "<section><h2>Failures</h2><p class='note'>no test failed</p></section>"
    parts = [f"<section><h2>Failures ({len(failed)})</h2>"]
    for i, record in enumerate(failed[:DETAILED_FAILURES]):
        parts.append(_failure(f"f{i}", record))
    rest = failed[DETAILED_FAILURES:]
    if rest:
        rows = [
            f"<tr id='f{i}'><td>{_e(_case(r))}</td><td>{_e(_board(r))}</td>"
            f"<td>{_e(r.failure_class or '')}</td>"
            f"<td>{_e(_first_line(r.message))}</td></tr>"
            for i, r in enumerate(rest, start=DETAILED_FAILURES)
        ]
        parts.append(f"<h3>{len(rest)} more failures, one line each</h3>")
        parts.append(_table(["test", "board", "class", "message"], rows))
    parts.append("</section>")
    return "".join(parts)


def _failure(anchor: str, record: Record) -> str:
    outcome = _outcome(record)
    parts = [
        f"<article id='{anchor}' class='failure'>",
        f"<h3><span class='badge o-{_e(outcome)}'>{_e(outcome)}</span> {_e(_case(record))} "
        f"<small>on {_e(_board(record))} · {_e(record.failure_class or '')}</small></h3>",
    ]
    if quarantine := record.quarantine:
        parts.append(
            f"<p class='quarantine'>quarantined: {_e(quarantine.reason)} · issue "
            f"{_e(quarantine.issue or '-')} · expires {_e(quarantine.expires or '-')}</p>"
        )
    model = record.artifact.model if record.artifact else None
    facts = [("test", record.test), ("model", model), ("repro", record.repro or None)]
    facts.append(("run folder", record.run_dir or None))
    parts.append(
        "<dl>"
        + "".join(f"<dt>{k}</dt><dd><code>{_e(v)}</code></dd>" for k, v in facts if v)
        + "</dl>"
    )
    parts.append(f"<pre class='message'>{_e(record.message or '(no message)')}</pre>")
    parts.append(_log_tail(record))
    if record.debug:
        parts.append(_debug(record.debug))
    parts.append("</article>")
    return "".join(parts)


def _tail(path: Path) -> str:
    """The last :data:`LOG_LINES` lines of a log, reading only its end."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - LOG_BYTES))
        data = f.read()
    lines = _ANSI.sub("", data.decode("utf-8", errors="replace")).splitlines()
    if size > LOG_BYTES and lines:
        lines = lines[1:]  # the first line read is probably cut
    return "\n".join(lines[-LOG_LINES:])


def _log_tail(record: Record) -> str:
    """The tails of the logs in the record's run folder, else a note: the message above is
    all the record has (the folder was temporary, or nothing ran)."""
    run_dir = record.run_dir or None
    logs = []
    if run_dir and Path(run_dir).is_dir():
        logs = sorted(p for p in Path(run_dir).glob("*.log") if p.is_file())
    if not logs:
        where = f"{run_dir} is gone or has no *.log" if run_dir else "the record has no run folder"
        return f"<p class='note'>no log on disk ({_e(where)}): the message above is the log</p>"
    parts = []
    for log in logs[:4]:
        try:
            text = _tail(log)
        except OSError as exc:
            text = f"(cannot read it: {exc.strerror})"
        parts.append(
            f"<details open><summary>log tail: <code>{_e(log)}</code></summary>"
            f"<pre class='log'>{_e(text)}</pre></details>"
        )
    return "".join(parts)


def _metrics(m: LayerMetricsRecord | None) -> str:
    if m is None:
        return "-"
    snr_text = "-" if m.snr_db is None else f"{m.snr_db:.1f} dB"
    if m.max_lsb is not None:
        return _e(f"{_fmt(m.max_lsb)} LSB, {snr_text}")
    return _e(f"max abs {_fmt(m.max_abs)}, {snr_text}")


def _divergence_plot(debug: DebugRecord) -> Plot:
    from et_hil.report import plots  # matplotlib is paid for when a page is made only

    return plots.divergence_plot(debug)


def _debug(debug: DebugRecord) -> str:
    """The per-layer divergence table."""
    if debug.error is not None and not debug.rows:
        return f"<p class='note'>the per-layer debug pass failed: {_e(debug.error)}</p>"
    rows = debug.rows
    first = next((i for i, r in enumerate(rows) if r.within is False), 0)
    start = max(0, first - DEBUG_ROWS // 2)
    shown = rows[start : start + DEBUG_ROWS]
    verdicts = {True: "ok", False: "DIVERGES", None: "not measured"}
    cells = []
    for r in shown:
        cls = " class='diverges'" if r.within is False else ""
        cells.append(
            f"<tr{cls}><td>{_e(r.index)}</td><td>{_e(r.name)}</td>"
            f"<td>{_e(r.node)}</td><td>{_e(r.where)}</td>"
            f"<td>{_metrics(r.local)}</td><td>{_metrics(r.vs_fake_quant)}</td>"
            f"<td>{_metrics(r.vs_float)}</td>"
            f"<td>{_e(verdicts[r.within])}</td></tr>"
        )
    cut = (
        f"<p class='note'>rows {start} to {start + len(shown) - 1} of {len(rows)}</p>"
        if len(shown) < len(rows)
        else ""
    )
    header = ["#", "layer", "node", "where", "on its own", "accumulated", "vs float", ""]
    return (
        f"<details open><summary>per-layer divergence ({_e(debug.model)}, limit "
        f"{_e(debug.limit or '-')})</summary><p>{_e(debug.summary)}</p>"
        f"{_plot(_divergence_plot(debug))}"
        f"{_table(header, cells, 'debug')}{cut}</details>"
    )


# -- changes against the baseline ------------------------------------------------------------


def _changes(changes: Sequence[ChangeRow]) -> str:
    heading = "<h2>Against the baseline</h2>"
    if not changes:
        return (
            f"<section>{heading}<p class='note'>no change against a baseline "
            "(no baseline given, or every figure within its limits)</p></section>"
        )
    order = {kind: i for i, kind in enumerate(CHANGE_KINDS)}
    ranked = sorted(
        changes,
        key=lambda c: (order.get(c.change.kind, len(order)), c.test, str(c)),
    )
    counts = Counter(c.change.kind for c in changes)
    files = sorted({c.file for c in changes if c.file})
    summary = " · ".join(f"<span class='k-{_e(k)}'>{n} {_e(k)}</span>" for k, n in counts.items())
    rows = [
        f"<tr class='k-{_e(c.change.kind)}'><td>{_e(c.change.kind)}</td>"
        f"<td>{_e(case_name(c.test, c.board))}</td>"
        f"<td>{_e(c.board or '-')}</td><td>{_e(c.change.figure)}</td>"
        f"<td>{_fmt(c.change.baseline)}</td><td>{_fmt(c.change.now)}</td>"
        f"<td>{_e(change_text(c.change))}</td><td>{_e(c.change.limit or '-')}</td>"
        f"<td>{_e(c.change.action)}</td></tr>"
        for c in ranked[:CHANGE_ROWS]
    ]
    cut = (
        f"<p class='note'>the first {CHANGE_ROWS} of {len(ranked)} changes</p>"
        if len(ranked) > CHANGE_ROWS
        else ""
    )
    header = ["kind", "test", "board", "figure", "baseline", "now", "change", "limit", "action"]
    return (
        f"<section>{heading}<p>{summary}"
        + (f" · baseline {_e(', '.join(files))}" if files else "")
        + f"</p><div class='scroll'>{_table(header, rows, 'changes')}</div>{cut}</section>"
    )


# -- plots ----------------------------------------------------------------------------------


def _plots(
    runs: Sequence[Run],
    records: Sequence[Record],
    changes: Sequence[ChangeRow],
) -> str:
    from et_hil.report import plots  # matplotlib is paid for when a page is made only

    # One colour per board on every plot, whatever boards each one shows.
    colours = plots.board_colours(_board(r) for run in runs for r in run.records)
    points = plots.points_of(records)
    made = [*plots.accuracy_plots(points, colours), plots.vela_plot(points, colours)]
    if changes:
        made.append(plots.baseline_plot(changes))
    else:
        made.append(Plot("Changes against the baseline", None, "no baseline comparison"))
    trend = [
        (run.label, points if run is runs[-1] else plots.points_of(latest_records(run.records)))
        for run in runs
    ]
    made.append(plots.trend_plot(trend, colours))
    return "<section><h2>Plots</h2>" + "".join(_plot(p) for p in made) + "</section>"


def _plot(plot: Plot) -> str:
    if plot.png is None:
        return f"<p class='note'>{_e(plot.title)}: left out, {_e(plot.note)}.</p>"
    data = base64.b64encode(plot.png).decode("ascii")
    note = f"<figcaption>{_e(plot.note)}</figcaption>" if plot.note else ""
    return (
        f"<figure><h3>{_e(plot.title)}</h3>"
        f"<img alt='{_e(plot.title)}' src='data:image/png;base64,{data}'>{note}</figure>"
    )


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{margin:.2em 0}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
thead th{background:#f3f3f3;position:sticky;top:0}
.matrix tbody th{font-weight:normal;font-family:monospace;font-size:12px;white-space:nowrap}
.matrix td{text-align:center;font-size:12px;white-space:nowrap}
.matrix a{color:inherit}
.scroll{overflow:auto;max-height:80vh;border:1px solid #eee}
.o-passed{background:#e3f4e3}.o-failed{background:#fbd5d5}.o-error{background:#f9c2a8}
.o-skipped{background:#f0f0f0;color:#666}.o-quarantined{background:#fff0c2}
.o-none{color:#bbb}
.badge{padding:0 .4em;border-radius:3px;font-size:80%}
.failure{border-left:4px solid #d33;padding:.1em .8em;margin:1em 0;background:#fcfcfc}
.failure dl{display:grid;grid-template-columns:max-content auto;gap:0 1em;margin:.3em 0}
.failure dt{color:#666}.failure dd{margin:0}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em;white-space:pre-wrap}
pre.log{max-height:48em}
.quarantine{background:#fff0c2;padding:.2em .5em}
.note{color:#666;font-style:italic}.small{color:#666;font-size:85%}
tr.diverges{background:#fbd5d5}
.k-regression{background:#fbd5d5}.k-warning{background:#fff0c2}
.k-improvement{background:#e3f4e3}.k-new,.k-missing{background:#eef}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
.facts th{background:none;text-align:right;color:#666}
"""

# Logs a plot that did not load: a browser check reads the console, a person sees
# the alt text anyway. Nothing else in the page needs a script.
_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = document.images;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) {
      console.error("et-hil report: a plot did not load: " + images[i].alt);
    }
  }
});
</script>"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
{body}
{script}
</body></html>
"""
