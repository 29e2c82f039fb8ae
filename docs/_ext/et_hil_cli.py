"""The ``et-hil-cli`` directive: the CLI page, made from ``et_hil.cli``'s argument parser.

Each command and subcommand gets a section whose body is exactly what
``et-hil ... --help`` prints at :data:`COLUMNS` columns, so the page cannot
disagree with the command (``tests/test_docs.py`` compares the two).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

COLUMNS = 100  # the help's width on the page, and in the test that compares it


@contextmanager
def _columns(columns: int) -> Iterator[None]:
    """argparse wraps help at ``$COLUMNS``: fix it, so the page is the same on every machine."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def parser() -> argparse.ArgumentParser:
    """The ``et-hil`` command's parser, as ``et-hil`` itself builds it."""
    from et_hil import cli

    return cli._parser()


def _subcommands(p: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    seen: set[int] = set()
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias names the same parser again
                    seen.add(id(sub))
                    yield name, sub


def command_helps(columns: int = COLUMNS) -> list[tuple[tuple[str, ...], str]]:
    """Every command's words (``()`` for ``et-hil`` itself) and its ``--help`` text, depth first."""
    out: list[tuple[tuple[str, ...], str]] = []

    def walk(words: tuple[str, ...], p: argparse.ArgumentParser) -> None:
        out.append((words, p.format_help()))
        for name, sub in _subcommands(p):
            walk((*words, name), sub)

    with _columns(columns):
        walk((), parser())
    return out


def _anchor(words: tuple[str, ...]) -> str:
    return "-".join(("et-hil", *words)) if words else "et-hil"


class CliDirective(SphinxDirective):
    """``et-hil-cli``: a section per command with its ``--help``, nested as the commands are."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        top: list[nodes.Node] = []
        parents: dict[tuple[str, ...], nodes.Element] = {}
        for words, text in command_helps():
            section = nodes.section(ids=[_anchor(words)], names=[_anchor(words)])
            section += nodes.title(text=" ".join(("et-hil", *words)))
            block = nodes.literal_block(text, text, language="text")
            section += block
            self.state.document.note_implicit_target(section, section)
            parents[words] = section
            if words and words[:-1] in parents:
                parents[words[:-1]] += section
            else:
                top.append(section)
        return top


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("et-hil-cli", CliDirective)
    return {"parallel_read_safe": True, "version": "1"}
