"""The ``et-hil-api`` directive: the API reference, made from ``et_hil``'s public names.

Every name in ``et_hil.__all__`` is documented where it is defined (so references
to ``et_hil.programs.artifact.Artifact`` resolve), grouped by the pipeline's stage.
:data:`ALSO` adds the objects the public calls return and the pages name. A name
added to ``et_hil.__all__`` shows up here by itself.
"""

from __future__ import annotations

import inspect
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

# Objects that are not exported from et_hil but that its calls return or take.
ALSO = {
    "CheckResult": "et_hil.verdict.check",
    "ProgramResult": "et_hil.verdict.program_check",
    "DivergenceReport": "et_hil.verdict.debug",
    "Fault": "et_hil.programs.faults",
}

# Stages in the order data flows through them (the layers contract, bottom up).
STAGES = [
    ("Errors", ("et_hil.errors",)),
    ("Programs: model to artifact", ("et_hil.programs",)),
    ("Boards: artifact to run result", ("et_hil.boards",)),
    ("Verdict: run result to verdict", ("et_hil.verdict", "et_hil.tolerance")),
]


def public_names() -> dict[str, str]:
    """Public name -> the module that defines it: ``et_hil``'s exports, then :data:`ALSO`."""
    import et_hil

    exported = {name: et_hil._EXPORTS[name] for name in et_hil.__all__}
    return {**exported, **ALSO}


def _stage(module: str) -> str:
    for title, prefixes in STAGES:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return title
    return "Other"


def api_rst() -> list[str]:
    """The reference as reStructuredText: a section per stage, an autodoc entry per name."""
    import importlib

    by_stage: dict[str, list[tuple[str, str]]] = {}
    for name, exported_from in public_names().items():
        obj = getattr(importlib.import_module(exported_from), name)
        # where it is defined: what docstrings and pages name it by
        module = getattr(obj, "__module__", None) or exported_from
        by_stage.setdefault(_stage(module), []).append((name, module))
    lines: list[str] = []
    for title in [t for t, _ in STAGES] + ["Other"]:
        entries = by_stage.get(title)
        if not entries:
            continue
        lines += [title, "-" * len(title), ""]
        for name, module in sorted(entries, key=lambda e: (e[1], e[0])):
            obj = getattr(importlib.import_module(module), name)
            what = "autoclass" if inspect.isclass(obj) else "autofunction"
            lines += [f".. {what}:: {module}.{name}", ""]
    return lines


class ApiDirective(SphinxDirective):
    """``et-hil-api``: every public name, documented from its docstring."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        content = StringList(api_rst(), source="et_hil_api")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, content, node)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("et-hil-api", ApiDirective)
    app.add_directive("et-hil-modules", ModulesDirective)
    return {"parallel_read_safe": True, "version": "1"}


def modules() -> list[str]:
    """Every module of the package, by stage (the layers contract, top down), then by name."""
    import pkgutil

    import et_hil

    names = ["et_hil"] + [m.name for m in pkgutil.walk_packages(et_hil.__path__, prefix="et_hil.")]
    return sorted(names)


def modules_rst() -> list[str]:
    """A section per subpackage, each module's docstring under it (no members)."""
    lines: list[str] = []
    current = None
    for name in modules():
        parts = name.split(".")
        group = ".".join(parts[:2]) if len(parts) > 2 or _is_package(name) else "et_hil"
        if group != current:
            current = group
            title = f"``{group}``"
            lines += [title, "-" * len(title), ""]
        lines += [f".. automodule:: {name}", "   :no-members:", ""]
    return lines


def _is_package(name: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(name)
    return bool(spec and spec.submodule_search_locations)


class ModulesDirective(ApiDirective):
    """``et-hil-modules``: every module's docstring, by subpackage."""

    def run(self) -> list[nodes.Node]:
        content = StringList(modules_rst(), source="et_hil_modules")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, content, node)
        return node.children
