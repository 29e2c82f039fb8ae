"""Board files: what a board is, as data.

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

The common fields are a typed structure (:class:`BoardFile`); each board kind
adds its own table with its own type (``[fvp]``, ``[serial]``; see
:mod:`et_hil.boards.registry`). Everything is checked at load time, the
compile target's name and ``[vela]`` keys included, and every mistake of a file
is reported in one error. ``et-hil schema`` prints the JSON Schema.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from et_hil.boards import registry
from et_hil.datafiles import builtin_board_dir
from et_hil.errors import ConfigError
from et_hil.tolerance import TolerancePolicy
from et_hil.validation import convert_all, json_schema

CAPABILITIES = (
    "npu",
    "etdump",
    "intermediate_outputs",
    "cycle_counts",
    "bundled_io",
    "dynamic_shapes",  # runs a program at any input size within its bounds
)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1, extra={"expect": "a non-empty string"})]
_Bytes = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer (bytes)"})]


class Memory(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A board file's ``[memory]``: capacities in bytes, where known. Which ones the
    fit check uses depends on the runner mode (see :mod:`et_hil.verdict.fit`)."""

    sram_bytes: _Bytes | None = None
    flash_bytes: _Bytes | None = None
    ddr_bytes: _Bytes | None = None
    program_bytes: _Bytes | None = None
    file_pool_bytes: _Bytes | None = None
    method_pool_bytes: _Bytes | None = None


MEMORY_FIELDS = tuple(f.name for f in msgspec.structs.fields(Memory))


class BoardFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The fields of a board file common to every kind. Each kind adds its own
    table (``[fvp]``, ``[serial]``) with its own type (see :mod:`et_hil.boards.registry`)."""

    name: Annotated[_NonEmpty, msgspec.Meta(description="the name used with --et-board")]
    kind: Annotated[_NonEmpty, msgspec.Meta(description="the board kind (et-hil boards)")]
    target: Annotated[_NonEmpty, msgspec.Meta(description="compile target of its programs")]
    description: Annotated[
        str, msgspec.Meta(description="one line for humans", extra={"expect": "a string"})
    ] = ""
    cpu: Annotated[str | None, msgspec.Meta(extra={"expect": "a string"})] = None
    capabilities: Annotated[
        list[str],
        msgspec.Meta(
            description=f"features tests may require ({', '.join(CAPABILITIES)})",
            extra={"expect": "a list of strings"},
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
        dict[str, Any], msgspec.Meta(description="default tolerances ([tolerance.float] ...)")
    ] = {}
    vela: Annotated[
        dict[str, Any], msgspec.Meta(description="Vela options of Ethos-U targets")
    ] = {}
    baseline: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="regression limits against a baseline, per figure "
            '(e.g. cycles_total = "+5%", snr_db = "warn -2")'
        ),
    ] = {}


_TOP_LEVEL = tuple(f.name for f in msgspec.structs.fields(BoardFile))


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """One board, as read from its file.

    Attributes:
        name: the name used with ``--et-board``.
        kind: which registered kind drives it (``host``, ``tosa``, ``fvp``, ``serial`` ...).
        target: compile target of the programs it runs (``portable``, ``ethos-u85-256`` ...).
        description: one line for humans.
        cpu: the board's CPU (``cortex-m55`` ...), or ``None`` for the host.
        capabilities: features tests can require with ``@pytest.mark.et_needs``.
        run_timeout_s: default wall-clock limit of one run.
        require_full_delegation: fail programs that leave ops (other than the
            boundary quantize/dequantize) to the CPU.
        memory: capacities in bytes (:data:`MEMORY_FIELDS`; :mod:`et_hil.verdict.fit`
            says which one each runner mode uses).
        tolerance: default tolerances of the board.
        baseline_limits: regression limits over the defaults, per figure
            (:mod:`et_hil.report.baseline`).
        sections: the file's ``[vela]`` and kind tables, as plain tables.
        settings: the kind's own table converted to the kind's settings type
            (``FvpSettings`` ...), or ``None``.
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
    baseline_limits: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    settings: Any = None
    path: Path | None = None

    def file_path(self, value: str | Path | None) -> Path | None:
        """A path the board file names (a runner ELF ...): relative to the file's
        folder, absolute as given; ``None`` stays ``None``."""
        if value is None or value == "":
            return None
        path = Path(value)
        if self.path is not None and not path.is_absolute():
            path = self.path.parent / path
        return path.resolve()


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


def _kind_tables() -> dict[str, registry.BoardKind]:
    """Each registered kind's own table name, and its kind."""
    return {k.settings_table: k for k in registry.kinds().values() if k.settings_table}


