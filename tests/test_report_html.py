"""Tests of ``et-hil report``: et_hil.report.html, .plots and .browser.

The records come from real runs (tests/data/report/README.txt): ``host_tosa.jsonl``
from ``pytest suites --et-board=host --et-board=tosa`` and ``build_only_corstone320.jsonl``
from ``pytest suites --et-board=host --et-board=corstone320 --et-build-only``. Failing,
quarantined and baseline records are derived from them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from et_hil.cli import main
from et_hil.errors import ConfigError, HarnessError
from et_hil.report import browser
from et_hil.report.figures import case_name
from et_hil.report.html import load_runs, render_report, write_report
from et_hil.report.results import record_lines
from et_hil.verdict.debug import DivergenceReport, LayerMetrics, LayerRow

DATA = Path(__file__).parent / "data" / "report"
HOST_TOSA = DATA / "host_tosa.jsonl"
BUILD_ONLY = DATA / "build_only_corstone320.jsonl"
HOSTILE = '<script>alert("x")</script> & </pre>'


class _Tables(HTMLParser):
    """Each ``<table>``'s rows as (text, class) cells, by the table's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self._table: list[list[tuple[str, str]]] | None = None
        self._cell: list[str] | None = None
        self._cell_class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attr.get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell, self._cell_class = [], attr.get("class") or ""
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append(("".join(self._cell).strip(), self._cell_class))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[tuple[str, str]]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def records(path: Path) -> list[dict[str, Any]]:
    """A results file's records as plain JSON, for the tests to derive others from."""
    return [json.loads(line.text) for line in record_lines(path)]


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def divergence() -> dict[str, Any]:
    """A per-layer table as the debug pass writes it to the record (as_dict form)."""
    ok = LayerMetrics(max_abs=0.01, snr_db=40.0, cosine=0.999, max_lsb=1.0)
    bad = LayerMetrics(max_abs=0.9, snr_db=3.5, cosine=0.7, max_lsb=12.0)
    own = LayerMetrics(max_abs=0.7, snr_db=4.0, cosine=0.8, max_lsb=11.0)
    rows = [
        LayerRow(0, "conv", "conv1", "aten.convolution", "delegate 0", 0.01, ok, ok, True,
                 local=ok),
        LayerRow(1, "relu", "act<1>", "aten.relu", "delegate 0", 0.01, bad, bad, False,
                 local=own),
        LayerRow(2, "fc", "fc", "aten.linear", "cpu", None, None, None, None),
    ]  # fmt: skip
    report = DivergenceReport("Chain", "tosa", True, "1 LSB", rows, 1, 1, {"total_s": 1.0})
    return report.as_dict()


def failing_run(tmp_path: Path) -> list[dict[str, Any]]:
    """The host_tosa run with: a numeric mismatch (log on disk, repro, debug table, a
    hostile message), a crash whose run folder is gone, and a quarantined failure."""
    rows = records(HOST_TOSA)
    ran = [r for r in rows if r["outcome"] == "passed" and r["board"] == "tosa"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "fvp.log").write_text("".join(f"log line {i}\n" for i in range(100)))
    ran[0].update(
        outcome="failed",
        failure_class="numeric_mismatch",
        message=f"snr 3.5 dB below 30 dB {HOSTILE}",
        run_dir=str(run_dir),
        repro=str(tmp_path / "repro" / "case-1"),
        debug=divergence(),
    )
    ran[1].update(
        outcome="error",
        failure_class="crash",
        message="runner crashed: HardFault",
        run_dir=str(tmp_path / "gone"),
        repro=None,
    )
    ran[2].update(
        outcome="failed",
        failure_class="timeout",
        message="took 61 s",
        quarantine={"reason": "flaky FVP start", "issue": "https://x.test/1", "expires": "2027"},
    )
    return rows


def with_baseline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give the first ran records baseline changes of every kind."""
    ran = [r for r in rows if r.get("comparisons")]
    ran[0]["baseline"] = {
        "file": "baseline.json",
        "changes": [
            {
                "figure": "pte_bytes",
                "baseline": 1000,
                "now": 1050,
                "change": 0.05,
                "limit": "+2%",
                "kind": "regression",
                "action": "fail",
            },
            {
                "figure": "snr_db@eager_float",
                "baseline": 40.0,
                "now": 38.5,
                "change": -1.5,
                "limit": "-1",
                "kind": "warning",
                "action": "warn",
            },
        ],
    }
    ran[1]["baseline"] = {
        "file": "baseline.json",
        "changes": [
            {
                "figure": "pte_bytes",
                "baseline": 2000,
                "now": 1800,
                "change": -0.1,
                "limit": "+2%",
                "kind": "improvement",
                "action": "fail",
            },
            {
                "figure": "vela.cycles_total",
                "baseline": None,
                "now": 5000,
                "change": None,
                "limit": "+2%",
                "kind": "new",
                "action": "fail",
            },
        ],
    }
    return rows


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = render_report(load_runs([BUILD_ONLY, HOST_TOSA]))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page
    assert "@import" not in page
    sources = re.findall(r"""<img[^>]*\ssrc=['"]([^'"]*)""", page)
    assert sources
    assert all(s.startswith("data:image/png;base64,") for s in sources)


