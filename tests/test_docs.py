"""The documentation site cannot rot: its examples run, its commands parse, its CLI page is the
command's ``--help``, and the README is a front door that links to every page.

``make docs`` builds the site with warnings as errors and every cross-reference checked; these
tests check what a build cannot: that what the pages show works.

* Every Python block of a page is named by a ``<!-- example: ID -->`` (or ``<!-- toy-kind:
  FILE -->``) line above it, and :data:`EXAMPLES` names the test that runs it.
* Every TOML block is a board file, or a table of one, that et-hil's loader accepts.
* Every ``pytest``, ``et-hil`` and ``make`` command line of a page uses options and targets that
  exist (pytest's from its ``--help``, where deprecated spellings are hidden; ``et-hil``'s by
  parsing the line with the command's own parser).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
sys.path.insert(0, str(DOCS / "_ext"))

import et_hil_cli  # noqa: E402  (docs/_ext: the CLI page's own code)

# Example id -> the test that runs it as the page shows it.
EXAMPLES = {
    "first-test": (
        "tests/test_quiet.py::test_the_first_test_in_a_fresh_folder_ends_with_no_warnings"
    ),
    "toy-kind": "tests/test_board_kinds.py::test_the_docs_toy_kind_runs_from_a_users_conftest",
    "dynamic-shapes": "tests/test_docs.py::test_the_dynamic_shapes_example_runs",
    "et-run": "tests/test_docs.py::test_the_et_run_example_runs",
    "compile-target": "tests/test_docs.py::test_the_compile_target_example_builds_and_runs",
}
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
LABEL = re.compile(r"<!-- (?P<what>example|toy-kind): (?P<name>\S+) -->\n$")


def pages() -> list[Path]:
    """The site's Markdown pages (not the generated or example folders)."""
    return sorted(
        p for p in DOCS.rglob("*.md") if not p.relative_to(DOCS).parts[0].startswith(("_", "."))
    )


def blocks(path: Path) -> Iterator[tuple[str, str, str | None, int]]:
    """A page's fenced code blocks: language, body (dedented), label above it, line."""
    text = path.read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        before = text[: m.start()]
        label = LABEL.search(before.rsplit("\n", 2)[-2] + "\n") if before.count("\n") >= 2 else None
        indent = len(m["indent"])
        body = "\n".join(line[indent:] for line in m["body"].splitlines()) + "\n"
        language = m["info"].strip().split(" ")[0]
        yield (
            language,
            body,
            (f"{label['what']}: {label['name']}" if label else None),
            (before.count("\n") + 1),
        )


def example(name: str, page: str) -> str:
    """The Python block labelled ``<!-- example: name -->`` on a page."""
    (body,) = [b for lang, b, label, _ in blocks(DOCS / page) if label == f"example: {name}"]
    return body


# --- the README -----------------------------------------------------------------------------


def test_the_readme_is_a_front_door_that_links_every_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    linked = {(ROOT / target).resolve() for target in re.findall(r"\]\((docs/[^)#\s]+)", text)}
    missing = [str(p.relative_to(ROOT)) for p in pages() if p.resolve() not in linked]
    assert not missing, f"the README links no page {missing}"
    broken = [str(p) for p in linked if not p.exists()]
    assert not broken, broken


def test_the_readmes_links_into_pages_name_headings_that_exist() -> None:
    for page, anchor in re.findall(r"\]\((docs/[^)#\s]+)#([\w-]+)\)", README.read_text("utf-8")):
        assert anchor in anchors(ROOT / page), f"{page} has no heading #{anchor}"


def anchors(path: Path) -> set[str]:
    """The heading anchors of a page, as MyST makes them (myst_heading_anchors)."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"#{1,4} (.*)", line):
            title = re.sub(r"[`*]", "", m.group(1).strip().lower())
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def headings(path: Path) -> set[str]:
    """A page's heading titles, outside code blocks, without code marks. A title that
    ends in a parenthesis also counts without it: 'Runner firmware' for "Runner
    firmware (`et-hil firmware build`)"."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found = set()
    for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M):
        title = m.group(1).strip().replace("`", "")
        found |= {title, re.sub(r" \([^)]*\)$", "", title)}
    return found


# "docs/boards/corstone-fvp.md, 'Runner ELFs'": a page, and a section of it when one is quoted
DOCS_REFERENCE = re.compile(r"docs/(?P<page>[\w/-]+\.md)(?:, '(?P<section>[^']+)')?")


