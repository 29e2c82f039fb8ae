"""Operator libraries a saved graph needs before it can be loaded in a fresh process.

``torch.export.load`` resolves every node's target (``torch.ops.<namespace>.<op>``)
while it deserializes, so each custom namespace must already be registered.
In the process that built an artifact, lowering has imported ExecuTorch and its
backends, which register them all as a side effect; a later process that finds
the artifact in the cache has imported none of them. A verdict must not depend
on which of the two loads the file, so an artifact records the namespaces its
saved graphs use, and the loader registers exactly those (the heavy ExecuTorch
imports are paid only by graphs that need them).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

# Namespaces torch itself defines, always resolvable.
BUILT_IN = frozenset({"aten", "prims", "higher_order", "_operator", "builtins", "math"})

# The module whose import registers each custom namespace (upstream's own
# registries; importing them is the documented way to make the ops resolvable).
# cortex_m: its registry, ``executorch.backends.cortex_m.ops.operators``, cannot be
# imported first in ExecuTorch 1.5 (it imports the passes package, which looks up
# the edge cortex_m ops before that module has defined them); the passes package
# imports it first itself, and so registers the namespace.
REGISTRIES: dict[str, str] = {
    "quantized_decomposed": "torch.ao.quantization.fx._decomposed",
    "dim_order_ops": "executorch.exir.passes.dim_order_ops_registry",
    "executorch_prim": "executorch.exir.passes.executorch_prim_ops_registry",
    "et_copy": "executorch.exir.passes._device_copy_ops_registry",
    "tosa": "executorch.backends.arm.tosa.dialect",
    "cortex_m": "executorch.backends.cortex_m.passes",
    "executorch_devtools": "executorch.devtools.intermediate_output_tap.custom_ops_lib",
}

_UNRESOLVED = re.compile(r"failed to resolve torch\.ops\.([A-Za-z0-9_]+)\.")


class UnknownNamespace(LookupError):
    """A graph uses an operator namespace no known registry defines."""


def namespaces_of(graph_module: Any) -> list[str]:
    """The custom operator namespaces the nodes of a graph module call, sorted."""
    found = set()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        namespace = getattr(node.target, "namespace", None)
        if namespace is None:
            # OpOverload carries .namespace; OpOverloadPacket and HOPs do not.
            name = getattr(node.target, "name", None)
            namespace = name().split("::")[0] if callable(name) and "::" in name() else None
        if namespace and namespace not in BUILT_IN:
            found.add(namespace)
    return sorted(found)


def register(namespaces: Iterable[str]) -> None:
    """Import the registry of each namespace (cheap when already imported).

    Raises:
        UnknownNamespace: a namespace with no known registry.
    """
    for namespace in namespaces:
        if namespace in BUILT_IN:
            continue
        module = REGISTRIES.get(namespace)
        if module is None:
            raise UnknownNamespace(namespace)
        importlib.import_module(module)


def unresolved_namespace(exc: BaseException) -> str | None:
    """The namespace torch's deserializer could not resolve, from its error (or a cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        if match := _UNRESOLVED.search(str(seen)):
            return match.group(1)
        seen = seen.__cause__ or seen.__context__
    return None


class _KeepLoggedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


@contextlib.contextmanager
def logged_load_errors() -> Iterator[list[BaseException]]:
    """The exceptions ``torch.export.load`` logs while it loads.

    It logs the deserializer's error (the one naming the unresolved operator)
    as a warning and raises a generic one, so the cause is only found here.
    """
    handler = _KeepLoggedErrors()
    logger = logging.getLogger("torch.export")
    logger.addHandler(handler)
    try:
        yield handler.errors
    finally:
        logger.removeHandler(handler)
