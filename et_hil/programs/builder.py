"""Model -> artifact: export, quantize, lower, serialize; cached by content.

The stages are separate functions so that targets with a quantizer, a
partitioner (the Arm ones) or edge passes (the Cortex-M ones) plug in without
changing the flow::

    check eager -> torch.export -> [PT2E quantize + re-export]
        -> lower (to_edge_transform_and_lower, then the target's edge passes) -> to_executorch
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from et_hil import dtypes
from et_hil.errors import BuildError
from et_hil.programs import artifact as artifact_files
from et_hil.programs import faults
from et_hil.programs import front as front_stage
from et_hil.programs import taps as tap_points
from et_hil.programs.artifact import Artifact
from et_hil.programs.cache import ArtifactCache
from et_hil.programs.compile_target import CompileTarget
from et_hil.programs.dynamic_shapes import UNBOUNDED
from et_hil.programs.dynamic_shapes import describe as describe_dynamic_dims
from et_hil.programs.dynamic_shapes import spec_key as dynamic_shape_key
from et_hil.programs.dynamic_shapes import unbounded as unbounded_dims
from et_hil.programs.faults import Fault
from et_hil.programs.fingerprint import (
    build_key,
    input_specs,
    model_fingerprint,
    values_fingerprint,
)
from et_hil.programs.quantization import QuantConfig, generated_calibration
from et_hil.programs.taps import TapPlan
from et_hil.programs.target_registry import get_target
from et_hil.programs.targets import TosaTarget
from et_hil.versions import tool_versions

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_DEQUANTIZE_OPS = ("dequantize_per_tensor", "dequantize_per_channel")


def model_name(model: torch.nn.Module) -> str:
    """The model's class name, as messages and records show it."""
    return type(model).__qualname__


def _first_lines(exc: BaseException, n: int = 6) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = "\n".join(lines[:n])
    return f"{type(exc).__name__}: {text}" + (" ..." if len(lines) > n else "")


def _shapes(inputs: Sequence[Any]) -> str:
    return ", ".join(
        f"{list(t.shape)} {str(t.dtype).removeprefix('torch.')}" if hasattr(t, "shape") else repr(t)
        for t in inputs
    )


def validate_inputs(model: torch.nn.Module, inputs: Any) -> tuple[torch.Tensor, ...]:
    """Normalize example inputs to a tuple of tensors.

    Raises:
        BuildError: inputs that are not tensors, naming the model.
    """
    import torch

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    result: tuple[torch.Tensor, ...] = tuple(inputs)
    for i, value in enumerate(result):
        if not isinstance(value, torch.Tensor):
            raise BuildError(
                f"model '{model_name(model)}': example input {i} is a {type(value).__name__}, "
                "not a torch.Tensor; pass a tuple of tensors"
            )
    return result


