"""Operator lists for the runner's kernel selection (``EXECUTORCH_SELECT_OPS_LIST``).

Names are ``namespace::name.overload`` (``aten::add.out``,
``quantized_decomposed::quantize_per_tensor.out``, ``cortex_m::quantized_add.out``),
as upstream's selective build takes them. The kernels that exist are read from
the YAML files of the ExecuTorch tree being built:

* ``kernels/portable/functions.yaml``: portable ``aten`` kernels;
* ``kernels/quantized/quantized.yaml``: ``quantized_decomposed`` kernels;
* ``backends/cortex_m/ops/operators.yaml``: ``cortex_m`` (CMSIS-NN) kernels;
* ``kernels/prim_ops/register_prim_ops.cpp``: prim ops (``executorch_prim::et_view.default``,
  ``aten::sym_size.int``, ...). Upstream's runner selects these from the same list, and
  with none of them a program that views or reads a symbolic size cannot load; they are
  small, so :func:`select` always adds them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from et_hil.errors import ConfigError

PORTABLE_YAML = "kernels/portable/functions.yaml"
QUANTIZED_YAML = "kernels/quantized/quantized.yaml"
CORTEX_M_YAML = "backends/cortex_m/ops/operators.yaml"
PRIM_OPS_SOURCE = "kernels/prim_ops/register_prim_ops.cpp"

# "- op: add.out" (portable, namespace aten) or "- func: ns::name.overload(...)".
_ENTRY = re.compile(r"^- (op|func):\s*([A-Za-z0-9_:.]+)", re.MULTILINE)
# The name string of each Kernel(...) in the prim ops registration.
_PRIM = re.compile(r'"((?:aten|executorch_prim)::[A-Za-z0-9_.]+)"')


def _read_yaml_ops(path: Path, default_namespace: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"no kernel list at {path}")
    names = []
    for _kind, name in _ENTRY.findall(path.read_text()):
        names.append(name if "::" in name else f"{default_namespace}::{name}")
    return names


def portable_ops(executorch_root: Path) -> list[str]:
    """Every portable kernel (``aten::...``)."""
    return _read_yaml_ops(executorch_root / PORTABLE_YAML, "aten")


def quantized_ops(executorch_root: Path) -> list[str]:
    """Every quantized kernel (``quantized_decomposed::...``)."""
    return _read_yaml_ops(executorch_root / QUANTIZED_YAML, "quantized_decomposed")


def cortex_m_ops(executorch_root: Path) -> list[str]:
    """Every cortex_m (CMSIS-NN) kernel (``cortex_m::...``)."""
    return _read_yaml_ops(executorch_root / CORTEX_M_YAML, "cortex_m")


def prim_ops(executorch_root: Path) -> list[str]:
    """Every prim op the runtime can register."""
    path = executorch_root / PRIM_OPS_SOURCE
    if not path.is_file():
        raise ConfigError(f"no prim ops registration at {path}")
    return sorted(set(_PRIM.findall(path.read_text())))


def wide_ops(executorch_root: Path) -> list[str]:
    """All portable and quantized kernels: the "wide" runner."""
    return portable_ops(executorch_root) + quantized_ops(executorch_root)


def normalize(op: str) -> str:
    """``aten.add.out`` (an edge-dialect target's name) or ``aten::add.out`` -> ``aten::add.out``.

    A bare ``add.out`` means ``aten``.
    """
    op = op.strip()
    if "::" in op:
        return op
    namespace, dot, rest = op.partition(".")
    if dot and namespace in {"aten", "quantized_decomposed", "cortex_m"} and "." in rest:
        return f"{namespace}::{rest}"
    return f"aten::{op}"


def select(executorch_root: Path, ops: Iterable[str] | None, *, cortex_m: bool) -> list[str]:
    """The sorted, checked kernel list: ``ops`` (``None``: wide), plus cortex_m if asked,
    plus every prim op.

    Raises :class:`ConfigError` naming any operator that has no kernel in this
    tree (upstream's code generator would stop with a less direct message).
    """
    wide = wide_ops(executorch_root)
    cm = cortex_m_ops(executorch_root)
    prim = prim_ops(executorch_root)
    known = {*wide, *cm, *prim}
    chosen = set(wide if ops is None else (normalize(o) for o in ops))
    chosen.update(prim)
    if cortex_m:
        chosen.update(cm)
    unknown = sorted(chosen - known)
    if unknown:
        raise ConfigError(f"no kernel for {', '.join(unknown)} in {executorch_root}")
    return sorted(chosen)


def ops_in_program(pte: bytes) -> list[str]:
    """The operators a serialized program (``.pte``) calls, as ``namespace::name.overload``.

    Delegated work is not listed (it runs in its backend); prim ops are.
    """
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(pte)
    program = getattr(program, "program", program)  # newer versions wrap it
    names = set()
    for plan in program.execution_plan:
        for operator in plan.operators:
            names.add(
                f"{operator.name}.{operator.overload}" if operator.overload else operator.name
            )
    return sorted(names)