def _check_board(
    data: Mapping[str, Any], path: Path
) -> tuple[BoardSpec | None, list[str], Exception | None]:
    """The board of one table, or ``None`` and what is wrong with it (and the
    exception behind a problem, kept as the error's cause).

    Types, ranges, required and unknown fields are checked declaratively
    (:class:`BoardFile`, each kind's settings type); what spans fields (the
    target's name, the kind's tables and memory fields, tolerances) is checked here.
    """
    tables = _kind_tables()
    common = {key: value for key, value in data.items() if key not in tables}
    board, problems = convert_all(common, BoardFile)
    if board is None:  # keep the checks below to the fields that are well-typed
        problems = [_known_fields(p) for p in problems]
    name, kind, target = _identity(data, problems)
    problems += _capability_problems(data)
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
    tolerance, tolerance_cause = _tolerance(data, path, problems)
    problems += _vela_problems(data, target)
    problems += _baseline_problems(data)
    settings, settings_cause = _settings(data, tables, kind, path, problems)
    cause = tolerance_cause or settings_cause
    if problems or board is None or name is None or kind is None or target is None:
        return None, problems, cause
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
        tolerance=tolerance,
        baseline_limits=dict(board.baseline),
        sections=sections,
        settings=settings,
        path=path,
    )
    return spec, [], None


def _baseline_problems(data: Mapping[str, Any]) -> list[str]:
    """Each ``[baseline]`` limit that does not parse (:class:`et_hil.baseline_limits.Limit`)."""
    table = data.get("baseline")
    if not isinstance(table, Mapping):
        return []
    from et_hil.baseline_limits import check_overrides

    return check_overrides(table, "[baseline]")


def _known_fields(problem: str) -> str:
    """An unknown top-level field lists the common fields and the kinds' tables."""
    if not problem.startswith("unknown field"):
        return problem
    head, _, _ = problem.partition(" (known: ")
    known = [*_TOP_LEVEL, *_kind_tables()]
    return f"{head} (known: {', '.join(known)})"


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


def _capability_problems(data: Mapping[str, Any]) -> list[str]:
    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list):
        return []  # the type check said so
    return [
        f"field 'capabilities': unknown capability {capability!r} "
        f"(known: {', '.join(CAPABILITIES)})"
        for capability in capabilities
        if isinstance(capability, str) and capability not in CAPABILITIES
    ]


def _tolerance(
    data: Mapping[str, Any], path: Path, problems: list[str]
) -> tuple[TolerancePolicy, Exception | None]:
    table = data.get("tolerance", {})
    if not isinstance(table, Mapping):
        return TolerancePolicy(), None  # the type check said so
    where = f"board file {path}"
    # The parser stops at its first problem: give it one section, then one field, at
    # a time, so that every problem of the table is a line of the list.
    found: list[str] = []
    cause: Exception | None = None

    def check(part: Mapping[str, Any]) -> bool:
        nonlocal cause
        try:
            TolerancePolicy.from_mapping(part, where)
        except ValueError as exc:
            found.append(_tolerance_problem(str(exc).removeprefix(where)))
            cause = cause or exc
            return False
        return True

    for section, fields in table.items():
        if not isinstance(fields, Mapping):
            check({section: fields})  # not a table
        elif check({section: {}}):  # a known section: now each of its fields
            for key, value in fields.items():
                check({section: {key: value}})
    if found:
        problems += found
        return TolerancePolicy(), cause
    return TolerancePolicy.from_mapping(table, where), None


def _vela_problems(data: Mapping[str, Any], target: str | None) -> list[str]:
    vela = data.get("vela")
    if not isinstance(vela, Mapping):
        return []
    from et_hil.programs.targets import is_ethos_u, vela_problems

    problems = vela_problems(vela)
    if target is not None and not is_ethos_u(target):
        problems.append(
            f"[vela] is for Ethos-U targets (compiled by Vela); target '{target}' does not use it"
        )
    return problems


def _settings(
    data: Mapping[str, Any],
    tables: Mapping[str, registry.BoardKind],
    kind: str | None,
    path: Path,
    problems: list[str],
) -> tuple[Any, Exception | None]:
    """The kind's own table, converted to its settings type; a table of another
    kind is refused."""
    for table, owner in tables.items():
        if table in data and kind is not None and owner.name != kind:
            problems.append(f"[{table}] is for kind '{owner.name}', this board is kind '{kind}'")
    if kind is None:
        return None, None
    board_kind = registry.get(kind)
    if board_kind.settings_table is None:
        return None, None
    table = board_kind.settings_table
    raw = data.get(table)
    if raw is None:
        if board_kind.settings_required:
            problems.append(f"kind '{kind}' needs a [{table}] table")
        return None, None
    if not isinstance(raw, Mapping):
        problems.append(f"[{table}] must be a table")
        return None, None
    settings: Any = dict(raw)
    if board_kind.settings_type is not None:
        settings, found = convert_all(raw, board_kind.settings_type, f"[{table}]")
        if found:
            problems += found
            return None, None
    if board_kind.check_settings is not None:
        found = board_kind.check_settings(settings, path)
        if found:
            # The kind's checks speak in messages, not exceptions: there is no
            # lower-level error to keep as the cause.
            problems += found
            return None, None
    return settings, None


def _tolerance_problem(message: str) -> str:
    """The tolerance parser's message without the file name it was given."""
    if message.startswith(": ") and not message.startswith(": ["):
        return "[tolerance] " + message[2:]  # a section-level problem
    return message.removeprefix(":").strip()


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
