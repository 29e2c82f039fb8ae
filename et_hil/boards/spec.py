"""Board files: reading them into :class:`~et_hil.boards.board_spec.BoardSpec`, and their schema.

A board file is TOML, one board per file (the top-level ``boards/*.toml`` ship built in;
``--et-board-file PATH`` (pytest) or ``--board-file`` (et-hil) adds a user's own)::

    name = "corstone320"
    kind = "fvp"                      # a registered kind: host | tosa | fvp | serial ...
    target = "ethos-u85-256"          # compile target
    description = "Arm Corstone-320 FVP, Cortex-M85 + Ethos-U85-256"
    capabilities = ["npu", "etdump"]
    run_timeout_s = 600

    [memory]                          # bytes, where known (see et_hil.verdict.fit)
    sram_bytes = 4194304

    [tolerance.quantized]
    max_lsb = 1

Every table is a typed structure: the common fields and ``[memory]``,
``[tolerance]``, ``[vela]`` and ``[baseline]`` are :class:`BoardFile`; each
board kind adds its own table with its own type (``[fvp]``, ``[serial]``; see
:mod:`et_hil.boards.registry`). The loader checks a file against them, then what
spans fields and tables (the kind and the compile target by name, the kind's
table, the ``[memory]`` fields a kind uses, ``[vela]`` for Ethos-U targets only,
the figures ``[baseline]`` names), and reports every mistake of a file in one
error. ``et-hil schema`` prints the JSON Schema.

The board a file describes is data that names no kind
(:mod:`et_hil.boards.board_spec`); it is imported here because the loader's
callers want it too.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from et_hil.baseline_limits import LimitValue, figure_problem, limit_problem, not_a_limit
from et_hil.boards import registry
from et_hil.boards.board_spec import (
    CAPABILITIES,
    MEMORY_FIELDS,
    BoardSpec,
    Capability,
    KindSettings,
    Memory,
)
from et_hil.datafiles import builtin_board_dir
from et_hil.errors import ConfigError
from et_hil.programs.vela_options import VelaOptions
from et_hil.tolerance import TolerancePolicy, ToleranceTable
from et_hil.validation import Problem, convert_all, decode, json_schema, problems_message

__all__ = [
    "CAPABILITIES",
    "MEMORY_FIELDS",
    "BoardFile",
    "BoardSpec",
    "Memory",
    "board_file_schema",
    "board_file_schema_path",
    "board_file_schema_text",
    "builtin_board_dir",
    "load_board_file",
    "load_board_files",
    "load_boards",
    "parse_board",
    "resolve_board_names",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

_CAPABILITIES = ", ".join(CAPABILITIES)
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1, extra={"expect": "a non-empty string"})]


class BoardFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The tables of a board file common to every kind. Each kind adds its own
    table (``[fvp]``, ``[serial]``) with its own type (see :mod:`et_hil.boards.registry`)."""

    name: Annotated[_NonEmpty, msgspec.Meta(description="the name used with --et-board")]
    kind: Annotated[_NonEmpty, msgspec.Meta(description="the board kind (et-hil boards)")]
    target: Annotated[_NonEmpty, msgspec.Meta(description="compile target of its programs")]
    description: Annotated[
        str, msgspec.Meta(description="one line for humans", extra={"expect": "a string"})
    ] = ""
    cpu: Annotated[str | None, msgspec.Meta(extra={"expect": "a string"})] = None
    capabilities: Annotated[
        list[Annotated[Capability, msgspec.Meta(extra={"expect": f"one of {_CAPABILITIES}"})]],
        msgspec.Meta(
            description="features tests may require", extra={"expect": "a list of strings"}
        ),
    ] = []
    run_timeout_s: Annotated[
        float,
        msgspec.Meta(
            gt=0, description="time limit of one run", extra={"expect": "a positive number"}
        ),
    ] = 60.0
    require_full_delegation: Annotated[
        bool,
        msgspec.Meta(
            description="fail programs that leave ops to the CPU",
            extra={"expect": "true or false"},
        ),
    ] = False
    memory: Memory = Memory()
    tolerance: Annotated[
        ToleranceTable, msgspec.Meta(description="default tolerances ([tolerance.float] ...)")
    ] = ToleranceTable()
    vela: Annotated[VelaOptions, msgspec.Meta(description="Vela options of Ethos-U targets")] = (
        VelaOptions()
    )
    baseline: Annotated[
        dict[str, LimitValue],
        msgspec.Meta(
            description="regression limits against a baseline, per figure "
            '(e.g. cycles_total = "+5%", snr_db = "warn -2")'
        ),
    ] = {}

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """Each unknown capability, and each ``[baseline]`` limit that is not one,
        in the words of their own checks; the rest in the standard words."""
        if problem.key == "capabilities" and isinstance(problem.value, str) and problem.index:
            return (
                f"field 'capabilities': unknown capability {problem.value!r} "
                f"(known: {_CAPABILITIES})"
            )
        if problem.table == "[baseline]" and problem.kind == "invalid":
            return not_a_limit(f"[baseline]: {problem.key}", problem.value)
        return problem.standard_text()


