"""Run a serialized ExecuTorch program (``.pte``) op by op in Python.

What the ``tosa`` board needs: the program's instructions executed as the
runtime would, each kernel call on the PyTorch kernel of the same operator and
each delegate call handed to a backend function (the TOSA reference model).
It reads nothing but the program's bytes (ExecuTorch's own flatbuffer, parsed
by ExecuTorch's deserializer), so a program from elsewhere is data: loading it
runs no code of its own.

Memory is laid out as the program plans it: each planned tensor is a view of
its buffer at its offset, in its dim order (NHWC for channels-last), so the
views the program makes without an instruction (a ``view_copy`` turned into a
planned alias) see what was written, as on the device. Values are handed to
PyTorch kernels as logical (NCHW) tensors over that memory, and to a delegate
as bytes in memory order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from et_hil import dtypes
from et_hil.programs import dim_order


class DelegateRunner(Protocol):
    """Runs the delegates of one backend (what the runtime's backend does)."""

    def input_count(self, backend: str, processed: bytes) -> int:
        """How many of a delegate call's arguments are inputs (the rest it writes)."""

    def __call__(
        self, backend: str, processed: bytes, inputs: list[np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]:
        """The delegate's outputs (memory order) for its inputs (memory order)."""


class ProgramError(Exception):
    """The program cannot be run here (an operator or value kind this interpreter
    does not know); the message names it."""


@dataclasses.dataclass(frozen=True)
class _TensorSpec:
    dtype: Any  # torch.dtype
    sizes: tuple[int, ...]
    dim_order: tuple[int, ...]


def _torch_dtype(code: int) -> Any:
    found = dtypes.from_scalar_type(code)
    if found is None:
        raise ProgramError(f"scalar type {code} is not one the harness handles")
    return dtypes.torch_dtype(found.name)


class Program:
    """A deserialized program, ready to run its method 0 any number of times.

    Args:
        pte: the ``.pte`` bytes.
        name: what messages call it.
    """

    def __init__(self, pte: bytes, name: str = "program") -> None:
        from executorch.exir._serialize._program import deserialize_pte_binary

        self.name = name
        try:
            self._program = deserialize_pte_binary(pte).program
        except Exception as exc:  # the deserializer raises assorted types
            raise ProgramError(f"{name} is not a readable ExecuTorch program: {exc}") from exc
        self.plan = self._program.execution_plan[0]
        self._ops = [self._resolve(op.name, op.overload) for op in self.plan.operators]
        self._constants: dict[int, Any] = {}

    # -- setting up -----------------------------------------------------------------

    def _resolve(self, name: str, overload: str) -> tuple[str, Any, Any]:
        """(full name, the op or ``None``, the functional op for an out variant)."""
        import torch

        full = f"{name}.{overload}" if overload else name
        namespace, _, op_name = name.partition("::")
        packet = getattr(getattr(torch.ops, namespace, None), op_name, None)
        if packet is None:
            raise ProgramError(f"{self.name} calls {full}, which no loaded library defines")
        op = getattr(packet, overload or "default", None) if _has(packet, overload) else None
        functional = None
        if op is None:
            # The out variant of a functional op PyTorch registers without one
            # (quantized_decomposed.quantize_per_tensor): call it and keep its result.
            base = overload.removesuffix("out").removesuffix("_") or "default"
            functional = getattr(packet, base, None) if _has(packet, base) else None
            if functional is None:
                raise ProgramError(f"{self.name} calls {full}, which PyTorch cannot run")
        return full, op, functional

    def _spec(self, index: int) -> _TensorSpec:
        value = self.plan.values[index].val
        return _TensorSpec(
            _torch_dtype(int(value.scalar_type)),
            tuple(int(x) for x in value.sizes),
            tuple(int(x) for x in value.dim_order) or tuple(range(len(value.sizes))),
        )

    def _constant(self, index: int) -> Any:
        import torch

        if index not in self._constants:
            value = self.plan.values[index].val
            spec = self._spec(index)
            raw = self._program.constant_buffer[value.data_buffer_idx].storage
            count = int(np.prod(spec.sizes, dtype=np.int64))
            flat = torch.frombuffer(bytearray(raw), dtype=spec.dtype, count=count)
            memory = flat.reshape([spec.sizes[d] for d in spec.dim_order])
            self._constants[index] = memory.permute(dim_order.inverse(spec.dim_order))
        return self._constants[index]

    def _planned(self, index: int, arenas: list[Any]) -> Any:
        """A planned tensor: a view of its buffer at its offset, in its dim order."""
        import torch

        value = self.plan.values[index].val
        spec = self._spec(index)
        place = value.allocation_info
        buffer = arenas[place.memory_id]
        offset = place.memory_offset_low | (place.memory_offset_high << 32)
        count = int(np.prod(spec.sizes, dtype=np.int64))
        size = count * torch.empty((), dtype=spec.dtype).element_size()
        if offset + size > buffer.numel() or offset % max(1, size // max(1, count)):
            raise ProgramError(f"{self.name}: value {index} lies outside its planned buffer")
        flat = buffer[offset : offset + size].view(spec.dtype)
        memory = flat.reshape([spec.sizes[d] for d in spec.dim_order])
        return memory.permute(dim_order.inverse(spec.dim_order))

    def _initial_values(self) -> list[Any]:
        """Every value before the first instruction: planned tensors over fresh
        buffers, constants, scalars."""
        import torch

        arenas = [torch.zeros(int(n), dtype=torch.uint8) for n in self.plan.non_const_buffer_sizes]
        values: list[Any] = [None] * len(self.plan.values)
        for index, evalue in enumerate(self.plan.values):
            kind = type(evalue.val).__name__
            if kind != "Tensor":
                values[index] = _scalar(evalue.val, kind)
                continue
            tensor = evalue.val
            if tensor.data_buffer_idx > 0 and tensor.allocation_info is not None:
                raise ProgramError(f"{self.name} has mutable buffers, which cannot run here")
            if tensor.data_buffer_idx > 0:
                values[index] = self._constant(index)
            elif tensor.allocation_info is not None:
                values[index] = self._planned(index, arenas)
            else:  # not planned: the kernel that makes it allocates it
                spec = self._spec(index)
                values[index] = torch.empty(spec.sizes, dtype=spec.dtype)
        return values

    # -- running ----------------------------------------------------------------------

    @property
    def input_count(self) -> int:
        """How many inputs method 0 takes."""
        return len(self.plan.inputs)

    def run(self, inputs: Sequence[Any], delegate: DelegateRunner) -> list[Any]:
        """Run method 0 on ``inputs`` (logical tensors); returns its outputs.

        Raises:
            ProgramError: an input count or shape that does not match, or an
                operator, value kind or instruction that cannot run here.
        """
        if len(inputs) != self.input_count:
            raise ProgramError(
                f"{self.name} takes {self.input_count} inputs, {len(inputs)} were given"
            )
        values = self._initial_values()
        for k, (index, tensor) in enumerate(zip(self.plan.inputs, inputs, strict=True)):
            if tuple(values[index].shape) != tuple(tensor.shape):
                raise ProgramError(
                    f"{self.name}: input {k} has shape {list(tensor.shape)}, the program's is "
                    f"{list(values[index].shape)}"
                )
            values[index].copy_(tensor)
        for chain in self.plan.chains:
            instructions = chain.instructions
            pc = 0
            while pc < len(instructions):
                step = instructions[pc].instr_args
                kind = type(step).__name__
                pc += 1
                if kind == "KernelCall":
                    self._kernel(step, values)
                elif kind == "DelegateCall":
                    self._delegate(step, values, delegate)
                elif kind == "MoveCall":
                    values[step.move_to] = values[step.move_from]
                elif kind == "JumpFalseCall":
                    if not bool(values[step.cond_value_index]):
                        pc = step.destination_instruction
                elif kind != "FreeCall":
                    raise ProgramError(f"{self.name}: instruction {kind} cannot run here")
        return [
            values[i].clone() if hasattr(values[i], "clone") else values[i]
            for i in self.plan.outputs
        ]

    def _arg(self, index: int, values: list[Any]) -> Any:
        kind = type(self.plan.values[index].val).__name__
        if kind in ("IntList", "TensorList"):
            return [values[i] for i in self.plan.values[index].val.items]
        if kind == "OptionalTensorList":
            return [values[i] if i >= 0 else None for i in self.plan.values[index].val.items]
        return values[index]

    def _kernel(self, step: Any, values: list[Any]) -> None:
        full, op, functional = self._ops[step.op_index]
        if full == "executorch_prim::et_view.default":  # a view the runtime makes in place
            source, size, out = step.args
            values[out] = values[source].view([int(s) for s in self._arg(size, values)])
            return
        arguments = (op or functional)._schema.arguments
        given = [self._arg(i, values) for i in step.args]
        args, kwargs = _call_args(arguments, given[: len(arguments)])
        try:
            result = (op or functional)(*args, **kwargs)
        except Exception as exc:  # a kernel's own error: name the operator
            raise ProgramError(f"{self.name}: {full} failed: {type(exc).__name__}: {exc}") from exc
        if op is not None:
            returns = step.args[len(arguments) :]
        else:
            # The functional form of an out variant: the variant's outs follow its
            # arguments (then its returns, the same values); the result goes there.
            returns = step.args[
                len(arguments) : len(arguments) + (len(given) - len(arguments)) // 2
            ]
        flat = list(result) if isinstance(result, tuple | list) and len(returns) > 1 else [result]
        for index, value in zip(returns, flat, strict=False):
            _store(values, index, value)

    def _delegate(self, step: Any, values: list[Any], delegate: DelegateRunner) -> None:
        backend = self.plan.delegates[step.delegate_index]
        if int(backend.processed.location) != 0:  # INLINE (deserializing inlines segments)
            raise ProgramError(f"{self.name}: delegate {backend.id}'s data is not in the program")
        processed = bytes(self._program.backend_delegate_data[backend.processed.index].data)
        count = delegate.input_count(backend.id, processed)
        inputs, outputs = step.args[:count], step.args[count:]
        arrays = [
            dim_order.to_memory(values[i].detach().contiguous().numpy(), self._spec(i).dim_order)
            for i in inputs
        ]
        produced = delegate(backend.id, processed, arrays)
        if len(produced) != len(outputs):
            raise ProgramError(
                f"{self.name}: delegate {backend.id} gave {len(produced)} outputs, "
                f"the program expects {len(outputs)}"
            )
        for index, array in zip(outputs, produced, strict=True):
            _store(values, index, _from_memory(array, self._spec(index)))


def _store(values: list[Any], index: int, value: Any) -> None:
    """Put a kernel's or delegate's result in its value: into the planned memory
    when the value has some (views of it then see it), else as it is."""
    current = values[index]
    if value is current:
        return
    if hasattr(current, "copy_") and hasattr(value, "shape") and current.shape == value.shape:
        current.copy_(value)
    else:
        values[index] = value


def _has(packet: Any, overload: str) -> bool:
    return (overload or "default") in packet.overloads()


def _scalar(value: Any, kind: str) -> Any:
    if kind == "Null":
        return None
    if kind == "Int":
        return int(value.int_val)
    if kind == "Double":
        return float(value.double_val)
    if kind == "Bool":
        return bool(value.bool_val)
    if kind == "String":
        return str(value.string_val)
    if kind in ("DoubleList", "BoolList"):
        return list(value.items)
    if kind in ("IntList", "TensorList", "OptionalTensorList"):
        return None  # resolved from their items when used
    raise ProgramError(f"value kind {kind} cannot be run here")


def _call_args(arguments: Sequence[Any], given: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for a schema, converting the integer codes
    a program stores for dtypes into ``torch.dtype``."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for argument, value in zip(arguments, given, strict=True):
        if value is not None and "ScalarType" in str(argument.type) and isinstance(value, int):
            value = _torch_dtype(value)
        if argument.kwarg_only:
            kwargs[argument.name] = value
        else:
            args.append(value)
    return args, kwargs


def _from_memory(array: np.ndarray[Any, Any], spec: _TensorSpec) -> Any:
    """A delegate's output (memory order) as a logical tensor of the program's dtype."""
    import torch

    memory = np.ascontiguousarray(array).reshape([spec.sizes[d] for d in spec.dim_order])
    tensor = torch.from_numpy(memory.copy()).permute(dim_order.inverse(spec.dim_order))
    return tensor.to(spec.dtype).contiguous()
