"""Compile targets: which quantizer, partitioners and reports a board's programs use.

A target is named in the board file (``target = "ethos-u85-256"``); Ethos-U
targets take Vela settings from the board file's ``[vela]`` table.

* ``portable``: no delegate; every operator runs on the portable (and quantized) kernels.
* ``tosa-int`` / ``tosa-fp``: the TOSA backend (``TOSA-1.0+INT`` / ``+FP``).
* ``ethos-u55-N``, ``ethos-u65-N``, ``ethos-u85-N``: the Ethos-U backend through Vela.
* ``cortex-m55``, ``cortex-m85``: no delegate; ExecuTorch's Cortex-M backend
  (``backends/cortex_m``) replaces the quantized operators with ``cortex_m::``
  operators, which run on CMSIS-NN kernels; the rest runs on the portable kernels.

How a program is lowered for any target: ``to_edge_transform_and_lower`` with
the target's edge compile configuration and partitioners (the delegating
targets), then the target's edge passes (the Cortex-M targets: upstream's
``CortexMPassManager``, which rewrites operators in place instead of delegating
subgraphs), then ``to_executorch``.

Each family of targets is a :class:`~et_hil.programs.target_kind.TargetKind`
(:data:`BUILTIN_KINDS`); :mod:`et_hil.programs.target_registry` looks names up
among them and the kinds others register.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from et_hil.errors import BuildError
from et_hil.programs.compile_target import CompileTarget
from et_hil.programs.target_kind import TargetKind
from et_hil.programs.vela_options import VelaOptions
from et_hil.validation import convert_all

if TYPE_CHECKING:
    from et_hil.programs.quantization import QuantConfig

# Allowed MAC counts per Ethos-U (backends/arm/test/common.py asserts the same).
ETHOS_U_MACS = {"u55": (32, 64, 128, 256), "u65": (256, 512), "u85": (128, 256, 512, 1024, 2048)}
_ETHOS_U = re.compile(r"ethos-(u55|u65|u85)-(\d+)")
# TOSA 1.0 extensions ExecuTorch's TosaSpecification knows (the Ethos-U specifications
# use int16, int4, u55 and cf).
TOSA_EXTENSIONS = ("int16", "int4", "u55", "cf", "bf16", "fp8e4m3", "fp8e5m2", "fft", "var")
# What the Cortex-M quantizer's retrace (et_hil.programs.cortex_m_passes) does, as
# part of the cache key of every quantized Cortex-M program: bump it when the
# retrace changes what it quantizes. 1: NCHW convolutions on channels_last copies,
# recurrent layers decomposed, constants made in forward() folded. 2: 1-D
# convolutions as 2-D ones. 3: a 1-D convolution's activation fused.
CORTEX_M_RETRACE_REVISION = 3
# The same for the harness's passes around upstream's Cortex-M lowering (part of
# the cache key of every Cortex-M program). 1: 5-D transposes on the portable
# kernel, inverse layout copies dropped, operators with weights left in float a
# build error. 2: unused weights dropped, one-channel channels_last copies dropped.
# 3: whoever reads them.
CORTEX_M_PASSES_REVISION = 3
# TOSAQuantizer and EthosUQuantizer are one quantizer (EthosUQuantizer subclasses
# it; the TOSA specification they are given changes no annotation in ExecuTorch
# 1.5): a model quantized for tosa-int or any Ethos-U target is the same program,
# which tests/test_front.py checks graph by graph and weight by weight.
ARM_QUANTIZER = "arm"


@dataclasses.dataclass(frozen=True)
class PortableTarget:
    """No delegate: portable kernels, with Q/DQ operators for quantized programs."""

    name: str = "portable"
    int_only: bool = False
    delegates: bool = False

    def options(self) -> dict[str, Any]:
        """No options."""
        return {}

    def quantizer_family(self) -> str:
        """XNNPACK's symmetric quantizer."""
        return "xnnpack-symmetric"

    def quantizer(self, config: QuantConfig) -> Any:
        """XNNPACK's symmetric int8 quantizer: its Q/DQ graph runs on the portable
        quantized kernels, so no XNNPACK delegate is needed."""
        # Registers the out-variants of quantized_decomposed ops used by to_executorch.
        import executorch.kernels.quantized  # noqa: F401
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        if config.scheme != "int8":
            raise BuildError(
                f"target 'portable': quantization scheme '{config.scheme}' is not supported; "
                "use 'int8'"
            )
        return XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=config.per_channel)
        )

    def partitioners(self, folder: Path) -> list[Any]:
        """None: every operator stays on the CPU."""
        return []

    def lowering(self, folder: Path) -> contextlib.AbstractContextManager[None]:
        """Nothing to set up."""
        return contextlib.nullcontext()

    def edge_compile_config(self, quantized: bool) -> Any:
        """ExecuTorch's default."""
        return None

    def edge_passes(self, edge: Any, quantized: bool) -> Any:
        """No passes of its own."""
        return edge

    def reports(self, folder: Path) -> dict[str, Any]:
        """No compiler estimates."""
        return {}