_TOP_LEVEL = tuple(f.name for f in msgspec.structs.fields(BoardFile))


def parse_board(data: Mapping[str, Any], path: Path) -> BoardSpec:
    """Validate the parsed TOML of one board file.

    Every problem of the file is found, not only the first.

    Raises:
        ConfigError: naming the file, then each problem on its own line with its field.
    """
    spec, problems = _check_board(data, path)
    if problems or spec is None:
        raise ConfigError(problems_message(f"board file {path}", problems))
    return spec


def _kind_tables() -> dict[str, registry.BoardKind]:
    """Each registered kind's own table name, and its kind."""
    return {k.settings_table: k for k in registry.kinds().values() if k.settings_table}


def _check_board(data: Mapping[str, Any], path: Path) -> tuple[BoardSpec | None, list[str]]:
    """The board of one table, or ``None`` and what is wrong with it.

    Types, ranges, required and unknown fields are checked declaratively
    (:class:`BoardFile`, each kind's settings type), the declared types first, in
    field order; what spans fields or tables is checked here, after them.
    """
    tables = _kind_tables()
    common = {key: value for key, value in data.items() if key not in tables}
    board, found = decode(common, BoardFile)
    problems = [str(_with_kind_tables(problem, tables)) for problem in found]
    name, kind, target = _identity(data, problems)
    if target is not None and data.get("require_full_delegation") is True:
        from et_hil.programs.target_registry import has_delegate

        if not has_delegate(target):
            problems.append(
                f"field 'require_full_delegation' = true: target '{target}' has no delegate: "
                "require_full_delegation cannot apply"
            )
    memory = data.get("memory", {})
    if isinstance(memory, Mapping):
        problems += _memory_problems(memory, kind)
    problems += _vela_problems(data, target)
    problems += _baseline_problems(data)
    settings = _settings(data, tables, kind, path, problems)
    if problems or board is None or name is None or kind is None or target is None:
        return None, problems
    sections = {
        key: dict(value)
        for key, value in data.items()
        if (key == "vela" or key in tables) and isinstance(value, Mapping)
    }
    spec = BoardSpec(
        name=name,
        kind=kind,
        target=target,
        description=board.description,
        cpu=board.cpu,
        capabilities=frozenset(board.capabilities),
        run_timeout_s=float(board.run_timeout_s),
        require_full_delegation=board.require_full_delegation,
        memory={k: v for k in MEMORY_FIELDS if (v := getattr(board.memory, k)) is not None},
        tolerance=TolerancePolicy.from_table(board.tolerance),
        # as written: records and markers keep limits so (et_hil.baseline_limits)
        baseline_limits=msgspec.to_builtins(board.baseline),
        sections=sections,
        settings=settings,
        path=path,
    )
    return spec, []


def _with_kind_tables(problem: Problem, tables: Mapping[str, registry.BoardKind]) -> Problem:
    """An unknown top-level field lists the kinds' tables among the known ones."""
    if problem.kind == "unknown" and problem.owner is BoardFile:
        return dataclasses.replace(problem, known=(*_TOP_LEVEL, *tables))
    return problem


def _baseline_problems(data: Mapping[str, Any]) -> list[str]:
    """Each ``[baseline]`` limit, well-formed (:class:`BoardFile` checks the forms),
    that names no figure or has the sign of the figure's better direction."""
    table = data.get("baseline")
    if not isinstance(table, Mapping):
        return []  # the type check said so
    return [
        problem
        for key, value in table.items()
        if limit_problem(value, "[baseline]") is None
        and (problem := figure_problem(str(key), value, "[baseline]"))
    ]


def _identity(
    data: Mapping[str, Any], problems: list[str]
) -> tuple[str | None, str | None, str | None]:
    """``name``, ``kind`` and ``target`` when well-typed and meaningful, each else
    ``None`` (so the checks that depend on it are skipped rather than adding noise)."""
    from et_hil.programs.target_registry import check_target_name

    name, kind, target = (
        value if isinstance(value := data.get(key), str) and value else None
        for key in ("name", "kind", "target")
    )
    if name is not None and not _NAME_RE.match(name):
        problems.append(f"field 'name' = {name!r}: use lowercase letters, digits, '-', '_', '.'")
    if kind is not None and kind not in registry.kinds():
        known = ", ".join(registry.kinds())
        problems.append(f"field 'kind' = {kind!r}: must be one of {known}")
        kind = None
    if target is not None and (problem := check_target_name(target)):
        problems.append(f"field 'target' = {target!r}: {problem}")
        target = None
    return name, kind, target


def _vela_problems(data: Mapping[str, Any], target: str | None) -> list[str]:
    """``[vela]`` on a target that Vela does not compile for (its fields are
    :class:`BoardFile`'s to check)."""
    if not isinstance(data.get("vela"), Mapping) or target is None:
        return []
    from et_hil.programs.targets import is_ethos_u

    if is_ethos_u(target):
        return []
    return [f"[vela] is for Ethos-U targets (compiled by Vela); target '{target}' does not use it"]


