"""A program someone else built: a ``.pte``, or a BundleIO ``.bpte`` with test cases.

A firmware engineer often has the program, not the ``nn.Module``. This module
reads one (with ExecuTorch's own deserializers: the file is data, nothing in it
runs), and makes it an :class:`~et_hil.programs.artifact.Artifact` any board can
run: its metadata (inputs, outputs, dim orders, operators, delegates, output
quantization scales) comes from the program itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil import dtypes
from et_hil.errors import ConfigError
from et_hil.programs import dim_order
from et_hil.programs.artifact import PTE_NAME, Artifact, write_metadata

PTE_MAGIC = b"ET"  # bytes 4..8 of a program: ET12 (the version digits vary)
BUNDLE_MAGIC = b"BP"  # ... of a bundle: BP08
_DEQUANTIZE = ("dequantize_per_tensor",)
_QUANTIZE = ("quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor")
_BOUNDARY = ("quantized_decomposed::", "executorch_prim::", "cortex_m::")


@dataclasses.dataclass(frozen=True)
class BundledCase:
    """One test case of a bundle: inputs and expected outputs, logical (NCHW) layout."""

    inputs: list[npt.NDArray[Any]]
    expected: list[npt.NDArray[Any]]


@dataclasses.dataclass(frozen=True)
class ProgramFile:
    """A program read from disk.

    Attributes:
        path: the file.
        pte: the program's bytes (inside the bundle, for a ``.bpte``).
        cases: the bundle's test cases of method ``forward`` (none for a ``.pte``).
    """

    path: Path
    pte: bytes
    cases: tuple[BundledCase, ...] = ()

    @property
    def bundled(self) -> bool:
        """True for a BundleIO program."""
        return bool(self.cases)

    @property
    def name(self) -> str:
        """What messages and records call it: the file's name without suffix."""
        return self.path.stem


def _tensor(value: Any, where: str) -> npt.NDArray[Any]:
    """A bundled tensor as a logical numpy array."""
    found = dtypes.from_scalar_type(int(value.scalar_type))
    numpy = dtypes.numpy_dtype(found.name) if found else None
    if numpy is None:
        raise ConfigError(f"{where}: scalar type {value.scalar_type} cannot be read here")
    sizes = [int(s) for s in value.sizes]
    data = np.frombuffer(bytes(value.data), dtype=numpy)
    order = [int(d) for d in value.dim_order] or None
    return dim_order.from_memory(data, sizes, order)


