"""Content fingerprints of models and inputs: the cache key of a build.

The key must change whenever the built program could change, and must be
computable without ``torch.export`` (a warm run exports nothing). It covers:

* every module class in the model tree: qualified name and source code;
* every module's structure (``extra_repr``) and its plain attributes
  (numbers, strings, dtypes, tuples, dicts: what ``forward`` may read);
* every parameter and buffer (persistent or not) and tensor attribute:
  name, dtype, shape and bytes;
* the example inputs' specs (shape, dtype, dim order when not contiguous),
  and their values when they calibrate quantization;
* the compile target, its options (``CompileTarget.options``), the build
  options and tool versions.

Code a module calls outside its class (module-level helpers) is not covered;
``--et-no-cache`` rebuilds everything when in doubt.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_PLAIN = (bool, int, float, str, type(None))
# Attributes nn.Module keeps for its own bookkeeping.
_MODULE_INTERNALS = frozenset(
    {"training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}
)


@functools.cache
def _class_source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        # Built-in or dynamically created class: fall back to its name only.
        return f"<no source: {cls.__module__}.{cls.__qualname__}>"


def _plain_value(value: Any) -> Any:
    """A JSON-able stand-in for an attribute forward() may read, or None to ignore it."""
    import torch

    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.dtype | torch.device):
        return str(value)
    if isinstance(value, tuple | list):
        items = [_plain_value(v) for v in value]
        ok = all(i is not None or v is None for i, v in zip(items, value, strict=True))
        return items if ok else None
    if isinstance(value, dict):
        mapping = {str(k): _plain_value(v) for k, v in value.items()}
        ok = all(mapping[str(k)] is not None or v is None for k, v in value.items())
        return mapping if ok else None
    if isinstance(value, torch.Tensor | torch.nn.Module):
        return None  # hashed as tensors / as submodules
    if callable(value):
        # A function kept as an attribute (torch.relu, a lambda, a partial) decides
        # what forward computes: its identity and source are part of the key.
        return f"callable:{_callable_identity(value)}"
    # Anything else: its type and repr, without memory addresses (which change per run).
    return f"object:{type(value).__qualname__}:{_ADDRESS.sub('0x', repr(value))}"


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _callable_identity(value: Any) -> str:
    func = getattr(value, "func", value)  # functools.partial
    name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        source = ""
    extra = repr((getattr(value, "args", ()), getattr(value, "keywords", {})))
    return name + "|" + hashlib.sha256((source + extra).encode()).hexdigest()[:16]


def _module_classes(cls: type) -> list[type]:
    # The class and its user-defined bases; torch's own classes are pinned by version.
    return [c for c in cls.__mro__ if not c.__module__.startswith(("torch.", "builtins"))]


def tensor_digest(h: Any, name: str, tensor: torch.Tensor) -> None:
    """Feed a tensor's name, dtype, shape and bytes into hash ``h``."""
    import torch

    t = tensor.detach().contiguous().cpu()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's code, structure, attributes and weights."""
    import torch

    h = hashlib.sha256()
    for name, module in model.named_modules():
        cls = type(module)
        h.update(f"module:{name}:{cls.__module__}.{cls.__qualname__}\n".encode())
        for klass in _module_classes(cls):
            h.update(_class_source(klass).encode())
        h.update(module.extra_repr().encode())
        attrs = {
            k: _plain_value(v)
            for k, v in sorted(vars(module).items())
            if k not in _MODULE_INTERNALS and not k.startswith("_") and _plain_value(v) is not None
        }
        h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
        # Tensors kept as plain attributes are constants of the graph.
        for key, value in sorted(vars(module).items()):
            if isinstance(value, torch.Tensor):
                tensor_digest(h, f"{name}.{key}", value)
    # named_buffers includes non-persistent buffers, which state_dict leaves out.
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        tensor_digest(h, name, tensor)
    return h.hexdigest()


def input_specs(inputs: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
    """Shape and dtype of each example input, JSON-safe; and its dim order when it is
    not contiguous (a channels_last example input gives a channels_last program, and
    on Cortex-M targets decides which convolutions are lowered to CMSIS-NN)."""
    specs = []
    for t in inputs:
        dtype = str(t.dtype).removeprefix("torch.")
        spec: dict[str, Any] = {"shape": list(t.shape), "dtype": dtype}
        order = _dim_order(t)
        if order != list(range(t.dim())):
            spec["dim_order"] = order
        specs.append(spec)
    return specs


def _dim_order(tensor: torch.Tensor) -> list[int]:
    """The tensor's dim order (outermost dimension first), from its strides."""
    try:
        return [int(d) for d in tensor.dim_order()]
    except (RuntimeError, ValueError):  # strides that no dim order describes
        strides = tensor.stride()
        return sorted(range(tensor.dim()), key=lambda d: -strides[d])


def values_fingerprint(tensors: Sequence[Sequence[torch.Tensor]]) -> str:
    """SHA-256 of the values of a list of input tuples (calibration data)."""
    h = hashlib.sha256()
    for i, sample in enumerate(tensors):
        for j, tensor in enumerate(sample):
            tensor_digest(h, f"{i}.{j}", tensor)
    return h.hexdigest()


def build_key(
    *,
    model_hash: str,
    inputs: Sequence[Mapping[str, Any]],
    target: str,
    options: Mapping[str, Any],
    versions: Mapping[str, str | None],
) -> str:
    """The cache key: SHA-256 over everything that determines the program."""
    document = {
        "model": model_hash,
        "inputs": list(inputs),
        "target": target,
        "options": dict(options),
        "versions": dict(versions),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