def test_the_matrix_has_a_row_per_case_and_a_column_per_board() -> None:
    rows = records(HOST_TOSA)
    found = tables(render_report(load_runs([HOST_TOSA])))["matrix"]
    assert [text for text, _ in found[0]] == ["test", "host", "tosa"]
    expected = {case_name(r["test"], r["board"]) for r in rows}
    assert [row[0][0] for row in found[1:]] == sorted(expected)
    outcomes = {(case_name(r["test"], r["board"]), r["board"]): r["outcome"] for r in rows}
    for row in found[1:]:
        for (text, cls), board in zip(row[1:], ["host", "tosa"], strict=True):
            assert text == outcomes[(row[0][0], board)]
            assert cls == f"o-{text}"


def test_a_build_only_cell_says_built() -> None:
    rows = records(BUILD_ONLY)
    built = {
        (case_name(r["test"], r["board"]), r["board"])
        for r in rows
        if r.get("ran") is False and r.get("artifact")
    }
    assert built  # --et-build-only records: every program was made, nothing ran
    found = tables(render_report(load_runs([BUILD_ONLY])))["matrix"]
    boards = [text for text, _ in found[0][1:]]
    for row in found[1:]:
        for (text, cls), board in zip(row[1:], boards, strict=True):
            if (row[0][0], board) in built:
                assert (text, cls) == ("built", "o-skipped")


def test_failure_cells_name_their_class_and_quarantine_is_marked(tmp_path: Path) -> None:
    rows = failing_run(tmp_path)
    found = tables(render_report(load_runs([write_jsonl(tmp_path / "r.jsonl", rows)])))
    cells = {cell for row in found["matrix"][1:] for cell in row[1:]}
    assert ("failed numeric_mismatch", "o-failed") in cells
    assert ("error crash", "o-error") in cells
    assert ("quarantined timeout", "o-quarantined") in cells
    # The rows to look at first: failures, then quarantined, then the rest by name.
    assert [row[2][1] for row in found["matrix"][1:4]] == ["o-error", "o-failed", "o-quarantined"]
    assert all(row[2][1] != "o-failed" for row in found["matrix"][4:])
    counts = {row[0][0]: [t for t, _ in row[1:]] for row in found["counts"][1:]}
    # passed, failed, error, skipped, quarantined
    assert counts["tosa"][1:3] == ["1", "1"]
    assert counts["tosa"][4] == "1"


def test_failures_show_message_log_tail_repro_and_divergence_table(tmp_path: Path) -> None:
    page = render_report(load_runs([write_jsonl(tmp_path / "r.jsonl", failing_run(tmp_path))]))
    failures = page[page.index("<h2>Failures (3)</h2>") :]
    assert "snr 3.5 dB below 30 dB" in failures
    assert "runner crashed: HardFault" in failures
    assert "log line 99" in failures  # the tail of the log in run_dir
    assert "log line 10\n" not in failures  # only the tail
    assert f"{tmp_path / 'gone'} is gone or has no *.log" in failures
    assert str(tmp_path / "repro" / "case-1") in failures
    assert "quarantined: flaky FVP start" in failures
    # Real failures come first, the quarantined one last.
    assert failures.index("HardFault") < failures.index("took 61 s")
    debug = tables(page)["debug"]
    assert [t for t, _ in debug[2]][1:] == [
        "act<1> aten.relu",
        "relu",
        "delegate 0",
        "11 LSB, 4.0 dB",  # the layer's own error
        "12 LSB, 3.5 dB",  # accumulated
        "12 LSB, 3.5 dB",  # against float
        "DIVERGES",
    ]
    # and the errors against depth, as an image in the page
    assert "alt='Per-layer error of Chain on tosa'" in page
    assert "first divergent layer: #1 act&lt;1&gt; aten.relu" in page


def test_text_from_records_is_escaped(tmp_path: Path) -> None:
    rows = failing_run(tmp_path)
    rows[0]["test"] = rows[0]["test"].replace("[", "[<b>bold</b>-")
    rows[0]["versions"]["torch"] = "<img src=x onerror=alert(1)>"
    page = render_report(load_runs([write_jsonl(tmp_path / "r.jsonl", rows)]), title="<i>t</i>")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;/pre&gt;" in page
    assert "<script>alert" not in page
    assert "<b>bold</b>" not in page
    assert "<img src=x" not in page
    assert "<i>t</i>" not in page
    assert page.count("<script") == 1  # the page's own (it logs plots that fail to load)


