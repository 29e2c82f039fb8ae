"""Cross-references from docstrings to names the site does not document.

The pages are strict: a reference in a page that does not resolve fails the
build. Docstrings are written for Sphinx and name internal helpers
(``:func:`replay```, ``:data:`MIN_ELEMENTS```) that the API reference leaves out,
as it documents the public names only. Such a reference, made in a docstring, is
shown as code when the name exists in the package, and fails the build (as any
broken reference does) when it names nothing: a docstring naming a function that
was renamed or removed is caught.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any

from docutils import nodes

# Packages whose names a docstring may mention without the site documenting them.
EXTERNAL = (
    "torch", "numpy", "np", "npt", "msgspec", "pytest", "_pytest", "executorch", "matplotlib",
    "argparse", "pathlib", "collections", "typing", "typing_extensions", "enum", "os",
    "subprocess", "types", "datetime", "dataclasses", "concurrent", "filelock", "docker",
    "serial", "labgrid", "io", "abc", "torchao", "tosa", "grpc", "elftools", "json", "re",
    "threading", "signal", "socket", "contextlib", "functools", "tempfile", "shutil",
    "torch_types",
)  # fmt: skip
# Standard names that modules import for annotations only (under TYPE_CHECKING).
STANDARD = {
    "Path", "Any", "Callable", "Mapping", "Sequence", "Iterable", "Iterator", "Generator",
    "Self", "TypeAlias", "Literal", "NDArray", "Tensor",
}  # fmt: skip


def _lookup(dotted: str) -> bool:
    """Whether ``dotted`` names an importable module or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        except Exception:  # a module that fails to import names nothing here
            return False
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                annotations = getattr(obj, "__annotations__", {})
                fields = getattr(obj, "__dataclass_fields__", {}) or getattr(
                    obj, "__struct_fields__", ()
                )
                # a field without a default (dataclass, msgspec) is no class attribute
                return attr in annotations or attr in fields
            obj = getattr(obj, attr)
        return True
    return False


_DEFINED: dict[str, list[str]] = {}


def _defined() -> dict[str, list[str]]:
    """Every name a module of the package defines -> those modules (made once)."""
    if not _DEFINED:
        import pkgutil

        import et_hil

        for info in pkgutil.walk_packages(et_hil.__path__, prefix="et_hil."):
            try:
                module = importlib.import_module(info.name)
            except Exception:  # optional dependencies missing: its names are not defined
                continue
            for name in vars(module):
                _DEFINED.setdefault(name, []).append(info.name)
    return _DEFINED


def exists(target: str, module: str | None, cls: str | None) -> bool:
    """Whether a docstring's reference names something, as Python would find it there,
    or as a name that some module of the package defines (a docstring may name a class
    its module imports for annotations only)."""
    target = target.lstrip("~.")
    head = target.split(".")[0]
    if head in EXTERNAL or head in STANDARD or hasattr(builtins, target):
        return True
    if " " in target:
        return True  # napoleon read a property's prose as its type ("Every comparison passed")
    candidates = [target]
    if module:
        if cls:
            candidates.append(f"{module}.{cls}.{target}")
        candidates.append(f"{module}.{target}")
        package = module.rpartition(".")[0]
        if package:
            candidates.append(f"{package}.{target}")
    candidates += [f"{m}.{target}" for m in _defined().get(head, ())]
    return any(_lookup(c) for c in candidates)


# The pages made from docstrings (the API reference and the module map).
FROM_DOCSTRINGS = {"api", "modules"}


def _from_docstring(node: Any) -> bool:
    return node.get("refdoc") in FROM_DOCSTRINGS


def missing_reference(app: Any, env: Any, node: Any, contnode: nodes.Node) -> nodes.Node | None:
    """Show a docstring's reference to an existing, undocumented name as code."""
    if node.get("refdomain") != "py" or not _from_docstring(node):
        return None
    if exists(node["reftarget"], node.get("py:module"), node.get("py:class")):
        return contnode
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", missing_reference, priority=900)
    return {"parallel_read_safe": True, "version": "1"}
