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

from harness import dim_order
from harness.artifact import Artifact
from harness.errors import BuildError

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
        # Bundled tensors keep their bytes in memory order and their dim order, and
        # the runtime copies the bytes as they are: lay each out as the program does.
        io = artifact.metadata.get("program_io") or {}
        in_orders = [spec.get("dim_order") for spec in io.get("inputs", [])]
        out_orders = [spec.get("dim_order") for spec in io.get("outputs", [])]
        case = MethodTestCase(
            inputs=[
                dim_order.strided_tensor(a, in_orders[k] if k < len(in_orders) else None)
                for k, a in enumerate(inputs)
            ],
            expected_outputs=[
                dim_order.strided_tensor(a, out_orders[k] if k < len(out_orders) else None)
                for k, a in enumerate(expected)
            ],
        )
        bundle = BundledProgram(
            None, [MethodTestSuite(method_name=METHOD, test_cases=[case])], str(artifact.pte_path)
        )
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


def all_ones(input_specs: Sequence[dict[str, Any]]) -> list[npt.NDArray[Any]]:
    """What the upstream runner feeds when it has no bundle: every input all
    ones (``true`` for bool), in the program's input shapes and dtypes."""
    return [np.ones(spec["shape"], dtype=np.dtype(str(spec["dtype"]))) for spec in input_specs]
