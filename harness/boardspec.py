"""Board files: what a board is, as data.

A board file is TOML, one board per file (``boards/*.toml`` ship built in;
``--board-file PATH`` adds a user's own)::

    name = "corstone320"
    kind = "fvp"                      # host | tosa | fvp | serial
    target = "ethos-u85-256"          # compile target
    description = "Arm Corstone-320 FVP, Cortex-M85 + Ethos-U85-256"
    capabilities = ["npu", "etdump"]
    run_timeout_s = 600

    [memory]                          # bytes, where known (see harness.fit)
    sram_bytes = 4194304

    [tolerance.quantized]
    max_lsb = 1

Sections a later stage owns (``vela``, ``fvp``, ``serial``) are kept as plain
tables in :attr:`BoardSpec.sections`; they are checked here too, so every
mistake of a file (the compile target's name, ``[vela]`` keys, ``[serial]``
included) is reported at load time, all in one error.
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
from harness.targets import check_target_name, has_delegate, is_ethos_u, vela_problems
from harness.tolerance import TolerancePolicy

KINDS = ("host", "tosa", "fvp", "serial")
CAPABILITIES = ("npu", "etdump", "intermediate_outputs", "cycle_counts", "bundled_io")
# Capacities in bytes; which ones the fit check uses depends on the runner mode
# (see harness.fit): the semihosting FVP runner's pools, the firmware's program
# region, or flash/DDR as bounds.
MEMORY_FIELDS = (
    "sram_bytes",
    "flash_bytes",
    "ddr_bytes",
    "program_bytes",
    "file_pool_bytes",
    "method_pool_bytes",
)
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
        memory: capacities in bytes (:data:`MEMORY_FIELDS`; :mod:`harness.fit`
            says which one each runner mode uses).
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


def _error(path: Path, problems: list[str]) -> ConfigError:
    """One error for every problem of a file: one line for one, a list for several."""
    if len(problems) == 1:
        return ConfigError(f"board file {path}: {problems[0]}")
    lines = "".join(f"\n  - {problem}" for problem in problems)
    return ConfigError(f"board file {path}: {len(problems)} problems:{lines}")


def parse_board(data: Mapping[str, Any], path: Path) -> BoardSpec:
    """Validate the parsed TOML of one board file.

    Every problem of the file is found, not only the first.

    Raises:
        ConfigError: naming the file, then each problem on its own line with its field.
    """
    spec, problems, cause = _check_board(data, path)
    if problems or spec is None:
        raise _error(path, problems) from cause
    return spec


def _check_board(
    data: Mapping[str, Any], path: Path
) -> tuple[BoardSpec | None, list[str], Exception | None]:
    """The board of one table, or ``None`` and what is wrong with it (and the
    exception behind a problem, kept as the error's cause)."""
    problems = [
        f"unknown field '{key}' (known: {', '.join(_TOP_LEVEL)})"
        for key in data
        if key not in _TOP_LEVEL
    ]
    name, kind, target = _identity(data, problems)
    problems += _field_problems(data, target)
    memory = data.get("memory", {})
    if isinstance(memory, Mapping):
        problems += _memory_problems(memory, kind)
    else:
        problems.append("[memory] must be a table")
    tolerance, tolerance_cause = _tolerance(data, path, problems)
    sections = {s: dict(data[s]) for s in STAGE_SECTIONS if isinstance(data.get(s), Mapping)}
    section_cause = _section_problems(data, sections, kind, target, path, problems)
    cause = tolerance_cause or section_cause
    if problems or name is None or kind is None or target is None:
        return None, problems, cause
    spec = BoardSpec(
        name=name,
        kind=kind,
        target=target,
        description=data.get("description", ""),
        cpu=data.get("cpu"),
        capabilities=frozenset(data.get("capabilities", [])),
        run_timeout_s=float(data.get("run_timeout_s", 60.0)),
        require_full_delegation=data.get("require_full_delegation", False),
        memory=dict(memory),
        tolerance=tolerance,
        sections=sections,
        path=path,
    )
    return spec, [], None


def _identity(
    data: Mapping[str, Any], problems: list[str]
) -> tuple[str | None, str | None, str | None]:
    """``name``, ``kind`` and ``target``, each ``None`` when missing or bad
    (so the checks that depend on it are skipped rather than adding noise)."""
    given: dict[str, str] = {}
    for required in ("name", "kind", "target"):
        value = data.get(required)
        if required not in data:
            problems.append(f"missing required field '{required}'")
        elif not isinstance(value, str) or not value:
            problems.append(f"field '{required}' must be a non-empty string")
        else:
            given[required] = value
    name, kind, target = given.get("name"), given.get("kind"), given.get("target")
    if name is not None and not _NAME_RE.match(name):
        problems.append(f"field 'name' = {name!r}: use lowercase letters, digits, '-', '_', '.'")
    if kind is not None and kind not in KINDS:
        problems.append(f"field 'kind' = {kind!r}: must be one of {', '.join(KINDS)}")
        kind = None
    if target is not None and (problem := check_target_name(target)):
        problems.append(f"field 'target' = {target!r}: {problem}")
        target = None
    return name, kind, target


def _field_problems(data: Mapping[str, Any], target: str | None) -> list[str]:
    """The plain top-level fields: capabilities, run_timeout_s, require_full_delegation,
    cpu, description."""
    problems = []
    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        problems.append("field 'capabilities' must be a list of strings")
    else:
        problems += [
            f"field 'capabilities': unknown capability {capability!r} "
            f"(known: {', '.join(CAPABILITIES)})"
            for capability in capabilities
            if capability not in CAPABILITIES
        ]
    timeout = data.get("run_timeout_s", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(f"field 'run_timeout_s' must be a positive number, got {timeout!r}")
    full = data.get("require_full_delegation", False)
    if not isinstance(full, bool):
        problems.append("field 'require_full_delegation' must be true or false")
    elif full and target is not None and not has_delegate(target):
        problems.append(
            f"field 'require_full_delegation' = true: target '{target}' has no delegate: "
            "require_full_delegation cannot apply"
        )
    if not isinstance(data.get("cpu", ""), str):
        problems.append("field 'cpu' must be a string")
    if not isinstance(data.get("description", ""), str):
        problems.append("field 'description' must be a string")
    return problems


def _tolerance(
    data: Mapping[str, Any], path: Path, problems: list[str]
) -> tuple[TolerancePolicy, Exception | None]:
    table = data.get("tolerance", {})
    if not isinstance(table, Mapping):
        problems.append("[tolerance] must be a table")
        return TolerancePolicy(), None
    where = f"board file {path}"
    try:
        return TolerancePolicy.from_mapping(table, where), None
    except ValueError as exc:  # the parser stops at its first problem: one line of the list
        problems.append(_tolerance_problem(str(exc).removeprefix(where)))
        return TolerancePolicy(), exc


def _section_problems(
    data: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    kind: str | None,
    target: str | None,
    path: Path,
    problems: list[str],
) -> Exception | None:
    """Add the problems of ``[fvp]``, ``[vela]`` and ``[serial]``; return the
    serial parser's error, if any, as the cause."""
    not_tables = [s for s in STAGE_SECTIONS if s in data and s not in sections]
    problems += [f"[{section}] must be a table" for section in not_tables]
    if "fvp" not in not_tables:
        problems += _fvp_problems(sections.get("fvp"), kind)
    if "vela" in sections:
        problems += vela_problems(sections["vela"])
        if target is not None and not is_ethos_u(target):
            problems.append(
                f"[vela] is for Ethos-U targets (compiled by Vela); target '{target}' does not "
                "use it"
            )
    if "serial" in sections and kind not in (None, "serial"):
        problems.append(f"[serial] is for kind 'serial', this board is kind '{kind}'")
    if kind != "serial" or "serial" in not_tables:
        return None
    from harness.serial_config import parse_serial

    try:
        parse_serial(sections.get("serial"), path)
    except ConfigError as exc:  # it stops at its first problem: one line of the list
        problems.append(str(exc).removeprefix(f"board file {path}: "))
        return exc
    return None


def _tolerance_problem(message: str) -> str:
    """The tolerance parser's message without the file name it was given."""
    if message.startswith(": ") and not message.startswith(": ["):
        return "[tolerance] " + message[2:]  # a section-level problem
    return message.removeprefix(":").strip()


def _memory_problems(memory: Mapping[str, Any], kind: str | None) -> list[str]:
    problems = []
    for key, value in memory.items():
        if key not in MEMORY_FIELDS:
            problems.append(f"[memory] unknown field '{key}' (known: {', '.join(MEMORY_FIELDS)})")
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f"[memory] field '{key}' must be a positive integer (bytes)")
        # Fields that name where a runner mode keeps things, given to a board of
        # another mode, would be silently ignored by the fit check: say so.
        if key == "file_pool_bytes" and kind not in (None, "fvp"):
            problems.append(
                "[memory] field 'file_pool_bytes' is the semihosting runner's file pool, "
                f"for kind 'fvp'; this board is kind '{kind}'"
            )
        if key == "program_bytes" and kind == "fvp":
            problems.append(
                "[memory] field 'program_bytes' does not apply to kind 'fvp': the semihosting "
                "runner reads the program into its file pool (file_pool_bytes)"
            )
    return problems


_FVP_FIELDS: dict[str, tuple[type, ...]] = {
    "platform": (str,),
    "runner_elf": (str,),
    "cycles": (bool,),
    "retries": (int,),
    "num_macs": (int,),
    "backends": (list,),
    "image": (str,),
}


def _fvp_problems(fvp: Mapping[str, Any] | None, kind: str | None) -> list[str]:
    if fvp is None:
        return ["kind 'fvp' needs an [fvp] table with 'platform'"] if kind == "fvp" else []
    problems = []
    for key, value in fvp.items():
        if key not in _FVP_FIELDS:
            problems.append(f"[fvp] unknown field '{key}' (known: {', '.join(_FVP_FIELDS)})")
        elif isinstance(value, bool) and bool not in _FVP_FIELDS[key]:
            problems.append(f"[fvp] field '{key}' has the wrong type ({value!r})")
        elif not isinstance(value, _FVP_FIELDS[key]):
            wanted = " or ".join(t.__name__ for t in _FVP_FIELDS[key])
            problems.append(f"[fvp] field '{key}' must be a {wanted}, got {value!r}")
    if kind == "fvp" and "platform" not in fvp:
        problems.append("[fvp] needs 'platform' (a file in fvp/, e.g. corstone320)")
    backends = fvp.get("backends", [])
    if isinstance(backends, list) and any(b not in ("local", "docker") for b in backends):
        problems.append(f"[fvp] backends must be 'local' and/or 'docker', got {backends}")
    return problems


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
        ConfigError: the file is missing, is not valid TOML, or has bad fields
            (the message names the file, then every problem, each with its board
            and field).
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
    names: set[str] = set()
    problems: list[str] = []
    cause: Exception | None = None
    for k, table in enumerate(data["board"]):
        if not isinstance(table, Mapping):
            problems.append(f"[[board]] #{k + 1} must be a table")
            continue
        name = table.get("name")
        label = f"board '{name}'" if isinstance(name, str) and name else f"[[board]] #{k + 1}"
        spec, found, why = _check_board(table, path)
        problems += [f"{label}: {problem}" for problem in found]
        cause = cause or why
        if isinstance(name, str):
            if name in names:
                problems.append(f"board '{name}' is listed twice")
            names.add(name)
        if spec is not None:
            specs.append(spec)
    if problems:
        raise _error(path, problems) from cause
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