def test_the_pages_and_sections_messages_name_exist() -> None:
    """et-hil's messages and docstrings, and the board files, point into this site
    ("docs/boards/corstone-fvp.md, 'Runner ELFs'"): each page exists and has the
    section quoted after it."""
    sources = [*(ROOT / "et_hil").rglob("*.py"), *(ROOT / "boards").rglob("*.toml")]
    named: dict[tuple[str, str | None], str] = {}
    for path in sources:
        for m in DOCS_REFERENCE.finditer(path.read_text(encoding="utf-8")):
            named.setdefault((m["page"], m["section"]), str(path.relative_to(ROOT)))
    assert any(section for _, section in named), "no message names a section"
    wrong = []
    for (page, section), where in sorted(named.items(), key=str):
        if not (DOCS / page).is_file():
            wrong.append(f"{where}: docs/{page} does not exist")
        elif section is not None and section not in headings(DOCS / page):
            wrong.append(f"{where}: docs/{page} has no heading '{section}'")
    assert not wrong, wrong


def test_no_message_names_a_section_of_the_old_readme() -> None:
    old = re.compile(r"""README[,:]? ?['"][A-Z]|README: the |the README (says|names)""")
    found = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "et_hil").rglob("*.py")
        if old.search(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"name the docs page instead (docs/<page>.md, 'Section'): {found}"


def test_the_readmes_first_test_is_the_getting_started_one() -> None:
    section = README.read_text(encoding="utf-8").split("## Your first test", 1)[1]
    readme = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert readme == example("first-test", "getting-started.md")


# --- the examples ---------------------------------------------------------------------------


def test_every_python_block_is_an_example_a_test_runs() -> None:
    unlabelled, unknown = [], []
    for page in pages():
        for language, body, label, line in blocks(page):
            if language != "python":
                continue
            compile(body, f"{page}:{line}", "exec")
            if label is None:
                unlabelled.append(f"{page.relative_to(ROOT)}:{line}")
            elif label.startswith("example: ") and label[9:] not in EXAMPLES:
                unknown.append(label)
    assert not unlabelled, f"Python blocks no test runs (label them): {unlabelled}"
    assert not unknown, unknown
    for test in EXAMPLES.values():
        file, _, name = test.partition("::")
        assert f"def {name}(" in (ROOT / file).read_text(encoding="utf-8"), test


@pytest.mark.slow
def test_the_dynamic_shapes_example_runs(et_pytester: pytest.Pytester) -> None:
    page = "writing-tests/dynamic-shapes.md"
    et_pytester.makepyfile(test_dynamic=example("dynamic-shapes", page))
    run = et_pytester.runpytest_subprocess("--et-board=host", "-p", "no:randomly")
    run.assert_outcomes(passed=1)


@pytest.mark.slow
def test_the_et_run_example_runs(et_pytester: pytest.Pytester) -> None:
    """The ML team's bundle, made as the page says (``et_hil.bundle_program``), then the test."""
    et_pytester.makepyfile(
        conftest="""
        import pytest
        import torch
        import et_hil


        @pytest.fixture(autouse=True)
        def kws_bundle(et_build):
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.ReLU()).eval()
            inputs = (torch.randn(1, 10),)
            artifact = et_build(model, inputs, quantize="int8")
            et_hil.bundle_program(artifact, inputs, "artifacts/kws-int8.bpte")
        """
    )
    (et_pytester.path / "artifacts").mkdir()
    et_pytester.makepyfile(test_program=example("et-run", "writing-tests/own-programs.md"))
    run = et_pytester.runpytest_subprocess("--et-board=host", "-p", "no:randomly")
    run.assert_outcomes(passed=1)


@pytest.mark.slow
def test_the_compile_target_example_builds_and_runs(et_pytester: pytest.Pytester) -> None:
    """The page's conftest.py, and a board file that names its target as the page says."""
    et_pytester.makeconftest(example("compile-target", "boards/your-own-kind.md"))
    et_pytester.makepyfile(
        test_linear="""
        import torch


        def test_linear(et_check):
            torch.manual_seed(0)
            et_check(torch.nn.Linear(4, 2).eval(), (torch.randn(1, 4),))
        """
    )
    (et_pytester.path / "bench.toml").write_text(
        'name = "bench"\nkind = "host"\ntarget = "my-cpu-v1"\n'
    )
    results = et_pytester.path / "results.jsonl"
    run = et_pytester.runpytest_subprocess(
        "--et-board", "bench.toml", f"--et-results={results}", "-p", "no:randomly"
    )
    run.assert_outcomes(passed=1)
    (record,) = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert record["board"] == "bench"
    assert record["artifact"]["target"] == "my-cpu-v1"
    assert record["delegation"]["delegated_nodes"] == 0  # the portable target's program


def _deep_merge(base: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in part.items():
        # a table that names its method ([serial.flash], [serial.reset]) is that method's
        # table whole: a pyOCD flash keeps nothing of the base's command flash
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "method" not in value:
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# A table of a board file, shown alone, is checked in a board file of its kind.
BASES = {
    "serial.labgrid": "boards/examples/lab-mps3-an552.toml",
    "serial": "boards/examples/mps3-an552.toml",
    "qemu": "boards/qemu-m55.toml",
    "baseline": "boards/corstone320.toml",
}


def toml_blocks() -> list[tuple[str, str]]:
    found = []
    for page in pages():
        for language, body, _, line in blocks(page):
            if language == "toml":
                found.append((f"{page.relative_to(DOCS)}:{line}", body))
    return found


@pytest.mark.parametrize(("where", "body"), toml_blocks(), ids=[w for w, _ in toml_blocks()])
def test_every_toml_block_is_a_board_file_et_hil_accepts(
    where: str, body: str, tmp_path: Path
) -> None:
    from et_hil.boards.spec import parse_board

    data = tomllib.loads(body)
    if "name" not in data:  # a table alone: checked inside a board file of its kind
        first = next(iter(data))
        nested = f"{first}.{next(iter(data[first]), '')}"
        base = BASES.get(nested) or BASES[first]
        base_data = tomllib.loads((ROOT / base).read_text(encoding="utf-8"))
        if nested == "serial.labgrid":
            base_data["serial"].pop("labgrid", None)
        data = _deep_merge(base_data, data)
    if data["kind"] == "in-process":  # the toy kind's own file: its test registers the kind
        assert data["target"] == "portable"
        return
    spec = parse_board(data, tmp_path / "board.toml")
    assert spec.name == data["name"]


# --- the commands ---------------------------------------------------------------------------


def command_lines() -> list[tuple[str, str]]:
    """Each ``pytest``, ``et-hil`` and ``make`` command of the pages' shell and text blocks."""
    found = []
    for page in [*pages(), README]:
        for language, body, _, line in blocks(page):
            if language not in ("sh", "text", "bash", ""):
                continue
            heredoc = None
            for n, raw in enumerate(body.replace("\\\n", " ").splitlines()):
                if heredoc is not None:
                    heredoc = None if raw.strip() == heredoc else heredoc
                    continue
                if m := re.search(r"<<'?(\w+)'?", raw):
                    heredoc = m.group(1)
                if language == "text" and not raw.startswith("$ "):
                    continue
                command = re.sub(r"\s+#.*$", "", raw.removeprefix("$ ")).strip()
                command = re.sub(r"^(\w+=\S+\s+)+", "", command)  # VAR=value prefixes
                command = re.sub(r"^(\.venv/bin/|\$\(BIN\)/)", "", command)
                if command.split(" ")[0] in ("pytest", "et-hil", "make"):
                    where = f"{page.relative_to(ROOT)}:{line + n + 1}"
                    found.append((where, command))
    return found


@pytest.fixture(scope="module")
def pytest_options() -> set[str]:
    """The options ``pytest --help`` lists here (deprecated spellings are hidden from it)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", done.stdout))


def test_the_pages_show_commands() -> None:
    commands = [c for _, c in command_lines()]
    assert any(c.startswith("pytest ") for c in commands)
    assert any(c.startswith("et-hil ") for c in commands)


@pytest.mark.parametrize(("where", "command"), command_lines(), ids=[w for w, _ in command_lines()])
def test_every_command_of_the_pages_parses(
    where: str, command: str, pytest_options: set[str]
) -> None:
    words = shlex.split(re.sub(r"\$\([^)]*\)", "X", command.replace("[", "").replace("]", "")))
    program, args = words[0], words[1:]
    if program == "pytest":
        used = {w.split("=", 1)[0] for w in args if w.startswith("--")}
        unknown = sorted(used - pytest_options)
        assert not unknown, f"{where}: {command}: pytest has no {unknown}"
    elif program == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
        wanted = {a for a in args if "=" not in a}  # VAR=value sets a make variable
        assert wanted <= targets, f"{where}: {command}"
    else:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                et_hil_cli.parser().parse_args(args)
            except SystemExit as exc:
                pytest.fail(f"{where}: {command}: {err.getvalue().strip()} (exit {exc.code})")


# --- the CLI page ---------------------------------------------------------------------------


def _help(words: tuple[str, ...]) -> str:
    """What ``et-hil WORDS --help`` prints, through the command's own entry point."""
    from et_hil import cli

    out = io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        et_hil_cli._columns(et_hil_cli.COLUMNS),
        pytest.raises(SystemExit),
    ):
        cli.main([*words, "--help"])
    return out.getvalue()


def test_the_cli_page_is_every_commands_help() -> None:
    helps = et_hil_cli.command_helps()
    names = {" ".join(words) for words, _ in helps}
    assert {"", "run", "report", "cache", "firmware", "baseline", "merge", "repro"} <= names
    for words, text in helps:
        assert text == _help(words), f"et-hil {' '.join(words)} --help differs from the page"


def test_the_installed_command_prints_the_pages_help() -> None:
    env = {**os.environ, "COLUMNS": str(et_hil_cli.COLUMNS)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "et-hil"), "--help"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout == et_hil_cli.command_helps()[0][1]


def test_the_cli_page_uses_the_directive() -> None:
    assert "```{et-hil-cli}" in (DOCS / "cli.md").read_text(encoding="utf-8")