def test_plots_are_inlined_and_a_plot_without_data_says_why() -> None:
    page = render_report(load_runs([HOST_TOSA]))
    assert "alt='Accuracy: the 40 worst cases per board (SNR vs eager float)'" in page
    assert "alt='Accuracy: distribution per board (SNR vs eager float)'" in page
    assert "Vela estimates per model: cycles and SRAM: left out, no record has Vela" in page
    assert "Trend over runs: left out, a trend needs several results files" in page
    build_only = render_report(load_runs([BUILD_ONLY]))
    assert "alt='Vela estimates per model: cycles and SRAM'" in build_only
    assert "Accuracy: distribution per board (SNR vs eager float): left out" in build_only


def test_baseline_changes_are_a_table_and_a_plot(tmp_path: Path) -> None:
    rows = with_baseline(records(HOST_TOSA))
    page = render_report(load_runs([write_jsonl(tmp_path / "r.jsonl", rows)]))
    changes = [[t for t, _ in row] for row in tables(page)["changes"]]
    assert changes[0] == [
        "kind",
        "test",
        "board",
        "figure",
        "baseline",
        "now",
        "change",
        "limit",
        "action",
    ]
    assert [row[0] for row in changes[1:]] == ["regression", "warning", "improvement", "new"]
    assert changes[1][3:8] == ["pte_bytes", "1000", "1050", "+5.00%", "+2%"]
    assert changes[2][3:8] == ["snr_db@eager_float", "40", "38.5", "-1.5", "-1"]
    assert changes[4][4:7] == ["-", "5000", "-"]
    assert "alt='Changes against the baseline'" in page
    # Given explicitly, the changes replace those of the records.
    page = render_report(load_runs([HOST_TOSA]), baseline_changes=[])
    assert "no change against a baseline" in page


def test_several_files_make_a_trend_and_the_newest_is_the_current_run(tmp_path: Path) -> None:
    older = records(HOST_TOSA)
    for r in older:
        r["finished_at"] = r["finished_at"].replace("2026-12-02", "2026-11-30")
        if r["outcome"] == "passed" and r["board"] == "host":
            r["outcome"] = "failed"
    runs = load_runs([HOST_TOSA, write_jsonl(tmp_path / "older.jsonl", older), BUILD_ONLY])
    assert [run.path.name for run in runs] == [
        "older.jsonl",
        "build_only_corstone320.jsonl",
        "host_tosa.jsonl",
    ]
    page = render_report(runs)
    assert "alt='Trend over runs'" in page
    assert "3 runs" in page
    assert "no test failed" in page  # the current run's


def test_several_files_say_which_became_the_run_or_merge_into_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two boards of one run, each its own results file (as two CI jobs write them).
    rows = records(HOST_TOSA)
    host = write_jsonl(tmp_path / "host.jsonl", [r for r in rows if r["board"] == "host"])
    tosa = write_jsonl(tmp_path / "tosa.jsonl", [r for r in rows if r["board"] == "tosa"])
    page = tmp_path / "report.html"
    assert main(["report", str(host), str(tosa), "-o", str(page)]) == 0
    out = capsys.readouterr().out
    newest = max((host, tosa), key=lambda p: max(r["finished_at"] for r in records(p)))
    assert f"2 results files: the newest, {newest}, is the current run" in out
    assert "pass --merge (or merge first: et-hil merge FILES -o merged.jsonl)" in out

    assert main(["report", str(host), str(tosa), "--merge", "-o", str(page)]) == 0
    out = capsys.readouterr().out
    assert f"{len(rows)} records of merged: {host}, {tosa}, 1 runs" in out
    text = page.read_text()
    assert ">host<" in text
    assert ">tosa<" in text