def run_eager(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Run the model eagerly, flattening its outputs to a list of tensors.

    Raises:
        BuildError: the model fails on these inputs (wrong shape, wrong dtype...).
    """
    import torch

    try:
        with torch.no_grad():
            out = model(*inputs)
    except Exception as exc:  # the user's forward() may raise anything
        raise BuildError(
            f"model '{model_name(model)}' fails in eager PyTorch on its example inputs "
            f"({_shapes(inputs)}): {_first_lines(exc, 3)}\n"
            "Check the example inputs' shapes and dtypes against what forward() expects."
        ) from exc
    flat, _ = torch.utils._pytree.tree_flatten(out)
    return [t for t in flat if isinstance(t, torch.Tensor)]


def check_program_outputs(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    """Refuse, by name, models whose outputs an ExecuTorch program cannot return.

    Raises:
        BuildError: a ``None`` or other non-tensor output (naming where it sits in
            the output structure), or no tensor output at all.
    """
    import torch

    with torch.no_grad():
        try:
            out = model(*inputs)
        except Exception:  # run_eager reports it, with the inputs' shapes
            run_eager(model, inputs)
            raise
    leaves, _ = torch.utils._pytree.tree_flatten_with_path(out)
    for path, value in leaves:
        if not isinstance(value, torch.Tensor):
            where = torch.utils._pytree.keystr(path) or "the output"
            raise BuildError(
                f"model '{model_name(model)}' returns {type(value).__name__} at output{where}; "
                "an ExecuTorch program returns tensors only. Return a tensor there, or leave "
                "it out of forward()'s result"
            )
    if not leaves:
        raise BuildError(
            f"model '{model_name(model)}' returns no tensors ({type(out).__name__}); "
            "a program needs at least one output tensor to be run and compared"
        )


def quantized_nodes(graph_module: Any) -> int:
    """How many quantize operators PT2E put into a converted graph."""
    return sum(
        1
        for node in graph_module.graph.nodes
        if node.op == "call_function" and _op_name(node).split(".")[-1].startswith("quantize_per_")
    )


def export_model(
    model: torch.nn.Module, inputs: Sequence[torch.Tensor], dynamic_shapes: Any = None
) -> Any:
    """``torch.export`` the model (with bounded ``dynamic_shapes``, as torch.export takes them).

    Raises:
        BuildError: export rejected the model, with torch's reason.
    """
    import torch

    try:
        return torch.export.export(
            model, tuple(inputs), dynamic_shapes=dynamic_shapes, strict=False
        )
    except Exception as exc:
        raise BuildError(
            f"torch.export rejected model '{model_name(model)}' "
            f"(example inputs {_shapes(inputs)}): {_first_lines(exc)}\n"
            "Make forward() exportable (no data-dependent Python control flow, no "
            "unsupported ops); see https://pytorch.org/docs/stable/export.html"
        ) from exc


def quantize_model(
    exported: Any,
    target: CompileTarget,
    config: QuantConfig,
    calibration: Sequence[Sequence[torch.Tensor]],
    name: str,
) -> Any:
    """PT2E: prepare, calibrate, convert. Returns the fake-quant ``GraphModule``.

    Raises:
        BuildError: naming the model and the PT2E step that failed.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    step = "prepare"
    try:
        # No guard-check submodule: the Arm quantizer's passes cannot run call_module.
        prepared = prepare_pt2e(exported.module(check_guards=False), target.quantizer(config))
        step = "calibrate"
        for sample in calibration:
            prepared(*sample)
        step = "convert"
        return convert_pt2e(prepared)
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(
            f"model '{name}': PT2E quantization ({config.scheme}) failed at {step}: "
            f"{_first_lines(exc)}"
        ) from exc


def output_scales(exported: Any) -> list[float | None]:
    """Scale of the dequantize feeding each graph output (``None`` when float)."""
    output_node = next(n for n in exported.graph.nodes if n.op == "output")
    scales: list[float | None] = []
    for node in output_node.args[0]:
        target = getattr(node, "target", None)
        name = getattr(target, "__name__", str(target))
        if any(op in name for op in _DEQUANTIZE_OPS) and "per_tensor" in name:
            scales.append(float(node.args[1]))
        else:
            scales.append(None)
    return scales


def output_specs(exported: Any) -> list[dict[str, Any]]:
    """Shape and dtype of each graph output."""
    output_node = next(n for n in exported.graph.nodes if n.op == "output")
    specs = []
    for node in output_node.args[0]:
        val = node.meta.get("val")
        specs.append(
            {
                # a dynamic dimension as its expression (``s0``), see dynamic_shapes
                "shape": [s if isinstance(s, int) else str(s) for s in val.shape],
                "dtype": str(val.dtype).removeprefix("torch."),
            }
            if val is not None and hasattr(val, "shape")
            else {"shape": None, "dtype": None}
        )
    return specs


def _op_name(node: Any) -> str:
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    return str(getattr(target, "_name", None) or name).replace("::", ".")


def partition_report(edge_program: Any) -> dict[str, Any]:
    """Per partition, the ops delegated; and the ops left to the CPU, by name and count.

    Quantize/dequantize ops at the program's edges stay on the CPU by design;
    they are listed under ``cpu_ops`` but not under ``cpu_fallback``, which
    holds only the ops that a backend could have taken and did not. The
    ``cortex_m`` ops a Cortex-M target's passes put in are the backend's own
    kernels: in ``cpu_ops`` only, so its ``cpu_fallback`` lists what stayed on
    the portable kernels.
    """
    graph_module = edge_program.exported_program().graph_module
    partitions: list[dict[str, Any]] = []
    cpu: dict[str, int] = {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if getattr(node.target, "__module__", None) == "executorch.exir.memory":
            continue  # memory.alloc (scratch buffers the Cortex-M passes add): no kernel
        name = _op_name(node)
        if "executorch_call_delegate" in name:
            lowered = getattr(graph_module, node.args[0].target)
            ops: dict[str, int] = {}
            for inner in lowered.original_module.graph_module.graph.nodes:
                if inner.op == "call_function" and "getitem" not in _op_name(inner):
                    ops[_op_name(inner)] = ops.get(_op_name(inner), 0) + 1
            partitions.append({"backend": lowered.backend_id, "ops": dict(sorted(ops.items()))})
        elif "getitem" not in name:
            cpu[name] = cpu.get(name, 0) + 1
    # Boundary quantize/dequantize and tap placeholders stay on the CPU by design.
    fallback = {
        k: v
        for k, v in cpu.items()
        if not k.startswith(("quantized_decomposed.", "executorch_devtools.", "cortex_m."))
    }
    delegated = sum(sum(p["ops"].values()) for p in partitions)
    return {
        "delegated_subgraphs": len(partitions),
        "delegated_nodes": delegated,
        "cpu_nodes": sum(cpu.values()),
        "partitions": partitions,
        "cpu_ops": dict(sorted(cpu.items())),
        "cpu_fallback": dict(sorted(fallback.items())),
    }


# Compile-spec entries that only tell the host compiler where to write its files.
# Upstream serializes every compile spec into the program, so left in, the
# checkout's path would make the same model a different .pte (other bytes, other
# size) on every machine; no runtime reads them. Upstream (executorch 1.5.1):
# ArmCompileSpec._to_list, backends/arm/common/arm_compile_spec.py, puts
# _DEBUG_ARTIFACT_KEY among the specs; no upstream issue was found.
HOST_ONLY_COMPILE_SPECS = frozenset({"debug_artifact_path"})


def strip_host_paths(edge: Any) -> None:
    """Drop host-only compile-spec entries from every delegate of ``edge``, in place,
    so the serialized program does not depend on where it was built."""
    from executorch.exir.lowered_backend_module import LoweredBackendModule

    for method in edge.methods:
        for lowered in edge.exported_program(method).graph_module.modules():
            if not isinstance(lowered, LoweredBackendModule):
                continue
            lowered._compile_specs = [
                spec for spec in lowered.compile_specs if spec.key not in HOST_ONLY_COMPILE_SPECS
            ]


def lower_and_serialize(
    exported: Any,
    target: CompileTarget,
    folder: Path,
    name: str,
    after_lowering: Callable[[Any], None] | None = None,
    *,
    quantized: bool,
) -> dict[str, Any]:
    """Lower to edge (partitioning for the target, then its edge passes), serialize
    ``.pte`` and ETRecord.

    ``quantized`` says whether ``exported`` is a PT2E-quantized program (the target's
    edge configuration and passes may differ for float programs).
    ``after_lowering`` sees (and may edit) the lowered edge program before
    ``to_executorch``: where tap placeholders are located and stripped.

    Returns:
        Metadata from lowering: partition report, compiler reports, planned memory,
        program I/O and the operators the program calls (``operators``).

    Raises:
        BuildError: naming the model and the stage.
    """
    from executorch.exir import to_edge_transform_and_lower

    if quantized:
        # The out-variants of the Q/DQ operators a quantized program keeps on the CPU
        # (its boundary at least), which to_executorch needs. Importing a quantizer
        # registers them too, but a process that took the front from the cache
        # (et_hil.programs.front) made no quantizer.
        import executorch.kernels.quantized  # noqa: F401

    compiler_dir = folder / "compiler"
    compiler_dir.mkdir()
    stage = "to_edge_transform_and_lower"
    try:
        with target.lowering(compiler_dir):
            edge = to_edge_transform_and_lower(
                exported,
                partitioner=target.partitioners(compiler_dir) or None,
                compile_config=target.edge_compile_config(quantized),
                # An ETRecord of a tapped program would hold the tap placeholders,
                # which cannot be serialized; the untapped build keeps the ETRecord.
                generate_etrecord=after_lowering is None,
            )
        stage = "the target's edge passes"
        edge = target.edge_passes(edge, quantized)
        stage = "the partition report"
        report = partition_report(edge)
        if after_lowering is not None:
            stage = "tap placement"
            after_lowering(edge)
        if quantized and target.name.startswith("cortex-m"):
            # The golden reference of a Cortex-M program: its lowered graph on
            # upstream's Python cortex_m kernels (et_hil.verdict.golden). The tosa
            # board needs no such file: it runs the .pte (boards.tosa.pte_interpreter).
            stage = "saving the lowered program"
            save_lowered_program(edge.exported_program(), folder / artifact_files.LOWERED_NAME)
        strip_host_paths(edge)
        stage = "to_executorch"
        program = edge.to_executorch()
        stage = "serialize"
        (folder / artifact_files.PTE_NAME).write_bytes(program.buffer)
        if after_lowering is None:
            program.get_etrecord().save(str(folder / artifact_files.ETRECORD_NAME))
        plan = program.executorch_program.execution_plan[0]
        planned = int(sum(plan.non_const_buffer_sizes))
        io = program_io(plan)
        operators = program_operators(program.executorch_program)
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(
            f"model '{name}', target '{target.name}': {stage} failed: {_first_lines(exc)}"
        ) from exc
    try:
        reports = target.reports(compiler_dir)
    except Exception as exc:  # a compiler report we cannot read: say so, naming the model
        raise BuildError(
            f"model '{name}', target '{target.name}': reading the compiler's reports in "
            f"{compiler_dir} failed: {_first_lines(exc)}"
        ) from exc
    return {
        "delegation": report,
        "planned_memory_bytes": planned,
        "program_io": io,
        "operators": operators,
        **reports,
    }


def program_operators(program: Any) -> list[str]:
    """Every operator the program's methods call on the CPU, by full name
    (``cortex_m::quantized_linear.out``, ``aten::add.out``), sorted: the kernels a
    firmware build must register (delegated work is not listed: the delegate runs it)."""
    names = {
        f"{op.name}.{op.overload}" if op.overload else op.name
        for plan in program.execution_plan
        for op in plan.operators
    }
    return sorted(names)


def _dtype_name(code: int) -> str:
    """The numpy/torch name of an ExecuTorch scalar type code (``et_hil.dtypes``)."""
    known = dtypes.from_scalar_type(code)
    return known.name if known is not None else f"scalar_type_{code}"


def program_io(plan: Any) -> dict[str, list[dict[str, Any]]]:
    """Dtype, sizes and dim order of the method's inputs and outputs, from the program
    itself: what a board needs to write inputs and decode outputs without the model."""

    def describe(index: int) -> dict[str, Any]:
        value = plan.values[index].val
        if not hasattr(value, "sizes"):
            return {"kind": type(value).__name__}
        code = int(getattr(value.scalar_type, "value", value.scalar_type))
        return {
            "kind": "tensor",
            "dtype": _dtype_name(code),
            "sizes": [int(x) for x in value.sizes],
            "dim_order": [int(x) for x in value.dim_order] or list(range(len(value.sizes))),
        }

    return {
        "inputs": [describe(i) for i in plan.inputs],
        "outputs": [describe(i) for i in plan.outputs],
    }


def save_lowered_program(program: Any, path: Path) -> None:
    """Save the lowered edge program, delegates included (ExecuTorch's own serializer)."""
    import pickle

    from executorch.exir.serde.serialize import serialize

    path.write_bytes(pickle.dumps(serialize(program)))


def load_lowered_program(path: Path) -> Any:
    """Load what :func:`save_lowered_program` saved (an ``ExportedProgram``).

    A pickle: only for files this harness made in its own cache (the golden
    reference reads it from the artifact, never from a repro folder's copy).
    """
    import pickle

    from executorch.exir.serde.serialize import deserialize

    return deserialize(pickle.loads(path.read_bytes()))


def _dynamic_dims(exported: Any, name: str) -> dict[str, Any] | None:
    """What each input's dimensions may be (:func:`et_hil.programs.dynamic_shapes.describe`).

    Raises:
        BuildError: a dynamic dimension without an upper bound, naming the model.
    """
    try:
        return describe_dynamic_dims(exported)
    except ValueError as exc:
        raise BuildError(f"model '{name}': {exc}") from exc


def _tapped(
    exported: Any, plan: TapPlan, quantized: bool, name: str
) -> tuple[Any, list[dict[str, Any]], Callable[[Any], None]]:
    """The program with its tap points as extra outputs, the taps' descriptions
    (filled with where each one runs once lowered), and the lowering hook."""
    from executorch.devtools.intermediate_output_tap import strip_taps_

    try:
        program, rows = tap_points.apply(exported, plan, quantized)
    except ValueError as exc:
        raise BuildError(f"model '{name}': {exc}") from exc

    def locate_and_strip(edge: Any) -> None:
        for row, where in zip(rows, tap_points.locate(edge, rows), strict=True):
            row["where"] = where
        strip_taps_(edge)

    return program, rows, locate_and_strip


class Builder:
    """Builds artifacts for boards, through a cache.

    Args:
        cache: where artifacts, and the fronts they share
            (:mod:`et_hil.programs.front`), are kept.
    """

    def __init__(self, cache: ArtifactCache) -> None:
        self.cache = cache
        self.builds = 0  # programs lowered by this process (artifact cache misses)
        self.fronts = 0  # exports (and quantizations) done by this process (front misses)

    def build(
        self,
        model: torch.nn.Module,
        example_inputs: Any,
        *,
        target: str,
        board: str,
        quantize: bool | str | QuantConfig | None = None,
        calibration: Sequence[Sequence[torch.Tensor]] | None = None,
        vela: Mapping[str, Any] | None = None,
        taps: TapPlan | None = None,
        dynamic_shapes: Any = None,
        fault: Fault | None = None,
    ) -> Artifact:
        """Return the artifact for ``model`` on ``target``, building it on a cache miss.

        Args:
            model: the ``nn.Module`` (put in eval mode).
            example_inputs: a tensor or tuple of tensors.
            target: compile target name (from the board file).
            board: board name, for messages.
            quantize: ``None``/``False`` for float; ``True``, ``"int8"`` or a
                :class:`QuantConfig` for PT2E quantization.
            calibration: input tuples to calibrate with; generated when absent.
            vela: the board file's ``[vela]`` table (Ethos-U targets).
            taps: intermediate tensors to surface as extra outputs (see
                :mod:`et_hil.programs.taps`); the artifact's ``taps`` metadata says
                which output is which.
            dynamic_shapes: bounded dynamic shapes, as ``torch.export`` takes them;
                the artifact's ``dynamic_dims`` metadata says what the inputs may be
                (:mod:`et_hil.programs.dynamic_shapes`).
            fault: a deliberate error in one layer of the program, not of its
                references (:mod:`et_hil.programs.faults`: tests of the verdict).

        Raises:
            BuildError: the model, inputs or target are at fault; the message names them.
        """
        started = time.perf_counter()
        model = model.eval()
        inputs = validate_inputs(model, example_inputs)
        config = QuantConfig.coerce(quantize)
        compile_target = get_target(target, board=board, vela=vela)
        if compile_target.int_only and config is None:
            raise BuildError(
                f"board '{board}': target '{target}' runs quantized programs only; "
                f"build model '{model_name(model)}' with quantize='int8'"
            )
        if (
            config is not None
            and config.scheme == "a16w8"
            and isinstance(compile_target, TosaTarget)
        ):
            compile_target = dataclasses.replace(compile_target, int16=True)  # int16 activations
        calib: list[tuple[torch.Tensor, ...]] = []
        front_options: dict[str, Any] = {"quantization": None}
        if config is not None:
            calib = (
                [validate_inputs(model, s) for s in calibration]
                if calibration is not None
                else generated_calibration(inputs, config)
            )
            front_options = {
                "quantization": config.as_dict(),
                "quantizer": compile_target.quantizer_family(),
                "calibration": values_fingerprint(calib),
            }
        if dynamic_shapes is not None:
            if missing := unbounded_dims(dynamic_shapes):
                raise BuildError(
                    f"model '{model_name(model)}': dynamic dimension(s) {', '.join(missing)} "
                    f"have no upper bound: {UNBOUNDED}"
                )
            # The export depends on them: part of the front's key, so of the artifact's.
            front_options["dynamic_shapes"] = dynamic_shape_key(dynamic_shapes)
        options: dict[str, Any] = {**front_options, "target": compile_target.options()}
        if taps is not None:
            options["taps"] = taps.as_dict()
        if fault is not None:
            options["fault"] = dataclasses.asdict(fault)
        versions = tool_versions()
        model_hash = model_fingerprint(model)
        specs = input_specs(inputs)
        key = build_key(
            model_hash=model_hash,
            inputs=specs,
            target=compile_target.name,
            options=options,
            versions=versions,
        )
        front_key = build_key(
            model_hash=model_hash, inputs=specs, target="front", options=front_options,
            versions=versions,
        )  # fmt: skip
        name = model_name(model)

        def build_into(folder: Path) -> None:
            self.builds += 1
            t0 = time.perf_counter()
            made = self.front(
                front_key, model, inputs, compile_target, config, calib, dynamic_shapes
            )
            exported = made.program(name)
            applied = config if made.quantized else None
            user_outputs = output_specs(exported)
            # Every layer a debug pass could tap (et_hil.verdict.debug bisects over these).
            tap_candidates = [
                tap_points.describe(n)
                for n in tap_points.candidates(exported.graph_module, applied is not None)
            ]
            program, after_lowering = exported, None
            if fault is not None:
                try:
                    program = faults.inject(program, fault)
                except ValueError as exc:
                    raise BuildError(f"model '{name}': {exc}") from exc
            tap_rows: list[dict[str, Any]] = []
            if taps is not None:
                program, tap_rows, after_lowering = _tapped(
                    program, taps, applied is not None, name
                )
            # The front is the fake-quant reference of a quantized program (without
            # taps or fault: tap placeholders cannot be serialized, and each tap
            # point's reference value is read from it by node name, see
            # et_hil.verdict.debug); a float program keeps its export the same way.
            kept = artifact_files.REFERENCE_NAME if applied else artifact_files.EXPORTED_NAME
            _link_or_copy(made.path, folder / kept)
            graph_hash = hashlib.sha256(str(program.graph).encode()).hexdigest()
            lowered = lower_and_serialize(
                program, compile_target, folder, name, after_lowering, quantized=applied is not None
            )
            artifact_files.write_metadata(
                folder,
                {
                    "model": name,
                    "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                    "target": compile_target.name,
                    "quantization": applied.as_dict() if applied else None,
                    "quantization_requested": config.as_dict() if config else None,
                    "quantization_skipped": made.skipped,
                    "versions": versions,
                    "input_specs": specs,
                    "output_specs": user_outputs,
                    "taps": tap_rows or None,
                    "dynamic_dims": _dynamic_dims(exported, name),
                    "tap_candidates": tap_candidates,
                    "fault": dataclasses.asdict(fault) if fault else None,
                    "output_scales": list(made.scales),
                    "reference_op_namespaces": list(made.namespaces),
                    "front": {
                        "key": front_key,
                        "cache_hit": made.cache_hit,
                        "build_s": made.build_s,
                    },
                    **lowered,
                    "pte_bytes": (folder / artifact_files.PTE_NAME).stat().st_size,
                    "graph_sha256": graph_hash,
                    "build_s": round(time.perf_counter() - t0, 3),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )

        folder, hit = self.cache.get_or_build(key, build_into)
        artifact = Artifact.from_folder(
            key, folder, cache_hit=hit, obtain_s=time.perf_counter() - started
        )
        log.info("%s %s for %s (%s)", "cache hit" if hit else "built", key[:12], name, target)
        return artifact

    def front(
        self,
        key: str,
        model: torch.nn.Module,
        inputs: Sequence[torch.Tensor],
        target: CompileTarget,
        config: QuantConfig | None,
        calibration: Sequence[Sequence[torch.Tensor]],
        dynamic_shapes: Any = None,
    ) -> front_stage.Front:
        """The exported (and, with ``config``, quantized) program of ``model``, from
        the cache or made now: every target of one quantizer family shares it.

        Raises:
            BuildError: export or quantization failed, naming the model.
        """
        name = model_name(model)

        def make(folder: Path) -> None:
            self.fronts += 1
            t0 = time.perf_counter()
            check_program_outputs(model, inputs)
            exported = export_model(model, inputs, dynamic_shapes)
            scales: list[float | None] = [None] * len(output_specs(exported))
            quantized, skipped = False, None
            if config is not None:
                fake_quant = quantize_model(exported, target, config, calibration, name)
                if quantized_nodes(fake_quant) == 0:
                    # Nothing the quantizer knows was found: the "int8" program would
                    # be the float one. Build that, and say so instead of calling it
                    # quantized.
                    skipped = (
                        f"quantize='{config.scheme}' requested, but the {target.name} "
                        "quantizer found nothing to quantize in this model: it was built and "
                        "is compared as a float program"
                    )
                else:
                    exported = export_model(fake_quant, inputs, dynamic_shapes)
                    scales = output_scales(exported)
                    quantized = True
            front_stage.write(
                folder, exported, quantized=quantized, skipped=skipped, scales=scales,
                build_s=time.perf_counter() - t0,
            )  # fmt: skip

        folder, hit = self.cache.get_or_build(key, make)
        return front_stage.read(key, folder, cache_hit=hit)


def _link_or_copy(source: Path, destination: Path) -> None:
    """``destination`` as a hard link to ``source`` (both in the cache: one copy on
    disk), else a copy (another filesystem)."""
    import os
    import shutil

    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)