def _arm_quantization_config(config: QuantConfig) -> Any:
    from executorch.backends.arm.quantizer import (
        get_symmetric_a16w8_quantization_config,
        get_symmetric_quantization_config,
    )

    if config.scheme == "int8":
        return get_symmetric_quantization_config(is_per_channel=config.per_channel)
    if config.scheme == "a16w8":
        return get_symmetric_a16w8_quantization_config(is_per_channel=config.per_channel)
    raise BuildError(f"quantization scheme '{config.scheme}' is not supported (int8, a16w8)")


@dataclasses.dataclass(frozen=True)
class TosaTarget:
    """The TOSA backend: the program's delegated parts are TOSA flatbuffers.

    Attributes:
        profile: ``INT`` or ``FP``.
        int16: add the int16 extension (needed by a16w8 programs).
        extensions: more TOSA extensions, as an Ethos-U's specification has them
            (``tosa-int+int16+int4+u55`` is the TOSA graph an Ethos-U55 is given:
            the golden reference of :mod:`et_hil.verdict.golden`).
    """

    profile: str = "INT"
    int16: bool = False
    extensions: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """``tosa-int``, ``tosa-fp``, or with extensions ``tosa-int+u55``..."""
        return f"tosa-{self.profile.lower()}" + "".join(f"+{e}" for e in self.extensions)

    @property
    def int_only(self) -> bool:
        """The INT profile takes quantized programs only."""
        return self.profile == "INT"

    @property
    def delegates(self) -> bool:
        """The TOSA partitioner delegates."""
        return True

    def options(self) -> dict[str, Any]:
        """The TOSA specification string."""
        return {"tosa_spec": self.spec_string}

    @property
    def spec_string(self) -> str:
        """``TOSA-1.0+INT``, ``TOSA-1.0+INT+int16`` (a16w8 programs), ``TOSA-1.0+FP``,
        or with the target's extensions (``TOSA-1.0+INT+int16+int4+u55``)."""
        extensions = list(self.extensions)
        if self.int16 and self.profile == "INT" and "int16" not in extensions:
            extensions.insert(0, "int16")
        return f"TOSA-1.0+{self.profile}" + "".join(f"+{e}" for e in extensions)

    def _compile_spec(self, folder: Path | None = None) -> Any:
        from executorch.backends.arm.tosa.compile_spec import TosaCompileSpec

        spec = TosaCompileSpec(self.spec_string)
        if folder is not None:
            spec.dump_intermediate_artifacts_to(str(folder))
        return spec

    def quantizer_family(self) -> str:
        """The Arm quantizer (shared with the Ethos-U targets: see :data:`ARM_QUANTIZER`)."""
        return ARM_QUANTIZER

    def quantizer(self, config: QuantConfig) -> Any:
        """The TOSA quantizer with the symmetric int8 or a16w8 configuration."""
        from executorch.backends.arm.quantizer import TOSAQuantizer

        return TOSAQuantizer(self._compile_spec()).set_global(_arm_quantization_config(config))

    def partitioners(self, folder: Path) -> list[Any]:
        """The TOSA partitioner; the TOSA flatbuffers are kept in ``folder``."""
        from executorch.backends.arm.tosa.partitioner import TOSAPartitioner

        return [TOSAPartitioner(self._compile_spec(folder))]

    def lowering(self, folder: Path) -> contextlib.AbstractContextManager[None]:
        """Nothing to set up."""
        return contextlib.nullcontext()

    def edge_compile_config(self, quantized: bool) -> Any:
        """ExecuTorch's default."""
        return None

    def edge_passes(self, edge: Any, quantized: bool) -> Any:
        """No passes of its own."""
        return edge

    def reports(self, folder: Path) -> dict[str, Any]:
        """No compiler estimates for TOSA."""
        return {}


