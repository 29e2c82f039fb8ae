"""Render a page in headless Chromium: a screenshot, its console messages, whether it loaded.

Chromium runs twice, each time as its own process group with a time limit (the
whole group is killed on timeout, renderers included, so nothing is left behind):

1. ``--screenshot``, with ``--enable-logging=stderr``: the page's console
   messages and uncaught exceptions come out as ``CONSOLE`` lines on stderr,
   a page that did not load as ``Page load failed``;
2. ``--dump-dom``: the page's DOM after its scripts ran, to check its content.

Chromium's log gives every console message the same level (INFO), whether the
page called ``console.log`` or ``console.error``: a report page logs nothing when
all is well, so every console message counts as a problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from et_hil import processes
from et_hil.errors import HarnessError

# Debian's packages: the headless shell is the small one, made for this.
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "apt-get install chromium-headless-shell (or chromium)"
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(?P<text>.*)")
_LOAD_FAILED = re.compile(r"(Page load failed|Failed to load|net::ERR_\w+)")


class BrowserUnavailable(HarnessError):
    """No headless Chromium here; the message names the package to install."""


@dataclasses.dataclass(frozen=True)
class PageCheck:
    """What rendering a page showed.

    Attributes:
        page: the file rendered.
        screenshot: the PNG written (None when Chromium wrote none).
        loaded: Chromium loaded the page and its DOM has a body.
        console: the page's console messages and uncaught exceptions.
        load_errors: Chromium's lines saying the page or a resource did not load.
        dom: the page's DOM after its scripts ran ('' when not dumped).
    """

    page: Path
    screenshot: Path | None
    loaded: bool
    console: list[str]
    load_errors: list[str]
    dom: str

    @property
    def ok(self) -> bool:
        """Loaded, shot, and nothing on the console."""
        return self.loaded and self.screenshot is not None and not self.console

    def problems(self) -> list[str]:
        """What went wrong, one line each (empty when :attr:`ok`)."""
        found = [f"console: {line}" for line in self.console]
        found += [f"load: {line}" for line in self.load_errors]
        if not self.loaded:
            found.append(f"{self.page} did not load")
        if self.screenshot is None:
            found.append("no screenshot was written")
        return found


def find_browser() -> Path:
    """The headless Chromium to use (``$ET_HIL_CHROMIUM`` first, then :data:`BROWSERS`).

    Raises:
        BrowserUnavailable: none is installed.
    """
    wanted = os.environ.get("ET_HIL_CHROMIUM")
    for name in ([wanted] if wanted else []) + list(BROWSERS):
        found = shutil.which(name) or (name if Path(name).is_absolute() else None)
        if found and Path(found).is_file():
            return Path(found)
    raise BrowserUnavailable(
        f"no headless Chromium found (looked for {', '.join(BROWSERS)}); {INSTALL_HINT}"
    )


def _run(command: Sequence[str], timeout_s: float) -> tuple[int, str, str]:
    """Run ``command`` in its own process group (its renderers and helpers share
    it: one kill ends all); on timeout kill the group and raise."""
    process = processes.start(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        processes.kill_group(process)
        # Read the pipes to their end: then every process of the group that
        # held them (renderers, helpers) is gone too, not only the browser.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=processes.REAP_S)
        raise HarnessError(
            f"Chromium did not finish within {timeout_s:g} s: {' '.join(command[-2:])}"
        ) from None
    finally:
        # At the time limit, the whole browser; after it, helpers that outlived
        # it (zygotes), still in its group.
        processes.kill_group(process)
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def render(
    page: Path,
    screenshot: Path,
    *,
    window: tuple[int, int] = (1400, 3000),
    timeout_s: float = 60.0,
    browser: Path | None = None,
) -> PageCheck:
    """Render ``page`` in headless Chromium, writing a PNG screenshot to ``screenshot``.

    Raises:
        BrowserUnavailable: no Chromium is installed.
        HarnessError: Chromium did not finish within ``timeout_s`` (it was killed).
    """
    chromium = browser or find_browser()
    url = page.resolve().as_uri()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="et-hil-chromium-") as profile:
        # A fresh profile each time: a shared one is locked by a concurrent Chromium.
        common = [
            str(chromium),
            "--headless",
            "--no-sandbox",  # containers run as root, where Chromium's sandbox refuses
            "--disable-gpu",
            "--disable-dev-shm-usage",  # small /dev/shm in containers
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
        ]
        _, _, err = _run(
            [
                *common,
                f"--screenshot={screenshot}",
                f"--window-size={window[0]},{window[1]}",
                "--enable-logging=stderr",
                "--v=0",
                url,
            ],
            timeout_s,
        )
        _, dom, dom_err = _run([*common, "--dump-dom", url], timeout_s)
    console = [m.group("text") for m in map(_CONSOLE.search, err.splitlines()) if m]
    load_errors = [
        line.strip() for line in (err + dom_err).splitlines() if _LOAD_FAILED.search(line)
    ]
    shot = screenshot if screenshot.is_file() and screenshot.stat().st_size > 0 else None
    loaded = "<body" in dom and not load_errors
    return PageCheck(page, shot, loaded, console, load_errors, dom)
