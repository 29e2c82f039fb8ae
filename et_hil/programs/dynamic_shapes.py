"""Bounded dynamic shapes: what a program's inputs may be, and inputs at those sizes.

``torch.export`` takes ``dynamic_shapes`` (``{"x": {0: Dim("batch", min=1, max=8)}}``
or the same as a tuple per input); ExecuTorch plans memory for the upper bounds
and runs any size within them on runtimes that resize their inputs. The harness
records each input's dimensions (a number, or an expression of the program's
size symbols) with each symbol's range, and runs a program at its example size,
its smallest and its largest (:func:`sizes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


def spec_key(dynamic_shapes: Any) -> Any:
    """A JSON form of a ``dynamic_shapes`` argument, for the cache key (a Dim by its
    name and bounds, a derived one by its expression)."""
    if dynamic_shapes is None or isinstance(dynamic_shapes, int | str | bool):
        return dynamic_shapes
    if isinstance(dynamic_shapes, Mapping):
        return {str(k): spec_key(v) for k, v in sorted(dynamic_shapes.items(), key=str)}
    if isinstance(dynamic_shapes, list | tuple):
        return [spec_key(v) for v in dynamic_shapes]
    name = getattr(dynamic_shapes, "__name__", None)
    if name is not None and hasattr(dynamic_shapes, "min"):
        return {"dim": name, "min": _bound(dynamic_shapes.min), "max": _bound(dynamic_shapes.max)}
    return repr(dynamic_shapes)


def _bound(value: Any) -> int | str:
    """A Dim's bound: a number, or torch's infinity (no bound) by name."""
    return int(value) if isinstance(value, int) else str(value)


UNBOUNDED = "give its Dim a max (ExecuTorch plans memory for the largest size)"


def unbounded(dynamic_shapes: Any) -> list[str]:
    """The dimensions of a ``dynamic_shapes`` argument without an upper bound (a Dim
    without ``max``, ``Dim.AUTO``, ``Dim.DYNAMIC``), by name."""
    found: list[str] = []
    if isinstance(dynamic_shapes, Mapping):
        for value in dynamic_shapes.values():
            found += unbounded(value)
    elif isinstance(dynamic_shapes, list | tuple):
        for value in dynamic_shapes:
            found += unbounded(value)
    elif dynamic_shapes is not None and not isinstance(dynamic_shapes, int | str):
        name = getattr(dynamic_shapes, "__name__", None)
        bound = getattr(dynamic_shapes, "max", None)
        if name is None:  # a hint such as Dim.AUTO: torch chooses, without bounds
            found.append(repr(dynamic_shapes))
        elif bound is None or not isinstance(bound, int) or bound >= 2**62:
            found.append(str(name))
    return found


def describe(exported: Any) -> dict[str, Any] | None:
    """Each user input's dimensions (an int, or an expression of size symbols) and
    each symbol's range, from an ``ExportedProgram``; ``None`` when all are static.

    Raises:
        ValueError: a dimension without an upper bound (ExecuTorch plans memory
            for the largest size, so every dynamic dimension needs one).
    """
    import torch

    inputs = set(exported.graph_signature.user_inputs)
    shapes: list[list[Any]] = []
    symbols: dict[str, list[int]] = {}
    ranges = {str(sym): r for sym, r in exported.range_constraints.items()}
    for node in exported.graph.nodes:
        if node.op != "placeholder" or node.name not in inputs:
            continue
        value = node.meta.get("val")
        dims: list[Any] = []
        for size in getattr(value, "shape", ()):
            if isinstance(size, torch.SymInt):
                expr = size.node.expr
                for sym in expr.free_symbols:
                    bounds: Any = ranges.get(str(sym))
                    try:
                        symbols[str(sym)] = [int(bounds.lower), int(bounds.upper)]
                    except (AttributeError, OverflowError, TypeError, ValueError):
                        raise ValueError(
                            f"input dimension {expr} has no upper bound: {UNBOUNDED}"
                        ) from None
                dims.append(str(expr))
            else:
                dims.append(int(size))
        shapes.append(dims)
    if not symbols:
        return None
    return {"inputs": shapes, "symbols": symbols}


def _evaluate(expr: Any, values: Mapping[str, int]) -> int:
    if isinstance(expr, int):
        return expr
    import sympy

    parsed = sympy.sympify(expr)
    return int(parsed.subs({sympy.Symbol(k): v for k, v in values.items()}))


@dataclasses.dataclass(frozen=True)
class Size:
    """One size a dynamic program runs at: a label and each input's shape."""

    label: str
    values: Mapping[str, int]
    shapes: list[list[int]]


def sizes(dims: Mapping[str, Any], example: Sequence[Sequence[int]]) -> list[Size]:
    """The sizes to run: the example's, every symbol at its smallest, at its largest
    (a size equal to an earlier one is left out)."""
    symbols: Mapping[str, list[int]] = dims["symbols"]
    inputs: list[list[Any]] = dims["inputs"]
    # The example's value of each symbol: read off a dimension that is just that symbol.
    at_example: dict[str, int] = {}
    for shape, given in zip(inputs, example, strict=True):
        for expr, size in zip(shape, given, strict=True):
            if isinstance(expr, str) and expr in symbols:
                at_example[expr] = int(size)
    chosen = [
        ("example", at_example),
        ("smallest", {k: lo for k, (lo, _) in symbols.items()}),
        ("largest", {k: hi for k, (_, hi) in symbols.items()}),
    ]
    found: list[Size] = []
    for label, values in chosen:
        if set(values) != set(symbols):
            continue  # a symbol the example does not show on its own
        shapes = [[_evaluate(e, values) for e in shape] for shape in inputs]
        if all(s.shapes != shapes for s in found):
            found.append(Size(label, values, shapes))
    return found


def resized(tensor: Any, shape: Sequence[int]) -> Any:
    """``tensor`` at ``shape``: its values tiled and cropped along each dimension, so
    the data stays what the model was given (token ids stay ids, masks stay masks)."""
    out = tensor
    for dim, size in enumerate(shape):
        have = out.shape[dim]
        if have == size:
            continue
        if have < size:
            repeats = [1] * out.dim()
            repeats[dim] = -(-size // have)
            out = out.repeat(*repeats)
        out = out.narrow(dim, 0, size)
    return out.contiguous()


def shape_allowed(dims: Mapping[str, Any], index: int, shape: Sequence[int]) -> bool:
    """Whether input ``index`` may have ``shape``: its static dimensions equal, each
    dynamic one within what its expression gives over its symbols' ranges."""
    symbols: Mapping[str, list[int]] = dims["symbols"]
    expected: list[Any] = dims["inputs"][index]
    if len(expected) != len(shape):
        return False
    low = {k: lo for k, (lo, _) in symbols.items()}
    high = {k: hi for k, (_, hi) in symbols.items()}
    return all(
        int(size) == expr
        if isinstance(expr, int)
        else _evaluate(expr, low) <= int(size) <= _evaluate(expr, high)
        for expr, size in zip(expected, shape, strict=True)
    )
