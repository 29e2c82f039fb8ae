"""Board files: what a board is, as data.

A board file is TOML, one board per file (``boards/*.toml`` ship built in;
``--board-file PATH`` adds a user's own)::

    name = "corstone320"
    kind = "fvp"                      # host | tosa | fvp | serial
    target = "ethos-u85-256"          # compile target
    description = "Arm Corstone-320 FVP, Cortex-M85 + Ethos-U85-256"
    capabilities = ["npu", "etdump"]
    run_timeout_s = 600

    [memory]                          # bytes, where known
    sram_bytes = 4194304

    [tolerance.quantized]
    max_lsb = 1

Sections a later stage owns (``vela``, ``fvp``, ``serial``) are kept as plain
tables in :attr:`BoardSpec.sections` for that stage to validate.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.tolerance import TolerancePolicy

KINDS = ("host", "tosa", "fvp", "serial")
CAPABILITIES = ("npu", "etdump", "intermediate_outputs", "cycle_counts", "bundled_io")
MEMORY_FIELDS = ("sram_bytes", "flash_bytes", "ddr_bytes")
STAGE_SECTIONS = ("vela", "fvp", "serial")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TOP_LEVEL = (
    "name",
    "kind",
    "target",
    "description",
    "cpu",
    "capabilities",
    "run_timeout_s",
    "require_full_delegation",
    "memory",
    "tolerance",
    *STAGE_SECTIONS,
)


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """One board, as read from its file.

    Attributes:
        name: the name used with ``--board``.
        kind: which implementation drives it (``host``, ``tosa``, ``fvp``, ``serial``).
        target: compile target of the programs it runs (``portable``, ``ethos-u85-256`` ...).
        description: one line for humans.
        cpu: the board's CPU (``cortex-m55`` ...), or ``None`` for the host.
        capabilities: features tests can require with ``@pytest.mark.et_needs``.
        run_timeout_s: default wall-clock limit of one run.
        require_full_delegation: fail programs that leave ops (other than the
            boundary quantize/dequantize) to the CPU.
        memory: capacities in bytes (``sram_bytes``, ``flash_bytes``, ``ddr_bytes``).
        tolerance: default tolerances of the board.
        sections: tables owned by later stages (``vela``, ``fvp``, ``serial``).
        path: the file it came from.
    """

    name: str
    kind: str
    target: str
    description: str = ""
    cpu: str | None = None
    capabilities: frozenset[str] = frozenset()
    run_timeout_s: float = 60.0
    require_full_delegation: bool = False
    memory: Mapping[str, int] = dataclasses.field(default_factory=dict)
    tolerance: TolerancePolicy = dataclasses.field(default_factory=TolerancePolicy)
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    path: Path | None = None


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"board file {path}: {message}")


def parse_board(data: Mapping[str, Any], path: Path) -> BoardSpec:
    """Validate the parsed TOML of one board file.

    Raises:
        ConfigError: naming the file and the field at fault.
    """
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise _fail(path, f"unknown field '{unknown[0]}' (known: {', '.join(_TOP_LEVEL)})")
    for required in ("name", "kind", "target"):
        if required not in data:
            raise _fail(path, f"missing required field '{required}'")
        if not isinstance(data[required], str) or not data[required]:
            raise _fail(path, f"field '{required}' must be a non-empty string")
    name, kind, target = data["name"], data["kind"], data["target"]
    if not _NAME_RE.match(name):
        raise _fail(path, f"field 'name' = {name!r}: use lowercase letters, digits, '-', '_', '.'")
    if kind not in KINDS:
        raise _fail(path, f"field 'kind' = {kind!r}: must be one of {', '.join(KINDS)}")

    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise _fail(path, "field 'capabilities' must be a list of strings")
    for capability in capabilities:
        if capability not in CAPABILITIES:
            raise _fail(
                path,
                f"field 'capabilities': unknown capability {capability!r} "
                f"(known: {', '.join(CAPABILITIES)})",
            )

    timeout = data.get("run_timeout_s", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(path, f"field 'run_timeout_s' must be a positive number, got {timeout!r}")

    full = data.get("require_full_delegation", False)
    if not isinstance(full, bool):
        raise _fail(path, "field 'require_full_delegation' must be true or false")

    memory = data.get("memory", {})
    if not isinstance(memory, Mapping):
        raise _fail(path, "[memory] must be a table")
    for key, value in memory.items():
        if key not in MEMORY_FIELDS:
            raise _fail(path, f"[memory] unknown field '{key}' (known: {', '.join(MEMORY_FIELDS)})")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _fail(path, f"[memory] field '{key}' must be a positive integer (bytes)")

    tolerance_table = data.get("tolerance", {})
    if not isinstance(tolerance_table, Mapping):
        raise _fail(path, "[tolerance] must be a table")
    try:
        tolerance = TolerancePolicy.from_mapping(tolerance_table, f"board file {path}")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    sections = {}
    for section in STAGE_SECTIONS:
        if section in data:
            if not isinstance(data[section], Mapping):
                raise _fail(path, f"[{section}] must be a table")
            sections[section] = dict(data[section])
    _check_fvp_section(path, sections.get("fvp"), kind)
    if kind == "serial":
        from harness.serial_config import parse_serial

        parse_serial(sections.get("serial"), path)  # fails at load, naming the field
    elif "serial" in sections:
        raise _fail(path, f"[serial] is for kind 'serial', this board is kind '{kind}'")

    cpu = data.get("cpu")
    if cpu is not None and not isinstance(cpu, str):
        raise _fail(path, "field 'cpu' must be a string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(path, "field 'description' must be a string")

    return BoardSpec(
        name=name,
        kind=kind,
        target=target,
        description=description,
        cpu=cpu,
        capabilities=frozenset(capabilities),
        run_timeout_s=float(timeout),
        require_full_delegation=full,
        memory=dict(memory),
        tolerance=tolerance,
        sections=sections,
        path=path,
    )


_FVP_FIELDS: dict[str, tuple[type, ...]] = {
    "platform": (str,),
    "runner_elf": (str,),
    "cycles": (bool,),
    "retries": (int,),
    "num_macs": (int,),
    "backends": (list,),
    "image": (str,),
}


def _check_fvp_section(path: Path, fvp: Mapping[str, Any] | None, kind: str) -> None:
    if kind == "fvp" and not fvp:
        raise _fail(path, "kind 'fvp' needs an [fvp] table with 'platform'")
    if fvp is None:
        return
    for key, value in fvp.items():
        if key not in _FVP_FIELDS:
            raise _fail(path, f"[fvp] unknown field '{key}' (known: {', '.join(_FVP_FIELDS)})")
        if isinstance(value, bool) and bool not in _FVP_FIELDS[key]:
            raise _fail(path, f"[fvp] field '{key}' has the wrong type ({value!r})")
        if not isinstance(value, _FVP_FIELDS[key]):
            wanted = " or ".join(t.__name__ for t in _FVP_FIELDS[key])
            raise _fail(path, f"[fvp] field '{key}' must be a {wanted}, got {value!r}")
    if kind == "fvp" and "platform" not in fvp:
        raise _fail(path, "[fvp] needs 'platform' (a file in fvp/, e.g. corstone320)")
    if any(b not in ("local", "docker") for b in fvp.get("backends", [])):
        raise _fail(path, f"[fvp] backends must be 'local' and/or 'docker', got {fvp['backends']}")


def load_board_file(path: str | Path) -> BoardSpec:
    """Read and validate one board file.

    Raises:
        ConfigError: the file is missing, is not valid TOML, has a bad field,
            or is a lab file (use :func:`load_board_files`).
    """
    specs = load_board_files(path)
    if len(specs) != 1:
        raise ConfigError(f"board file {path}: it is a lab file of {len(specs)} boards")
    return specs[0]


def load_board_files(path: str | Path) -> list[BoardSpec]:
    """The boards of one file: a board file (one board), or a lab file whose
    ``[[board]]`` tables each describe a board, e.g. every board of a rack::

        [[board]]
        name = "mps3-u55"
        kind = "serial"
        ...
        [board.serial]
        port = "/dev/serial/by-id/..."

    Raises:
        ConfigError: the file is missing, is not valid TOML, or has a bad field
            (the message names the file, the board and the field).
    """
    path = Path(path).expanduser().resolve()  # relative paths inside resolve against it
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"board file {path}: cannot read it ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"board file {path}: not valid TOML: {exc}") from exc
    if "board" not in data:
        return [parse_board(data, path)]
    others = sorted(set(data) - {"board"})
    if others or not isinstance(data["board"], list) or not data["board"]:
        raise ConfigError(
            f"lab file {path}: holds only [[board]] tables (found {others or data['board']!r})"
        )
    specs: list[BoardSpec] = []
    for k, table in enumerate(data["board"]):
        if not isinstance(table, Mapping):
            raise ConfigError(f"lab file {path}: [[board]] #{k + 1} must be a table")
        spec = parse_board(table, path)
        if spec.name in {s.name for s in specs}:
            raise ConfigError(f"lab file {path}: board '{spec.name}' is listed twice")
        specs.append(spec)
    return specs


def builtin_board_dir() -> Path:
    """Folder of the built-in board files (``boards/`` in a checkout, packaged in a wheel)."""
    packaged = importlib.resources.files("harness") / "builtin_boards"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "boards"


def load_boards(extra_files: Iterable[str | Path] = ()) -> dict[str, BoardSpec]:
    """All known boards: the built-in files, then the user's (which may replace a built-in).

    Raises:
        ConfigError: a bad file, or two user files defining the same name.
    """
    boards: dict[str, BoardSpec] = {}
    for path in sorted(builtin_board_dir().glob("*.toml")):
        for spec in load_board_files(path):
            boards[spec.name] = spec
    seen_user: dict[str, Path] = {}
    for extra in extra_files:
        for spec in load_board_files(extra):
            if spec.name in seen_user:
                raise ConfigError(
                    f"board file {extra}: board '{spec.name}' is already defined by "
                    f"{seen_user[spec.name]}"
                )
            seen_user[spec.name] = Path(extra)
            boards[spec.name] = spec
    return boards


def resolve_board_names(names: Iterable[str], boards: Mapping[str, BoardSpec]) -> list[str]:
    """Check requested names against the known boards, keeping order and dropping repeats.

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    resolved: list[str] = []
    for name in names:
        if name not in boards:
            raise ConfigError(
                f"unknown board '{name}'. Known boards: {', '.join(sorted(boards))}. "
                "Add your own with --board-file PATH."
            )
        if name not in resolved:
            resolved.append(name)
    return resolved
