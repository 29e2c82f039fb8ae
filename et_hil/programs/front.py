"""The front of a build: the exported program, quantized when asked, shared by targets.

``torch.export`` and PT2E quantization (prepare, calibrate, convert, re-export)
do not depend on the backend that lowers the result, only on the quantizer: the
TOSA and Ethos-U55/U65/U85 targets share one Arm quantizer, so a board matrix
over them would otherwise export and calibrate the same model once per board.
The front is therefore a cache entry of its own, keyed by the model, the example
inputs' specs and dynamic shapes, the quantizer family
(:meth:`CompileTarget.quantizer_family`), the quantization settings and the
calibration data; a target's build takes the front
from the cache and lowers it. Tapped and faulted builds of the debugger reuse the
front of the plain build the same way.

An entry holds ``front.pt2`` (the exported program: float, or the PT2E fake-quant
program that is also the artifact's fake-quant reference) and ``front.json``
(whether it is quantized, output scales, the operator namespaces it uses).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from et_hil.errors import BuildError
from et_hil.programs import op_libraries

if TYPE_CHECKING:
    import torch

PROGRAM_NAME = "front.pt2"
FACTS_NAME = "front.json"


@dataclasses.dataclass(frozen=True)
class Front:
    """An exported program ready to lower, and what is known about it.

    Attributes:
        key: the front's cache key.
        path: ``front.pt2`` in the cache.
        quantized: True when PT2E quantized it (False for float programs, and when
            the quantizer found nothing to quantize: see ``skipped``).
        skipped: why a requested quantization was not applied, if so.
        scales: the quantization scale of each output (``None`` for float outputs).
        namespaces: operator namespaces the saved program uses (see
            :mod:`et_hil.programs.op_libraries`).
        cache_hit: True when this process found it in the cache.
        build_s: seconds the front took to make (when it was made).
    """

    key: str
    path: Path
    quantized: bool
    skipped: str | None
    scales: tuple[float | None, ...]
    namespaces: tuple[str, ...]
    cache_hit: bool
    build_s: float

    def program(self, model: str) -> Any:
        """A private copy of the exported program (lowering may change what it is given)."""
        return copy.deepcopy(load_program(self.path, self.namespaces, model))


def write(
    folder: Path,
    exported: Any,
    *,
    quantized: bool,
    skipped: str | None,
    scales: Sequence[float | None],
    build_s: float,
) -> None:
    """Save an exported program and its facts as a front entry in ``folder``."""
    import torch

    torch.export.save(exported, str(folder / PROGRAM_NAME))
    facts = {
        "quantized": quantized,
        "skipped": skipped,
        "scales": list(scales),
        # What a fresh process must register to load the program (op_libraries).
        "namespaces": op_libraries.namespaces_of(exported.graph_module) if quantized else [],
        "build_s": round(build_s, 3),
    }
    (folder / FACTS_NAME).write_text(json.dumps(facts, indent=1))


def read(key: str, folder: Path, *, cache_hit: bool) -> Front:
    """The front entry in ``folder``."""
    facts = json.loads((folder / FACTS_NAME).read_text())
    return Front(
        key=key,
        path=folder / PROGRAM_NAME,
        quantized=bool(facts["quantized"]),
        skipped=facts.get("skipped"),
        scales=tuple(facts["scales"]),
        namespaces=tuple(facts.get("namespaces") or ()),
        cache_hit=cache_hit,
        build_s=float(facts.get("build_s") or 0.0),
    )


# Loaded programs by file, most recent last: a matrix run lowers one front for
# several targets in a row, and loading a large one takes a good part of a second.
_LOADED: collections.OrderedDict[tuple[str, int], Any] = collections.OrderedDict()
_LOADED_MAX = 4


def load_program(path: Path, namespaces: Sequence[str], model: str) -> Any:
    """The ``ExportedProgram`` saved at ``path``, loaded once per process and file
    version; shared: copy it before changing it.

    The operator namespaces it uses are registered first (see
    :mod:`et_hil.programs.op_libraries`); a program from an older harness that did not
    record them is helped by registering what torch reports it could not resolve.

    Raises:
        BuildError: it cannot be loaded, naming the model and file.
    """
    stamp = (str(path), Path(path).stat().st_mtime_ns)
    if stamp in _LOADED:
        _LOADED.move_to_end(stamp)
        return _LOADED[stamp]
    program = _load(str(path), tuple(namespaces), model)
    _LOADED[stamp] = program
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return program


def _load(path: str, namespaces: tuple[str, ...], model: str) -> Any:
    import torch

    def unknown(namespace: str) -> BuildError:
        return BuildError(
            f"model '{model}': the exported program {path} uses operators of namespace "
            f"'{namespace}', which et-hil does not know how to register "
            f"(known: {', '.join(sorted(op_libraries.REGISTRIES))}); please report it"
        )

    try:
        op_libraries.register(("quantized_decomposed", *namespaces))
    except op_libraries.UnknownNamespace as exc:
        raise unknown(str(exc)) from exc
    tried: set[str] = set()
    while True:
        try:
            with op_libraries.logged_load_errors() as logged:
                return torch.export.load(path)
        except Exception as exc:  # torch's deserializer raises assorted types
            namespace = next(
                filter(None, map(op_libraries.unresolved_namespace, [exc, *logged])), None
            )
            if namespace is None or namespace in tried:
                cause = logged[-1] if logged else exc  # torch's own error, not its summary
                raise BuildError(
                    f"model '{model}': cannot load the exported program {path}: "
                    f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:300]}. "
                    "Rebuild it (--et-no-cache, or 'et-hil cache clear')"
                ) from exc
            tried.add(namespace)
            try:
                op_libraries.register([namespace])
            except op_libraries.UnknownNamespace as unknown_exc:
                raise unknown(namespace) from unknown_exc


@functools.lru_cache(maxsize=8)
def _module(path: str, mtime_ns: int, namespaces: tuple[str, ...], model: str) -> Any:
    return load_program(Path(path), namespaces, model).module()


def reference_module(path: Path, namespaces: Sequence[str], model: str) -> torch.nn.Module:
    """The saved program as a runnable module (the fake-quant reference), made once
    per process and file version."""
    return _module(str(path), Path(path).stat().st_mtime_ns, tuple(namespaces), model)  # type: ignore[no-any-return]