@dataclasses.dataclass(frozen=True)
class EthosUTarget:
    """The Ethos-U backend: TOSA lowered, then compiled by Vela per partition.

    Attributes:
        name: ``ethos-u55-128`` and so on.
        system_config: Vela system configuration (upstream's default when None).
        memory_mode: Vela memory mode (upstream's default when None).
        extra_flags: more Vela flags.
    """

    name: str
    system_config: str | None = None
    memory_mode: str | None = None
    extra_flags: tuple[str, ...] = ()
    int_only: bool = True
    delegates: bool = True

    def options(self) -> dict[str, Any]:
        """Vela settings."""
        return {
            "system_config": self.system_config,
            "memory_mode": self.memory_mode,
            "extra_flags": list(self.extra_flags),
        }

    def _compile_spec(self, folder: Path | None = None) -> Any:
        from executorch.backends.arm.ethosu import EthosUCompileSpec

        flags = [*self.extra_flags]
        if folder is not None and "--verbose-performance" not in flags:
            flags.append("--verbose-performance")  # makes Vela write the per-layer CSV
        spec = EthosUCompileSpec(
            self.name,
            system_config=self.system_config,
            memory_mode=self.memory_mode,
            extra_flags=flags,
        )
        if folder is not None:
            spec.dump_intermediate_artifacts_to(str(folder))
        return spec

    def quantizer_family(self) -> str:
        """The Arm quantizer (shared with the TOSA targets: see :data:`ARM_QUANTIZER`)."""
        return ARM_QUANTIZER

    def tosa_target_name(self) -> str:
        """The TOSA target whose graph Vela is given for this NPU: its specification's
        profile and extensions (``tosa-int+int16+int4+u55`` for an Ethos-U55)."""
        spec = str(self._compile_spec().tosa_spec)  # "TOSA-1.0+INT+int16+int4+u55"
        _, profile, *extensions = spec.split("+")
        return f"tosa-{profile.lower()}" + "".join(f"+{e}" for e in extensions)

    def quantizer(self, config: QuantConfig) -> Any:
        """The Ethos-U quantizer with the symmetric int8 or a16w8 configuration."""
        from executorch.backends.arm.quantizer import EthosUQuantizer

        return EthosUQuantizer(self._compile_spec()).set_global(_arm_quantization_config(config))

    def partitioners(self, folder: Path) -> list[Any]:
        """The Ethos-U partitioner; Vela writes into ``folder``."""
        from executorch.backends.arm.ethosu import EthosUPartitioner

        return [EthosUPartitioner(self._compile_spec(folder))]

    def lowering(self, folder: Path) -> contextlib.AbstractContextManager[None]:
        """Give each partition its own Vela output folder."""
        from et_hil.programs.vela import per_partition_vela_folders

        return per_partition_vela_folders(folder)

    def edge_compile_config(self, quantized: bool) -> Any:
        """ExecuTorch's default."""
        return None

    def edge_passes(self, edge: Any, quantized: bool) -> Any:
        """No passes of its own."""
        return edge

    def reports(self, folder: Path) -> dict[str, Any]:
        """Vela's estimates, per partition and in total."""
        from et_hil.programs.vela import read_vela_reports

        return {"vela": read_vela_reports(folder)}