@pytest.mark.parametrize(
    "content",
    [None, "", "not json\n", '{"test": "t", "outcome": "passed", "duration_s": "long"}\n'],
)
def test_a_missing_empty_or_malformed_results_file_is_a_clear_error(
    tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_runs([HOST_TOSA, path])
    assert main(["report", str(HOST_TOSA), str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("et-hil: error: results file ")
    assert str(path) in err
    if content:  # a line that is not a record: named, with why, not a traceback
        assert f"{path}, line 1: not a result record" in err
        assert "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_the_command_writes_the_page_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(HOST_TOSA), str(BUILD_ONLY), "-o", str(out), "--title", "T"]) == 0
    said = capsys.readouterr().out.strip().splitlines()
    assert said[-1] == f"wrote {out}: 38 records of {HOST_TOSA}, 2 runs"
    assert said[0].startswith(f"2 results files: the newest, {HOST_TOSA}, is the current run")
    assert "<title>T</title>" in out.read_text()


def test_a_missing_browser_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("ET_HIL_CHROMIUM", raising=False)
    with pytest.raises(browser.BrowserUnavailable, match="apt-get install chromium-headless-shell"):
        browser.find_browser()


def test_a_browser_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    pids = tmp_path / "pids"
    fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $$ $! > {pids}\nwait\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(HarnessError, match="did not finish within 1 s"):
        browser.render(tmp_path / "p.html", tmp_path / "p.png", timeout_s=1, browser=fake)
    for pid in map(int, pids.read_text().split()):
        status = Path(f"/proc/{pid}/status")
        # Gone, or a zombie waiting for init to reap it: not running either way.
        assert not status.exists() or "\nState:\tZ" in status.read_text()


def _browser_or_skip() -> Path:
    try:
        return browser.find_browser()
    except browser.BrowserUnavailable as exc:
        if os.environ.get("ET_HIL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ET_HIL_REQUIRE_BROWSER=1 and {exc}")
        pytest.skip(str(exc))


@pytest.mark.browser
def test_the_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    current = tmp_path / "current.jsonl"
    write_jsonl(current, with_baseline(failing_run(tmp_path)))
    page = write_report(load_runs([BUILD_ONLY, HOST_TOSA, current]), tmp_path / "report.html")
    check = browser.render(page, tmp_path / "report.png", browser=chromium)
    if artifacts := os.environ.get("ET_HIL_ARTIFACTS_DIR"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "report.png", Path(artifacts) / "report.png")
    assert check.problems() == []
    assert check.ok
    assert "Failures (3)" in check.dom
    assert check.dom.count("<img") >= 4

    import matplotlib.image

    pixels = matplotlib.image.imread(str(check.screenshot))
    height, width = pixels.shape[:2]
    assert (width, height) == (1400, 3000)
    gray = pixels[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not one flat colour
    assert (gray < 0.5).mean() > 0.005  # some dark pixels: text was drawn


@pytest.mark.browser
def test_script_in_a_results_file_renders_as_text_in_chromium(tmp_path: Path) -> None:
    # Results files travel (CI artifacts, mail): one made to attack the reader.
    chromium = _browser_or_skip()
    attack = "<script>document.title='pwned';console.log('pwned')</script>"
    image = "<img src=x onerror=\"console.log('pwned-img')\">"
    rows = failing_run(tmp_path)
    failed = next(r for r in rows if r["failure_class"] == "numeric_mismatch")
    failed["test"] = failed["test"].replace("[", f"[{attack}-", 1)
    failed["message"] = f"outputs differ {attack} {image}"
    failed["board"] = "tosa"
    page = write_report(
        load_runs([write_jsonl(tmp_path / "hostile.jsonl", rows)]),
        tmp_path / "report.html",
        title="et-hil report",
    )
    check = browser.render(page, tmp_path / "report.png", browser=chromium)
    assert check.problems() == []  # nothing logged: neither payload ran
    assert "<title>et-hil report</title>" in check.dom  # the title was not rewritten
    # The payloads are on the page as text, escaped in the DOM Chromium built.
    assert "&lt;script&gt;document.title='pwned';console.log('pwned')&lt;/script&gt;" in check.dom
    assert "&lt;img src=x onerror=" in check.dom
    assert "<script>document.title" not in check.dom
    assert '<img src="x"' not in check.dom


@pytest.mark.browser
def test_a_page_whose_script_fails_is_reported(tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>nope();</script></body></html>")
    check = browser.render(page, tmp_path / "bad.png", browser=chromium, window=(400, 300))
    assert not check.ok
    assert check.loaded
    assert any("Uncaught ReferenceError: nope is not defined" in c for c in check.console)


def test_failures_beyond_the_detailed_ones_are_listed_one_line_each(tmp_path: Path) -> None:
    base = next(r for r in records(HOST_TOSA) if r["outcome"] == "passed")
    rows = []
    for i in range(230):
        r = copy.deepcopy(base)
        r.update(
            test=f"suites/t.py::test_x[host-case{i:03}]",
            outcome="failed",
            failure_class="crash",
            message=f"boom {i}\nsecond line",
        )
        rows.append(r)
    page = render_report(load_runs([write_jsonl(tmp_path / "r.jsonl", rows)]))
    assert page.count("<article") == 200
    assert "30 more failures, one line each" in page
    assert "<tr id='f229'>" in page
    assert "href='#f229'" in page  # the matrix links each failure


@pytest.mark.browser
def test_the_command_takes_a_screenshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _browser_or_skip()
    out, shot = tmp_path / "report.html", tmp_path / "shot.png"
    assert main(["report", str(HOST_TOSA), "-o", str(out), "--screenshot", str(shot)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"screenshot {shot}"
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
