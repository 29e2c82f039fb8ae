"""Make a BundleIO program (``.bpte``) of a built artifact, with the expected outputs a
check would compare with: what the ML team hands a firmware engineer."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from et_hil.errors import ConfigError
from et_hil.programs.artifact import Artifact

if TYPE_CHECKING:
    import torch as torch_types


def bundle_program(
    artifact: Artifact,
    inputs: Any,
    path: Path,
    *,
    expected: Sequence[Any] | None = None,
    model: torch_types.nn.Module | None = None,
) -> Path:
    """Write ``artifact``'s program with one test case to ``path`` (a ``.bpte``).

    The expected outputs are ``expected`` if given; else, for a quantized program,
    its fake-quant reference's outputs (what its test compared with, in LSB); else
    ``model``'s eager outputs (a float program's reference).

    Raises:
        ConfigError: a float program with neither ``expected`` nor ``model``.
        BuildError: the bundle cannot be made (names the model).
    """
    import torch

    from et_hil.boards.base import as_numpy
    from et_hil.executor_runner.bundle import write_bundle
    from et_hil.programs.builder import run_eager
    from et_hil.verdict.check import fake_quant_outputs

    tensors = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    for i, value in enumerate(tensors):
        if not isinstance(value, torch.Tensor):
            raise ConfigError(
                f"model '{artifact.model_name}': input {i} is a {type(value).__name__}, "
                "not a torch.Tensor; pass a tuple of tensors"
            )
    if expected is None:
        if artifact.quantized:
            expected = fake_quant_outputs(artifact, tensors)
        elif model is not None:
            expected = run_eager(model.eval(), tensors)
        else:
            raise ConfigError(
                f"model '{artifact.model_name}': a float program's expected outputs come from "
                "its model: pass model= (or expected=)"
            )
    arrays = [np.asarray(as_numpy(t)) for t in tensors]
    outputs = [np.asarray(as_numpy(t)) for t in expected]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=path.parent) as scratch:
        made = write_bundle(artifact, arrays, outputs, Path(scratch))
        shutil.move(made, path.with_name(path.name + f".tmp{os.getpid()}"))
        os.replace(path.with_name(path.name + f".tmp{os.getpid()}"), path)
    return path