class _DropPassManagerDeprecation(logging.Filter):
    """Drops the "PassManager is deprecated" record ExecuTorch logs for every
    ``CortexMPassManager`` (an ``exir.pass_manager.PassManager``) the Cortex-M quantizer
    and passes make: upstream's internals, nothing a test author can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PassManager is deprecated" not in record.getMessage()


def _quiet_pass_manager_deprecation() -> None:
    """Install :class:`_DropPassManagerDeprecation` (idempotent)."""
    logger = logging.getLogger("executorch.exir.pass_manager")
    if not any(isinstance(f, _DropPassManagerDeprecation) for f in logger.filters):
        logger.addFilter(_DropPassManagerDeprecation())


@dataclasses.dataclass(frozen=True)
class CortexMTarget:
    """ExecuTorch's Cortex-M backend: CMSIS-NN kernels on the CPU, no delegate.

    Quantized with upstream's ``CortexMQuantizer`` (int8: convolution weights per
    channel, other weights per tensor, activations per tensor), on the model traced
    again so that NCHW convolutions, recurrent layers and constants made in
    ``forward()`` are quantized too (they stay float otherwise:
    :func:`et_hil.programs.cortex_m_passes.retrace_for_cmsis_nn`); lowered to edge with
    upstream's edge compile configuration, then ``CortexMPassManager`` replaces each
    quantized pattern (dequantize -> op -> quantize) with a ``cortex_m::`` operator
    and the remaining quantize/dequantize with ``cortex_m::`` ones. What it does not
    match stays on the portable kernels. The manager runs upstream's pass list with
    the harness's passes in (:mod:`et_hil.programs.cortex_m_passes`), for what
    upstream's list leaves that the runtime rejects or computes wrongly: pooling on
    NCHW tensors, an unfused quantized hardswish, a relu on a shared linear output,
    a matmul of linear outputs, a transpose of more than 4 dimensions, activations
    left in float. An int8 program that would keep a convolution or an operator
    with weights off CMSIS-NN, or that still calls an operator no portable kernel
    implements, is a ``BuildError`` naming each.

    Float programs are lowered as the portable target lowers them (ExecuTorch's
    default edge configuration, no passes): upstream's configuration keeps ops
    undecomposed (``hardswish``, ``silu``) that the portable kernels lack, and its
    passes assume a quantized graph.

    Attributes:
        name: ``cortex-m55`` or ``cortex-m85`` (upstream's ``CortexMTargetConfig``
            derives the CMSIS-NN variant from it: MVE on both).
        explicit_layout: upstream's experimental explicit-layout pipeline, which
            lowers convolutions on NCHW tensors itself (inserting
            ``cortex_m::transpose``). Off by default, as upstream; the retrace then
            gives NCHW convolutions channels_last copies of their inputs.
        board: the board the target is built for, named in build errors.
    """

    name: str
    explicit_layout: bool = False
    int_only: bool = False
    delegates: bool = False
    board: str = dataclasses.field(default="", compare=False)  # for messages only

    def options(self) -> dict[str, Any]:
        """The lowering pipeline and the revision of the harness's passes (the CPU is
        the target's name)."""
        return {"explicit_layout": self.explicit_layout, "passes": CORTEX_M_PASSES_REVISION}

    def quantizer_family(self) -> str:
        """Upstream's Cortex-M quantizer (one per layout pipeline), on the harness's
        retrace (its revision: :data:`CORTEX_M_RETRACE_REVISION`)."""
        layout = "-explicit-layout" if self.explicit_layout else ""
        return f"cortex-m{layout}+retrace-{CORTEX_M_RETRACE_REVISION}"

    def quantizer(self, config: QuantConfig) -> Any:
        """Upstream's ``CortexMQuantizer`` (int8, with its own weight granularity), on
        the model traced again so that it quantizes NCHW convolutions and recurrent
        layers too (:class:`et_hil.programs.cortex_m_passes.CmsisNnQuantizer`)."""
        if config.scheme != "int8":
            raise BuildError(
                f"target '{self.name}': quantization scheme '{config.scheme}' is not "
                "supported; use 'int8'"
            )
        if not config.per_channel:
            raise BuildError(
                f"target '{self.name}': per_channel=False is not supported: the Cortex-M "
                "quantizer quantizes convolution weights per channel and other weights "
                "per tensor (CMSIS-NN's kernels); build with per_channel=True"
            )
        from et_hil.programs.cortex_m_passes import CmsisNnQuantizer

        _quiet_pass_manager_deprecation()
        return CmsisNnQuantizer(use_explicit_layout=self.explicit_layout)

    def partitioners(self, folder: Path) -> list[Any]:
        """None: the Cortex-M backend rewrites operators instead (:meth:`edge_passes`)."""
        return []

    def lowering(self, folder: Path) -> contextlib.AbstractContextManager[None]:
        """Nothing to set up."""
        return contextlib.nullcontext()

    def edge_compile_config(self, quantized: bool) -> Any:
        """Quantized programs: upstream's (keeps ``linear`` and the activations the passes
        match from being decomposed, and skips the edge dialect check the rewritten graphs
        do not pass). Float programs: ExecuTorch's default."""
        if not quantized:
            return None
        from executorch.backends.cortex_m.edge_compile_config import (
            cortex_m_edge_compile_config,
        )

        return cortex_m_edge_compile_config()

    def edge_passes(self, edge: Any, quantized: bool) -> Any:
        """Quantized programs: every method of ``edge`` transformed by upstream's
        ``CortexMPassManager`` (with the harness's passes). Float programs: ``edge``
        unchanged.

        Raises:
            BuildError: the program would keep a convolution or an operator with
                weights off CMSIS-NN (float, on the portable kernels), or give a
                ``cortex_m`` kernel a float operand: each named, with why and what to
                do (:func:`et_hil.programs.cortex_m_passes.off_cmsis_nn`); or the passes
                left an operator that upstream's edge configuration keeps whole (no
                portable kernel implements it).
        """
        if not quantized:
            return edge
        from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager
        from executorch.backends.cortex_m.target_config import CortexMTargetConfig

        from et_hil.programs import cortex_m_passes

        config = CortexMTargetConfig.from_target_string(self.name)
        passes = cortex_m_passes.pass_list(self.explicit_layout)
        _quiet_pass_manager_deprecation()
        for method in edge.methods:
            manager = CortexMPassManager(
                edge.exported_program(method),
                passes=passes,
                target_config=config,
                use_explicit_layout=self.explicit_layout,
            )
            # The pass manager returns a new ExportedProgram; in ExecuTorch 1.5 the
            # EdgeProgramManager takes it by replacing the method's program (as
            # upstream's own Cortex-M tester does): EdgeProgramManager.transform
            # takes pass lists, not this pass manager.
            program = cortex_m_passes.drop_unused_constants(manager.transform())
            if off := cortex_m_passes.off_cmsis_nn(program):
                model = cortex_m_passes.model_class(program)
                where = ", ".join(
                    [f"model '{model}'"] * (model is not None)
                    + [f"board '{self.board}'"] * bool(self.board)
                    + [f"target '{self.name}'", f"method '{method}'"]
                )
                raise BuildError(cortex_m_passes.off_cmsis_nn_message(off, where=where))
            if left := cortex_m_passes.unlowered_preserved_ops(program):
                raise BuildError(
                    f"target '{self.name}', method '{method}': the Cortex-M passes left "
                    f"{', '.join(left)} unlowered; upstream's edge configuration keeps "
                    "these whole for the passes to lower, and no portable kernel "
                    "implements them"
                )
            edge._edge_programs[method] = program
        return edge

    def reports(self, folder: Path) -> dict[str, Any]:
        """No compiler estimates."""
        return {}


