"""The site's pictures, made from the code and from real runs (``make docs`` runs this).

* ``pipeline.png``: the pipeline's stages as the layers contract in
  ``pyproject.toml`` orders them (``[tool.importlinter]``), each with the first
  line of its package's docstring.
* ``report.png`` and ``report.html``: a real HTML report and its screenshot in
  headless Chromium. ``--report DIR`` takes them from a run that made one
  (``.ci/run``'s nightly folder: ``report.html``, ``report.png``); otherwise the
  demo run (``docs/examples/test_demo.py`` on the host board) is made here and
  ``et-hil report`` writes them.
* ``per-layer.png`` and ``per-layer.txt``: the per-layer error plot and the
  failure message of a check that failed with a per-layer table: the first such
  record of ``--report DIR``'s results, else of the demo run.

Usage: ``python docs/_ext/figures.py --out docs/_generated [--report DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "docs" / "examples" / "test_demo.py"
SHOT_HEIGHT = 1500  # pixels of the report's screenshot the page shows (its top)


def layers(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The stages, first to last (the layers contract lists them last to first)."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["type"] == "layers"]
    return list(reversed(contract["layers"]))


def summary(package: str) -> str:
    """The first sentence of a package's docstring."""
    import importlib

    doc = (importlib.import_module(package).__doc__ or "").strip()
    first = doc.split("\n\n")[0].replace("\n", " ")
    first = re.sub(r":\w+:`~?([^`]+)`", r"\1", first).replace("``", "")
    return first.split(". ")[0].rstrip(".")


def pipeline(out: Path) -> Path:
    """The stages as boxes, first at the bottom: each imports only the ones below it."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    stages = layers()
    fig, ax = plt.subplots(figsize=(9, 0.78 * len(stages) + 0.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, len(stages))
    ax.axis("off")
    for i, package in enumerate(stages):
        y = i
        ax.add_patch(
            matplotlib.patches.FancyBboxPatch(
                (0.1, y + 0.08), 9.8, 0.7, boxstyle="round,pad=0.02",
                facecolor="#e8f0fe" if i % 2 else "#f3f6fb", edgecolor="#4a6fa5",
            )
        )  # fmt: skip
        ax.text(0.3, y + 0.43, package, fontsize=10, weight="bold", va="center", family="monospace")
        text = textwrap.shorten(summary(package), 78, placeholder=" …")
        ax.text(3.4, y + 0.43, text, fontsize=8, va="center")
        if i:
            ax.annotate(
                "", (1.2, y + 0.08), (1.2, y - 0.22),
                arrowprops={"arrowstyle": "<-", "color": "#4a6fa5"},
            )  # fmt: skip
    ax.text(
        0.1, -0.45, "each stage imports only the stages below it "
        "(pyproject.toml, [tool.importlinter]: make lint checks it)",
        fontsize=8, color="#555",
    )  # fmt: skip
    path = out / "pipeline.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def records(folder: Path) -> Iterator[dict[str, Any]]:
    """The records of a run folder's results files (merged first, when there is one)."""
    files = sorted(folder.glob("*.jsonl"), key=lambda p: (p.name != "merged.jsonl", p.name))
    for path in files[:1] if files and files[0].name == "merged.jsonl" else files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def failed_with_table(folder: Path) -> Mapping[str, Any] | None:
    """The first record whose check failed with a per-layer table naming a layer."""
    for record in records(folder):
        debug = record.get("debug")
        if (
            record.get("outcome") == "failed"
            and isinstance(debug, Mapping)
            and any(r.get("within") is False for r in debug.get("rows") or ())
        ):
            return record
    return None


def demo_run(work: Path) -> Path:
    """The demo tests on the host board, then ``et-hil report`` with its screenshot."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    results = work / "results.jsonl"
    # the third test fails on purpose (a broken layer): pytest exits 1
    subprocess.run(
        [str(bin_dir / "pytest"), str(DEMO), "--et-board=host", f"--et-results={results}",
         "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT)],
        cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    if not results.is_file():
        raise SystemExit(f"the demo run wrote no results: run pytest {DEMO} --et-board=host")
    subprocess.run(
        [str(bin_dir / "et-hil"), "report", str(results), "-o", str(work / "report.html"),
         "--title", "et-hil demo run", "--screenshot", str(work / "report.png")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return work


def crop(source: Path, target: Path, height: int = SHOT_HEIGHT) -> None:
    """The top of a full-page screenshot (the page's header, matrix and first failure)."""
    from PIL import Image

    with Image.open(source) as image:
        image.crop((0, 0, image.width, min(height, image.height))).save(target)


def per_layer(record: Mapping[str, Any], out: Path) -> None:
    """The record's per-layer plot (the report's own function) and its failure message."""
    sys.path.insert(0, str(ROOT))
    from et_hil.report.plots import divergence_plot

    try:
        plot = divergence_plot(record["debug"])
    except AttributeError:  # the plot takes the typed record (et_hil.report.record_parts)
        from et_hil.report.results import record_of

        plot = divergence_plot(record_of(record).debug)
    if plot.png is None:
        raise SystemExit(f"no per-layer plot: {plot.note}")
    (out / "per-layer.png").write_bytes(plot.png)
    message = str(record.get("message") or "")
    # the message's folders are this machine's: keep the table, not the paths after it
    local = ("per-layer table:", "repro:", "rerun:")
    kept = [line for line in message.splitlines() if not line.startswith(local)]
    (out / "per-layer.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    parser.add_argument(
        "--report", type=Path, default=None,
        help="a run folder with report.html and report.png (e.g. et-hil-results/nightly)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"docs: pipeline diagram {pipeline(args.out)}")
    demo = None
    source = args.report
    if source is None or not (source / "report.html").is_file():
        if source is not None:
            print(f"docs: {source} has no report.html: making the demo run instead")
        source = demo = demo_run(args.out / "run")
    if not (source / "report.png").is_file():
        raise SystemExit(f"{source}/report.png missing: the report needs headless Chromium")
    shutil.copyfile(source / "report.html", args.out / "report.html")
    crop(source / "report.png", args.out / "report.png")
    print(f"docs: report and its screenshot from {source}")
    record = failed_with_table(source)
    if record is None:
        print(f"docs: no check in {source} failed with a per-layer table: the demo run's")
        demo = demo or demo_run(args.out / "run")
        record = failed_with_table(demo)
    if record is None:
        raise SystemExit("the demo run's broken layer did not fail with a per-layer table")
    per_layer(record, args.out)
    (args.out / "source.txt").write_text(f"{source}\n", encoding="utf-8")
    print(f"docs: pictures in {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