def read_program(path: Path) -> ProgramFile:
    """Read a ``.pte`` or ``.bpte``.

    Raises:
        ConfigError: the file is missing or is neither (names the file and what it holds).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"program {path}: cannot read it ({exc.strerror})") from exc
    magic = data[4:8]
    if magic.startswith(PTE_MAGIC):
        return ProgramFile(path, data)
    if not magic.startswith(BUNDLE_MAGIC):
        raise ConfigError(
            f"program {path} is neither an ExecuTorch program (.pte, 'ET..' at byte 4) nor a "
            f"BundleIO program (.bpte, 'BP..'): it reads {magic!r} there"
        )
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )

    try:
        bundle = deserialize_from_flatbuffer_to_bundled_program(data)
    except Exception as exc:  # the deserializer raises assorted types
        raise ConfigError(f"program {path}: not a readable BundleIO program ({exc})") from exc
    cases: list[BundledCase] = []
    for suite in bundle.method_test_suites:
        if suite.method_name != "forward":
            continue
        for n, case in enumerate(suite.test_cases):
            where = f"program {path}, test case {n}"
            cases.append(
                BundledCase(
                    [_tensor(v.val, f"{where} input {i}") for i, v in enumerate(case.inputs)],
                    [
                        _tensor(v.val, f"{where} output {i}")
                        for i, v in enumerate(case.expected_outputs)
                    ],
                )
            )
    return ProgramFile(path, bytes(bundle.program), tuple(cases))


def _op_names(plan: Any) -> list[str]:
    return [f"{op.name}.{op.overload}" if op.overload else op.name for op in plan.operators]


def _writers(plan: Any) -> dict[int, tuple[str, list[int]]]:
    """Each value written by a kernel call: (operator, the call's arguments)."""
    names = _op_names(plan)
    written: dict[int, tuple[str, list[int]]] = {}
    for chain in plan.chains:
        for instruction in chain.instructions:
            step = instruction.instr_args
            if type(step).__name__ == "KernelCall":
                written[step.args[-1]] = (names[step.op_index], list(step.args))
    return written


def _output_scales(plan: Any) -> list[float | None]:
    """The scale of the dequantize that writes each output (``None``: a float output)."""
    writers = _writers(plan)
    scales: list[float | None] = []
    for index in plan.outputs:
        op, args = writers.get(index, ("", []))
        scale = None
        if any(name in op for name in _DEQUANTIZE) and len(args) > 1:
            value = plan.values[args[1]].val
            if type(value).__name__ == "Double":
                scale = float(value.double_val)
        scales.append(scale)
    return scales


def describe(pte: bytes, where: str) -> dict[str, Any]:
    """What a program says about itself, as an artifact's metadata has it.

    Raises:
        ConfigError: the bytes are not a readable program.
    """
    from executorch.exir._serialize._program import deserialize_pte_binary

    from et_hil.programs.builder import program_io

    try:
        program = deserialize_pte_binary(pte).program
    except Exception as exc:  # the deserializer raises assorted types
        raise ConfigError(f"program {where}: not a readable ExecuTorch program ({exc})") from exc
    plan = program.execution_plan[0]
    io = program_io(plan)
    names = _op_names(plan)
    cpu: dict[str, int] = {}
    for chain in plan.chains:
        for instruction in chain.instructions:
            step = instruction.instr_args
            if type(step).__name__ == "KernelCall":
                cpu[names[step.op_index]] = cpu.get(names[step.op_index], 0) + 1
    calls = [
        plan.delegates[i.instr_args.delegate_index].id
        for chain in plan.chains
        for i in chain.instructions
        if type(i.instr_args).__name__ == "DelegateCall"
    ]
    scales = _output_scales(plan)
    specs = [{"shape": list(t["sizes"]), "dtype": t["dtype"]} for t in io["inputs"] if "sizes" in t]
    return {
        "program_io": io,
        "input_specs": specs,
        "output_specs": [{"shape": t.get("sizes"), "dtype": t.get("dtype")} for t in io["outputs"]],
        "output_scales": scales,
        "operators": sorted(set(names)),
        "planned_memory_bytes": int(sum(plan.non_const_buffer_sizes)),
        "quantized_program": any(any(q in n for q in _QUANTIZE) for n in names),
        "delegation": {
            "delegated_subgraphs": len(calls),
            "partitions": [{"backend": backend, "ops": {}} for backend in calls],
            "cpu_ops": dict(sorted(cpu.items())),
            "cpu_fallback": {k: v for k, v in sorted(cpu.items()) if not k.startswith(_BOUNDARY)},
        },
    }


def artifact_for(program: ProgramFile, folder: Path) -> Artifact:
    """The program as an artifact in ``folder`` (written there): what boards run.

    Its key is the SHA-256 of the program; ``target`` is unknown (``None``), since a
    program does not say what it was built for.
    """
    facts = describe(program.pte, str(program.path))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PTE_NAME).write_bytes(program.pte)
    key = hashlib.sha256(program.pte).hexdigest()
    quantized = facts.pop("quantized_program")
    metadata = {
        "model": program.name,
        "source": str(program.path),
        "target": None,
        # a program knows whether it quantizes, not how it was configured
        "quantization": {"scheme": "from the program"} if quantized else None,
        **facts,
        "pte_bytes": len(program.pte),
    }
    write_metadata(folder, metadata)
    return Artifact(key=key, folder=folder, metadata=metadata, cache_hit=False, obtain_s=0.0)


def save_outputs(path: Path, outputs: Sequence[npt.NDArray[Any]]) -> None:
    """Outputs as ``.npz`` (``out_0``, ``out_1``...)."""
    np.savez(path, **{f"out_{i}": np.asarray(o) for i, o in enumerate(outputs)})


def describe_line(program: ProgramFile, artifact: Artifact) -> str:
    """One line about the program, for ``et-hil run``."""
    delegation = artifact.metadata.get("delegation") or {}
    backends = sorted({p["backend"] for p in delegation.get("partitions") or []})
    kind = f"BundleIO, {len(program.cases)} test case(s)" if program.bundled else "no test cases"
    return (
        f"program {program.path} ({kind}; {len(program.pte)} bytes; "
        f"{delegation.get('delegated_subgraphs', 0)} delegate call(s)"
        + (f" to {', '.join(backends)}" if backends else "")
        + f"; CPU operators: {', '.join(delegation.get('cpu_ops') or {}) or 'none'})"
    )
