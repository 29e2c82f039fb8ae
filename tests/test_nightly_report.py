"""The report of `make nightly`, as CI makes it, opened in a real browser.

CI runs ``make nightly`` before the tests and points ``ET_HIL_NIGHTLY_DIR`` at its
output. The page must load in headless Chromium without a console error, and its
screenshot and DOM must show the board x test matrix and the plots of every board
the nightly ran.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from et_hil.report import browser

pytestmark = pytest.mark.browser


def nightly_dir() -> Path:
    folder = os.environ.get("ET_HIL_NIGHTLY_DIR")
    if not folder:
        pytest.skip("no nightly report: run `make nightly` and set ET_HIL_NIGHTLY_DIR (CI does)")
    return Path(folder)


def nightly_boards() -> set[str]:
    """The boards the nightly ran or built: those .ci/run chose for it (NIGHTLY_RUN_BOARDS,
    NIGHTLY_BUILD_BOARDS), else .ci/nightly's defaults."""
    run = os.environ.get("NIGHTLY_RUN_BOARDS", "host tosa qemu-m55 qemu-m55-cmsis")
    build = os.environ.get("NIGHTLY_BUILD_BOARDS", "corstone300 corstone300-u65 corstone320")
    return set(run.split()) | set(build.split())


def test_the_nightly_report_shows_the_matrix_and_plots_without_console_errors(tmp_path):
    folder = nightly_dir()
    page = folder / "report.html"
    assert page.is_file(), f"make nightly wrote no {page}"
    assert (folder / "report.png").stat().st_size > 20_000  # the screenshot make nightly took
    lines = (folder / "merged.jsonl").read_text().splitlines()
    boards = {json.loads(line)["board"] for line in lines}
    assert boards == nightly_boards()
    assert "corstone320" in boards  # a built board: its Vela estimates make two of the plots

    check = browser.render(page, tmp_path / "nightly.png")
    assert check.problems() == []
    assert check.ok
    html = check.dom
    assert "Results: " in html  # the matrix's heading
    for board in boards:
        assert f">{board}<" in html  # a column per board
    assert html.count("<img") >= 3  # accuracy, Vela cycles and SRAM, the trend
    assert "data:image/png;base64," in html
    if artifacts := os.environ.get("ET_HIL_ARTIFACTS_DIR"):
        shutil.copy(tmp_path / "nightly.png", Path(artifacts) / "nightly-report.png")
