"""BundleIO programs (``.bpte``): a ``.pte`` with test inputs and expected
outputs inside, for firmware that cannot take inputs any other way.

The upstream UART runner reads inputs only from a bundle (otherwise it feeds
all-ones), and checks the outputs against the bundle's expected ones with its
compile-time ``ET_ATOL``/``ET_RTOL``. The harness records that verdict but
judges the outputs itself, with the board's quantization-aware tolerances.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil.errors import BuildError
from et_hil.programs import dim_order
from et_hil.programs.artifact import Artifact

METHOD = "forward"  # the upstream runner runs method 0; the harness exports "forward" only


def write_bundle(
    artifact: Artifact,
    inputs: Sequence[npt.NDArray[Any]],
    expected: Sequence[npt.NDArray[Any]],
    folder: Path,
) -> Path:
    """The artifact's program bundled with one test case, in ``folder``.

    Bundles are named by content, so the same program and inputs give the same
    file (and a flasher or firmware build keyed on it can skip work).

    Raises:
        BuildError: the bundle cannot be made (names the model).
    """
    import torch
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.core import BundledProgram
    from executorch.devtools.bundled_program.serialize import (
        serialize_from_bundled_program_to_flatbuffer,
    )

    digest = hashlib.sha256(artifact.key.encode())
    for array in [*inputs, *expected]:
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    path = folder / f"program-{digest.hexdigest()[:16]}.bpte"
    if path.exists():
        return path
    try:
        case = MethodTestCase(
            inputs=[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs],
            expected_outputs=[torch.from_numpy(np.ascontiguousarray(a)) for a in expected],
        )
        bundle = BundledProgram(
            None, [MethodTestSuite(method_name=METHOD, test_cases=[case])], str(artifact.pte_path)
        )
        _lay_out_in_dim_order(bundle.serialize_to_schema(), artifact, inputs, expected)
        data = serialize_from_bundled_program_to_flatbuffer(bundle)
    except Exception as exc:  # devtools raises assorted types on bad cases
        raise BuildError(
            f"model '{artifact.model_name}': cannot make a BundleIO program: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _lay_out_in_dim_order(
    schema: Any,
    artifact: Artifact,
    inputs: Sequence[npt.NDArray[Any]],
    expected: Sequence[npt.NDArray[Any]],
) -> None:
    """Rewrite the bundled tensors of a non-default dim order in place.

    The runtime copies a bundled input's bytes into the program's input as they
    are, and compares outputs byte for byte after checking that the strides
    match (``tensors_are_close`` in bundled_program.cpp aborts otherwise). The
    devtools emitter makes every bundled tensor contiguous (dim order 0..n-1), so
    for a channels_last program it would feed NCHW bytes to an NHWC input: each
    tensor of such a program must carry the program's dim order and its bytes in
    that order. ``serialize_to_schema`` caches its result, so editing it here is
    what the flatbuffer is made from.
    """
    io = artifact.metadata.get("program_io") or {}
    case = schema.method_test_suites[0].test_cases[0]
    for values, arrays, specs in (
        (case.inputs, inputs, io.get("inputs", [])),
        (case.expected_outputs, expected, io.get("outputs", [])),
    ):
        for k, array in enumerate(arrays):
            order = specs[k].get("dim_order") if k < len(specs) else None
            if not order or list(order) == dim_order.identity(np.ndim(array)):
                continue
            values[k].val.data = dim_order.to_memory(np.asarray(array), order).tobytes()
            values[k].val.dim_order = [int(d) for d in order]


def all_ones(input_specs: Sequence[dict[str, Any]]) -> list[npt.NDArray[Any]]:
    """What the upstream runner feeds when it has no bundle: every input all
    ones (``true`` for bool), in the program's input shapes and dtypes."""
    return [np.ones(spec["shape"], dtype=np.dtype(str(spec["dtype"]))) for spec in input_specs]