def _settings(
    data: Mapping[str, Any],
    tables: Mapping[str, registry.BoardKind],
    kind: str | None,
    path: Path,
    problems: list[str],
) -> KindSettings | None:
    """The kind's own table, converted to its settings type; a table of another
    kind is refused. A kind that declares no type has its table in
    :attr:`BoardSpec.sections` only."""
    for table, owner in tables.items():
        if table in data and kind is not None and owner.name != kind:
            problems.append(f"[{table}] is for kind '{owner.name}', this board is kind '{kind}'")
    if kind is None:
        return None
    board_kind = registry.get(kind)
    if board_kind.settings_table is None:
        return None
    table = board_kind.settings_table
    raw = data.get(table)
    if raw is None:
        if board_kind.settings_required:
            problems.append(f"kind '{kind}' needs a [{table}] table")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"[{table}] must be a table")
        return None
    settings: KindSettings | None = None
    if board_kind.settings_type is not None:
        settings, found = convert_all(raw, board_kind.settings_type, f"[{table}]")
        if found:
            problems += found
            return None
    if board_kind.check_settings is not None:
        found = board_kind.check_settings(dict(raw) if settings is None else settings, path)
        if found:
            problems += found
            return None
    return settings


def _memory_problems(memory: Mapping[str, Any], kind: str | None) -> list[str]:
    """Fields that name where one runner mode keeps things, given to a board of
    another kind, would be silently ignored by the fit check: say so."""
    if kind is None:
        return []
    problems = []
    board_kind = registry.get(kind)
    for other in registry.kinds().values():
        for key, what in other.memory_fields.items():
            # A field several kinds declare (the semihosting runner's file pool, for
            # FVP and QEMU boards) belongs to each of them.
            if key in memory and other.name != kind and key not in board_kind.memory_fields:
                problems.append(
                    f"[memory] field '{key}' is {what}, for kind '{other.name}'; this board "
                    f"is kind '{kind}'"
                )
    for key, why in board_kind.memory_fields_refused.items():
        if key in memory:
            problems.append(f"[memory] field '{key}' does not apply to kind '{kind}': {why}")
    return problems


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def board_file_schema() -> dict[str, Any]:
    """The JSON Schema of a board file: the common fields, and each registered
    kind's table (typed where the kind gives its settings type).

    What spans fields is said where JSON Schema can say it: a kind that needs its
    table requires it, and a kind's table requires that kind. The rest (the
    compile target's name, ``[vela]`` keys, a method's required fields) is
    checked when the file is read. A lab file's ``[[board]]`` tables are each a
    ``$defs/BoardFile``.

    Raises:
        ConfigError: two kinds' settings types declare different tables of one name.
    """
    schema = json_schema(BoardFile)
    definitions = schema.setdefault("$defs", {})
    board = definitions["BoardFile"]
    rules: list[dict[str, Any]] = []
    for kind in registry.kinds().values():
        table = kind.settings_table
        if table is None:
            continue
        if kind.settings_type is not None:
            sub = json_schema(kind.settings_type)
            for name, definition in sub.get("$defs", {}).items():
                if definitions.setdefault(name, definition) != definition:
                    raise ConfigError(
                        f"board kind '{kind.name}': its settings type declares a table "
                        f"'{name}' that another kind declares differently; rename one"
                    )
            board["properties"][table] = {k: v for k, v in sub.items() if k != "$defs"}
        else:
            board["properties"][table] = {
                "type": "object",
                "description": f"the [{table}] table of kind '{kind.name}'",
            }
        is_kind = {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]}
        rules.append({"if": {"required": [table]}, "then": is_kind})
        if kind.settings_required:
            rules.append({"if": is_kind, "then": {"required": [table]}})
    if rules:
        board["allOf"] = rules
    return {"$schema": JSON_SCHEMA_DIALECT, "title": "et-hil board file", **schema}


def board_file_schema_text() -> str:
    """:func:`board_file_schema` as ``et-hil schema`` prints it and
    :func:`board_file_schema_path` holds it (the same bytes, so a test can say
    whether the published file is current)."""
    import json

    return json.dumps(board_file_schema(), indent=2, ensure_ascii=False) + "\n"


def board_file_schema_path() -> Path:
    """The published JSON Schema of board files (``et_hil/boards/board-file.schema.json``),
    made by ``et-hil schema -o`` with the built-in kinds."""
    from et_hil.datafiles import data_dir

    return data_dir("et_hil.boards") / "board-file.schema.json"


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
    for k, table in enumerate(data["board"]):
        if not isinstance(table, Mapping):
            problems.append(f"[[board]] #{k + 1} must be a table")
            continue
        name = table.get("name")
        label = f"board '{name}'" if isinstance(name, str) and name else f"[[board]] #{k + 1}"
        spec, found = _check_board(table, path)
        problems += [f"{label}: {problem}" for problem in found]
        if isinstance(name, str):
            if name in names:
                problems.append(f"board '{name}' is listed twice")
            names.add(name)
        if spec is not None:
            specs.append(spec)
    if problems:
        raise ConfigError(problems_message(f"board file {path}", problems))
    return specs


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
                "Add your own with --et-board-file PATH (et-hil commands: --board-file)."
            )
        if name not in resolved:
            resolved.append(name)
    return resolved
