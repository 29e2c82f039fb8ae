"""Open pages of the built site in headless Chromium: each must load with no console message,
and its screenshot is kept (``make docs`` runs this when Chromium is installed; CI keeps the
PNGs with its artifacts).

Usage: ``python docs/_ext/screenshots.py --site docs/_build/html --out DIR [PAGE.html ...]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("getting-started.html", "ci/report.html")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, required=True, help="the built site's folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the screenshots")
    parser.add_argument("pages", nargs="*", default=list(PAGES), help="pages, site-relative")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from et_hil.report.browser import render

    failed = False
    for page in args.pages:
        shot = args.out / ("docs-" + page.replace("/", "-").removesuffix(".html") + ".png")
        check = render(args.site / page, shot, window=(1280, 1600))
        # the theme's pages load a search index and fonts from the site itself: any
        # console message or resource that did not load is a broken page
        problems = check.problems() if not check.ok else []
        if "<article" not in check.dom:
            problems.append("no article in the rendered page")
        print(f"docs: {page} -> {shot}" + ("" if not problems else f": {problems}"))
        failed |= bool(problems) or check.screenshot is None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
