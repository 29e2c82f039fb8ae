"""The package's shape: the pipeline in the layout, no import cycles, light imports.

Import cycles are found on grimp's import graph of ``et_hil`` (every import,
function-level and ``TYPE_CHECKING`` ones included): a lazy import inside a
function still ties two modules together, and so does an import for annotations
only (a type-only back edge is a design cycle all the same), so both count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from et_hil.boards import registry

PACKAGE = Path(__file__).resolve().parent.parent / "et_hil"
# the pipeline's stages in order, and the process plumbing under them
STAGES = [
    "processes",
    "programs",
    "executor_runner",
    "firmware",
    "boards",
    "verdict",
    "report",
    "pytest_plugin",
]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(edges[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_cycles_finder_finds_a_cycle() -> None:
    # a -> b -> c -> a is one cycle; d only imports a
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The package's import graph, ``TYPE_CHECKING`` imports included."""
    return grimp.build_graph("et_hil", exclude_type_checking_imports=False, cache_dir=None)


def test_the_package_has_no_import_cycles(graph: grimp.ImportGraph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def test_a_board_spec_is_data_that_names_no_kind(graph: grimp.ImportGraph) -> None:
    # A kind's settings and memory layout take a BoardSpec; were its module to reach
    # the registry (which lists the kinds) or the loader, that would be a cycle.
    upstream = graph.find_upstream_modules("et_hil.boards.board_spec")
    assert sorted(m for m in upstream if m.startswith("et_hil.boards")) == []


BUILTIN_KINDS = ("host", "tosa", "fvp", "qemu", "serial")


def _branches_on_kind_names(source: str, kinds: tuple[str, ...]) -> list[str]:
    """Where ``source`` branches on a kind's name: ``spec.kind == "fvp"``,
    ``kind in ("fvp", "qemu")``, a table keyed by kind names, ``registry.get("fvp")``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            names = [
                c.value
                for o in operands
                for c in ast.walk(o)
                if isinstance(c, ast.Constant) and c.value in kinds
            ]
            if names and any("kind" in ast.unparse(o) for o in operands):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if sum(k in kinds for k in keys) >= 2:
                found.append(f"line {node.lineno}: a table keyed by kind names {keys}")
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("registry.get")
            and any(isinstance(a, ast.Constant) and a.value in kinds for a in node.args)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_kind_name_finder_finds_branches() -> None:
    source = (
        'if spec.kind == "serial": pass\n'
        'ok = board.kind in ("fvp", "qemu")\n'
        'WHY = {"tosa": "static", "fvp": "planned"}\n'
        'k = registry.get("host")\n'
        'fine = spec.name == "host"  # a board name, not a kind\n'
    )
    assert [f.split(":")[0] for f in _branches_on_kind_names(source, BUILTIN_KINDS)] == [
        "line 1",
        "line 2",
        "line 3",
        "line 4",
    ]


def test_only_a_kinds_own_folder_names_it() -> None:
    """What differs between kinds is a field of BoardKind (issue 24): no module outside
    ``et_hil/boards/<kind>/`` branches on a built-in kind's name."""
    assert set(BUILTIN_KINDS) <= set(registry.kinds())
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        own = parts[1] if len(parts) > 2 and parts[0] == "boards" else None
        others = tuple(k for k in BUILTIN_KINDS if k != own)
        offences += [
            f"{path.relative_to(PACKAGE)} {f}"
            for f in _branches_on_kind_names(path.read_text(), others)
        ]
    assert offences == []


def test_the_top_level_shows_the_pipeline() -> None:
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(STAGES)
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    # besides the stages: the public API, the command line, errors, versions,
    # where data files are, installed plug-ins (entry points), declarative
    # validation, the one dtype table, the command line's text tables, and the
    # limits board files hold (the verdict's tolerances, the baseline's figure limits)
    assert modules == [
        "__init__.py",
        "baseline_limits.py",
        "cli.py",
        "datafiles.py",
        "dtypes.py",
        "errors.py",
        "plugins.py",
        "tables.py",
        "tolerance.py",
        "validation.py",
        "versions.py",
    ]


@pytest.mark.parametrize(
    ("module", "not_imported"),
    [
        # a stage does not pull in the ones after it, nor torch
        ("et_hil", ["et_hil.programs", "et_hil.boards", "et_hil.verdict", "torch"]),
        ("et_hil.programs.cache", ["et_hil.boards", "et_hil.verdict", "torch"]),
        ("et_hil.executor_runner.log", ["et_hil.boards.fvp", "et_hil.verdict", "torch"]),
        ("et_hil.boards.spec", ["et_hil.verdict.check", "et_hil.boards.host", "torch"]),
        ("et_hil.pytest_plugin.plugin", ["torch", "executorch", "et_hil.boards.fvp.board"]),
    ],
)
def test_a_submodule_import_stays_light(module: str, not_imported: list[str]) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {not_imported!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_kinds_registry_stays_light() -> None:
    """Every pytest run loads the board kinds; reading ELFs or building firmware is a
    board's job, when it runs (pyelftools alone cost ~30 ms of start-up). The QEMU
    kind reads its ``[qemu.firmware]`` table's type from the firmware stage, whose
    package loads nothing else until asked."""
    heavy = ("elftools", "et_hil.firmware.recipe", "et_hil.firmware.service", "numpy", "torch")
    code = (
        "import sys; from et_hil.boards import registry; registry.kinds(); "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