def is_ethos_u(name: str) -> bool:
    """True for Ethos-U targets (the ones compiled by Vela, which take ``[vela]``)."""
    return _ETHOS_U.fullmatch(name) is not None


def _vela_options(board: str, vela: Mapping[str, Any]) -> dict[str, Any]:
    """The Ethos-U target's options from a ``[vela]`` table (:class:`VelaOptions`).

    Raises:
        BuildError: a table not checked at load (a board made in code), naming each problem.
    """
    options, problems = convert_all(vela, VelaOptions, "[vela]")
    if options is None:
        raise BuildError(f"board '{board}': {'; '.join(problems)}")
    return {
        "system_config": options.system_config,
        "memory_mode": options.memory_mode,
        "extra_flags": options.extra_flags,
    }


def _tosa_problem(name: str) -> str | None:
    """Unknown TOSA extensions in ``tosa-int+...``."""
    given = name.split("+")[1:]
    if unknown := sorted(set(given) - set(TOSA_EXTENSIONS)):
        return (
            f"unknown TOSA extension(s) {', '.join(unknown)} (known: {', '.join(TOSA_EXTENSIONS)})"
        )
    return None


def _ethos_u_problem(name: str) -> str | None:
    """An Ethos-U with a MAC count it is not made with."""
    match = _ETHOS_U.fullmatch(name)
    if match is None:
        return None
    npu, macs = match.group(1), int(match.group(2))
    if macs not in ETHOS_U_MACS[npu]:
        return f"Ethos-{npu.upper()} has {', '.join(map(str, ETHOS_U_MACS[npu]))} MACs, not {macs}"
    return None


def _make_portable(name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
    return PortableTarget()


def _make_tosa(name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
    base, *extensions = name.split("+")
    return TosaTarget(profile=base.removeprefix("tosa-").upper(), extensions=tuple(extensions))


def _make_ethos_u(name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
    return EthosUTarget(name=name, **_vela_options(board, vela))


def _make_cortex_m(name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
    return CortexMTarget(name=name, board=board)


# The built-in targets, registered as any other (et_hil.programs.target_registry).
BUILTIN_KINDS = (
    TargetKind(
        name="portable",
        pattern="portable",
        spelled="portable",
        make=_make_portable,
        delegates=False,
    ),
    TargetKind(
        name="tosa",
        pattern=r"tosa-(int|fp)(\+[a-z0-9]+)*",
        spelled="tosa-int[+extensions], tosa-fp",
        make=_make_tosa,
        problem=_tosa_problem,
    ),
    TargetKind(
        name="ethos-u",
        pattern=_ETHOS_U.pattern,
        spelled=", ".join(
            f"ethos-{npu}-{{{','.join(map(str, macs))}}}" for npu, macs in ETHOS_U_MACS.items()
        ),
        make=_make_ethos_u,
        problem=_ethos_u_problem,
    ),
    TargetKind(
        name="cortex-m",
        pattern=r"cortex-m(55|85)",
        spelled="cortex-m55, cortex-m85",
        make=_make_cortex_m,
        delegates=False,
    ),
)
