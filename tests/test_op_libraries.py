"""Saved graphs load in a fresh process exactly as they were built.

The regression: a reference graph calling ``dim_order_ops._to_dim_order_copy``
loaded in the process that built it (lowering had imported ExecuTorch, which
registers that namespace) and failed to load from the cache in a new process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from et_hil.programs import op_libraries

ROOT = Path(__file__).resolve().parent.parent


class CopiesInDimOrder(torch.nn.Module):
    """A graph with one node of ExecuTorch's ``dim_order_ops`` namespace."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.dim_order_ops._to_dim_order_copy.default(x, dtype=torch.float32) + 1


@pytest.fixture(scope="module")
def saved_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    op_libraries.register(["dim_order_ops"])
    exported = torch.export.export(CopiesInDimOrder(), (torch.ones(2, 3, dtype=torch.int64),))
    path = tmp_path_factory.mktemp("graph") / "reference.pt2"
    torch.export.save(exported, str(path))
    return path


def test_a_graphs_custom_namespaces_are_found() -> None:
    op_libraries.register(["dim_order_ops"])
    exported = torch.export.export(CopiesInDimOrder(), (torch.ones(2, 3, dtype=torch.int64),))
    assert op_libraries.namespaces_of(exported.graph_module) == ["dim_order_ops"]


def fresh_process(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_plain_torch_cannot_load_it_in_a_fresh_process(saved_graph: Path) -> None:
    """The failure the loader exists for (if torch ever resolves it alone, this says so)."""
    proc = fresh_process(f"import torch; torch.export.load({str(saved_graph)!r})")
    assert proc.returncode != 0
    assert "dim_order_ops" in proc.stderr
    assert op_libraries.unresolved_namespace(RuntimeError(proc.stderr)) == "dim_order_ops"


@pytest.mark.parametrize(
    "recorded",
    [
        ("dim_order_ops",),  # as a new artifact records them
        (),  # an older artifact: the loader registers what torch reports unresolved
    ],
)
def test_the_reference_loader_loads_it_in_a_fresh_process(
    saved_graph: Path, recorded: tuple[str, ...]
) -> None:
    code = (
        "import torch\n"
        "from pathlib import Path\n"
        "from et_hil.programs.front import reference_module\n"
        f"m = reference_module(Path({str(saved_graph)!r}), {recorded!r}, 'CopiesInDimOrder')\n"
        "print(m(torch.ones(2, 3, dtype=torch.int64)).tolist())\n"
    )
    proc = fresh_process(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # int64 ones copied to float32, plus one
    assert proc.stdout.strip().splitlines()[-1] == "[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]"


def test_an_unknown_namespace_is_named() -> None:
    with pytest.raises(op_libraries.UnknownNamespace, match="no_such_ops"):
        op_libraries.register(["aten", "no_such_ops"])
    message = "failed to resolve torch.ops.no_such_ops.frob.default"
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = ValueError(message)
    assert op_libraries.unresolved_namespace(wrapped) == "no_such_ops"
    assert op_libraries.unresolved_namespace(RuntimeError("other")) is None
