"""The ``[serial]`` table of a board file: how a physical board is reached,
flashed, reset and shared.

::

    [serial]
    port = "/dev/serial/by-id/usb-ARM_V2M-MPS3_0000-if01-port0"   # or socket://, rfc2217://
    baud = 115200
    bundle_io = true            # firmware built with -DET_BUNDLE_IO=ON: inputs via .bpte

    [serial.firmware]
    mode = "address"            # firmware built once with ET_MODEL_PTE_ADDR
    pte_address = 0x70000000    # where each .pte/.bpte is written
    image = "runner.bin"        # optional: flashed once per unit when it changes
    image_address = 0x0

    [serial.flash]
    method = "pyocd"            # or "command" with command = [...]
    target = "cortex_m"         # pyOCD target name
    probe_id = "L85986697A"

    [serial.reset]
    method = "pyocd"            # or "command", or "none" (the flasher resets)

    [[serial.unit]]             # identical boards: a pool shared by workers
    name = "left"
    port = "/dev/serial/by-id/...-A"
    probe_id = "..."

Commands are lists (no shell) whose items may name placeholders: ``{image}``,
``{address}`` (hex), ``{port}``, ``{probe_id}``, ``{target}``, ``{board}``,
``{unit}``; a firmware build command (embedded mode) gets ``{program}`` and
``{output}``. Everything is validated when the board file is read, so a typo
fails at collection, naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec

from et_hil.boards.labgrid.settings import LabgridSettings, LabgridTable, labgrid_settings
from et_hil.errors import ConfigError
from et_hil.validation import Problem, convert_all, problems_message

if TYPE_CHECKING:
    from et_hil.boards.board_spec import BoardSpec

FIRMWARE_MODES = ("address", "embedded")
FLASH_PLACEHOLDERS = ("image", "address", "port", "probe_id", "target", "board", "unit")
LABGRID_PLACEHOLDERS = ("place", "exporter")  # boards reached through labgrid only
BUILD_PLACEHOLDERS = ("program", "output", "board")

# ------------------------------------------------------------------ declared types
# What each field of the tables may hold, declared once: et_hil.validation checks
# a table against it (every problem at once) and `et-hil schema` publishes it.

# An address in TOML is an integer (0x70000000); a string in Python's integer
# syntax ("0x70000000") is accepted too, as it always was.
_ADDRESS_STRING = r"^(0[xX](_?[0-9a-fA-F])+|0[oO](_?[0-7])+|0[bB](_?[01])+|0|[1-9](_?[0-9])*)$"
_Address = Annotated[
    Annotated[int, msgspec.Meta(ge=0)] | Annotated[str, msgspec.Meta(pattern=_ADDRESS_STRING)],
    msgspec.Meta(extra={"expect": "an address like 0x70000000"}),
]
_Seconds = Annotated[float, msgspec.Meta(ge=0, extra={"expect": "a number >= 0"})]
_Text = Annotated[str, msgspec.Meta(min_length=1, extra={"expect": "a non-empty string"})]
_Port = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        description="device path (/dev/serial/by-id/...) or pyserial URL (socket://, rfc2217://)",
        extra={"expect": "a device path or a pyserial URL"},
    ),
]
_ProbeId = Annotated[
    _Text, msgspec.Meta(description="the debug probe's unique id (pyOCD --uid; `pyocd list`)")
]
_CommandLine = Annotated[
    Annotated[list[str], msgspec.Meta(min_length=1)] | Annotated[str, msgspec.Meta(min_length=1)],
    msgspec.Meta(extra={"expect": "a list of strings (or one string)"}),
]


class UnitTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One ``[[serial.unit]]`` table: one board of a pool of identical boards."""

    name: Annotated[
        _Text | None, msgspec.Meta(description="the unit's name (default: its index)")
    ] = None
    port: _Port
    probe_id: Annotated[
        _ProbeId | None, msgspec.Meta(description="this unit's probe (default: [serial]'s)")
    ] = None


class FirmwareTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[serial.firmware]``: how programs reach the board's runner firmware."""

    mode: Annotated[
        Literal["address", "embedded"],
        msgspec.Meta(
            description="address: firmware built once with ET_MODEL_PTE_ADDR, programs "
            "written at pte_address; embedded: firmware rebuilt with each program",
            extra={"expect": "'address' or 'embedded'"},
        ),
    ] = "address"
    pte_address: Annotated[
        _Address | None,
        msgspec.Meta(description="address mode: where programs are written (ET_MODEL_PTE_ADDR)"),
    ] = None
    image: Annotated[
        str | None,
        msgspec.Meta(
            description="address mode: firmware flashed once per unit when it changes "
            "(relative to the board file's folder)",
            extra={"expect": "a file path"},
        ),
    ] = None
    image_address: Annotated[
        _Address | None,
        msgspec.Meta(description="where a raw firmware image (or an embedded build) is written"),
    ] = None
    build: Annotated[
        _CommandLine | None,
        msgspec.Meta(
            description="embedded mode: the command that builds the firmware with {program} "
            "embedded and writes {output}"
        ),
    ] = None
    build_timeout_s: Annotated[
        _Seconds, msgspec.Meta(description="time limit of the build command")
    ] = 900.0


_PROBE_ID_IN_SERIAL = "put 'probe_id' in [serial] or in each [[serial.unit]]"


def _method(table: msgspec.Struct) -> str:
    """The ``method`` a flash or reset table was given (its variant's tag)."""
    return str(type(table).__struct_config__.tag)


class PyocdFlash(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    tag_field="method",
    tag="pyocd",
):
    """``[serial.flash]`` with ``method = "pyocd"``: pyOCD's load writes each image."""

    misplaced_fields: ClassVar[Mapping[str, str]] = {
        "probe_id": _PROBE_ID_IN_SERIAL,
        "command": "'command' is for method 'command'",
    }

    target: Annotated[_Text, msgspec.Meta(description="pyOCD target name (`pyocd list --targets`)")]
    timeout_s: Annotated[_Seconds, msgspec.Meta(description="time limit of one flash")] = 180.0
    extra_args: Annotated[
        tuple[str, ...],
        msgspec.Meta(
            description="extra arguments of `pyocd load`", extra={"expect": "a list of strings"}
        ),
    ] = ()

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """A missing target says where to find one."""
        if problem.kind == "missing" and problem.key == "target":
            return f"{problem.table} method 'pyocd' needs 'target' (see `pyocd list --targets`)"
        return problem.standard_text()


class CommandFlash(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    tag_field="method",
    tag="command",
):
    """``[serial.flash]`` with ``method = "command"``: a command of yours writes each image."""

    misplaced_fields: ClassVar[Mapping[str, str]] = {
        "probe_id": _PROBE_ID_IN_SERIAL,
        "extra_args": "'extra_args' is for method 'pyocd'; put them in 'command'",
    }

    command: Annotated[
        _CommandLine,
        msgspec.Meta(description="the flash command, e.g. [my-flash, {image}, {address}]"),
    ]
    target: Annotated[
        _Text | None,
        msgspec.Meta(description="a target name for {target} (and for a pyOCD reset)"),
    ] = None
    timeout_s: Annotated[_Seconds, msgspec.Meta(description="time limit of one flash")] = 180.0

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """A missing command shows one."""
        if problem.kind == "missing" and problem.key == "command":
            return (
                f"{problem.table} method 'command' needs 'command', "
                'e.g. ["my-flash", "{image}", "{address}"]'
            )
        return problem.standard_text()


FlashTable: TypeAlias = PyocdFlash | CommandFlash
"""``[serial.flash]``: how images are written to the board, one table per ``method``."""


class PyocdReset(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    tag_field="method",
    tag="pyocd",
):
    """``[serial.reset]`` with ``method = "pyocd"``: ``pyocd reset`` with the flash's target."""

    misplaced_fields: ClassVar[Mapping[str, str]] = {"command": "'command' is for method 'command'"}

    timeout_s: Annotated[_Seconds, msgspec.Meta(description="time limit of one reset")] = 30.0


class CommandReset(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    tag_field="method",
    tag="command",
):
    """``[serial.reset]`` with ``method = "command"``: a command of yours resets the board."""

    command: Annotated[_CommandLine, msgspec.Meta(description="the reset command")]
    timeout_s: Annotated[_Seconds, msgspec.Meta(description="time limit of one reset")] = 30.0

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """A missing command names the method that needs it."""
        if problem.kind == "missing" and problem.key == "command":
            return f"{problem.table} method 'command' needs 'command'"
        return problem.standard_text()


class NoReset(
    msgspec.Struct,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
    tag_field="method",
    tag="none",
):
    """``[serial.reset]`` with ``method = "none"``: the flasher resets the board."""


ResetTable: TypeAlias = PyocdReset | CommandReset | NoReset
"""``[serial.reset]``: how the board is reset before a run, one table per ``method``."""


class SerialTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A board file's ``[serial]`` table, as written (see :class:`SerialSettings`
    for the settings a board runs with)."""

    port: Annotated[
        _Port | None, msgspec.Meta(description="the board's UART (or [[serial.unit]] tables)")
    ] = None
    probe_id: _ProbeId | None = None
    baud: Annotated[
        int,
        msgspec.Meta(gt=0, description="UART baud rate", extra={"expect": "a positive integer"}),
    ] = 115200
    bundle_io: Annotated[
        bool,
        msgspec.Meta(
            description="firmware built with -DET_BUNDLE_IO=ON: programs are .bpte",
            extra={"expect": "true or false"},
        ),
    ] = False
    quiet_s: Annotated[
        _Seconds, msgspec.Meta(description="silence awaited before reset (drains earlier output)")
    ] = 0.3
    reconnect_s: Annotated[
        _Seconds, msgspec.Meta(description="how long a vanished port may take to come back")
    ] = 10.0
    retries: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="reruns after a link failure (port lost, bytes dropped)",
            extra={"expect": "an integer >= 0"},
        ),
    ] = 1
    lock_timeout_s: Annotated[
        _Seconds, msgspec.Meta(description="how long a run waits for a free unit")
    ] = 3600.0
    firmware: FirmwareTable = FirmwareTable()
    flash: FlashTable
    reset: Annotated[
        ResetTable | None,
        msgspec.Meta(
            description="how the board is reset before a run "
            "(default: pyocd when flashing with pyOCD, else none)"
        ),
    ] = None
    unit: Annotated[
        Annotated[tuple[UnitTable, ...], msgspec.Meta(min_length=1)] | None,
        msgspec.Meta(
            description="identical boards shared by workers, one table each (instead of port)",
            extra={"expect": "a non-empty array of [[serial.unit]] tables"},
        ),
    ] = None
    labgrid: Annotated[
        LabgridTable | None,
        msgspec.Meta(
            description="reach the board through a labgrid lab (instead of port or units)"
        ),
    ] = None


# ------------------------------------------------------------------ settings a board runs with


@dataclasses.dataclass(frozen=True)
class Unit:
    """One physical board of a pool.

    Attributes:
        name: the unit's name in records and lock files.
        port: device path (``/dev/ttyACM0``, ``/dev/serial/by-id/...``) or a
            pyserial URL (``socket://host:port``, ``rfc2217://host:port``).
        probe_id: the debug probe's unique id (pyOCD ``--uid``), if any.
    """

    name: str
    port: str
    probe_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Command:
    """A command template: argv items with placeholders, and its time limit."""

    argv: tuple[str, ...]
    timeout_s: float

    def render(self, values: Mapping[str, Any]) -> list[str]:
        """The argv with placeholders filled (values were checked at load time)."""
        return [item.format_map(dict(values)) for item in self.argv]


@dataclasses.dataclass(frozen=True)
class SerialSettings:
    """A serial board's ``[serial]`` table, validated, with its defaults and
    relations resolved (commands rendered from methods, units from ``port``).

    Attributes:
        units: the boards of the pool (one unless ``[[serial.unit]]`` lists several).
        baud: UART baud rate.
        bundle_io: the firmware takes BundleIO ``.bpte`` programs (custom inputs).
        firmware_mode: ``address`` (program written at ``pte_address``) or
            ``embedded`` (firmware rebuilt with each program).
        pte_address: where programs go in address mode.
        firmware_image: address-mode firmware flashed when a unit lacks it.
        image_address: where ``firmware_image`` (or an embedded build) goes, for raw images.
        build: embedded mode's firmware build command.
        flash: how images are written (raw images at ``{address}``).
        flash_method: ``pyocd`` or ``command``.
        flash_extra: extra pyOCD ``load`` arguments.
        flash_target: pyOCD target name.
        reset: how the board is reset; ``None`` when the flasher resets it.
        quiet_s: silence awaited before reset, so an earlier run's bytes are drained.
        reconnect_s: how long a vanished port may take to come back.
        retries: reruns after a link failure (port lost, bytes dropped).
        lock_timeout_s: how long a run waits for a free unit.
        labgrid: the labgrid place or pool, for boards in a labgrid lab (then
            ``units`` is empty: labgrid hands out a place per run).
    """

    units: tuple[Unit, ...]
    baud: int
    bundle_io: bool
    firmware_mode: str
    pte_address: int | None
    firmware_image: Path | None
    image_address: int | None
    build: Command | None
    flash: Command
    flash_method: str
    flash_extra: tuple[str, ...]
    flash_target: str | None
    reset: Command | None
    quiet_s: float
    reconnect_s: float
    retries: int
    lock_timeout_s: float
    labgrid: LabgridSettings | None = None


def _address(value: int | str | None) -> int | None:
    """An address field's value (its string form was checked by the declared pattern)."""
    return int(value, 0) if isinstance(value, str) else value


def _command(
    value: list[str] | str,
    where: str,
    allowed: Sequence[str],
    timeout_s: float,
    problems: list[str],
) -> Command | None:
    """A command template, or ``None`` with its problems added (every item's)."""
    if isinstance(value, str):
        import shlex  # only string commands need it

        try:
            argv = shlex.split(value)
        except ValueError as exc:  # an unclosed quote
            problems.append(f"[{where}] command {value!r}: {exc}")
            return None
    else:
        argv = list(value)
    if not argv:
        problems.append(f"[{where}] 'command' is empty")
        return None
    known = ", ".join("{" + a + "}" for a in allowed)
    found = len(problems)
    for item in argv:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(item) if f is not None]
        except ValueError as exc:  # a lone brace
            problems.append(f"[{where}] command item {item!r}: {exc}")
            continue
        problems += [
            f"[{where}] command item {item!r}: unknown placeholder '{{{field}}}' (known: {known})"
            for field in fields
            if field not in allowed
        ]
    return Command(tuple(argv), timeout_s) if len(problems) == found else None


def _units(table: SerialTable, problems: list[str]) -> tuple[Unit, ...]:
    if table.labgrid is not None:
        if table.port is not None or table.unit is not None:
            problems.append(
                "[serial] with [serial.labgrid] takes no 'port' or [[serial.unit]]: "
                "labgrid hands out the place and its console"
            )
        return ()
    if table.unit is None:
        if table.port is None:
            problems.append("[serial] needs 'port' (or [[serial.unit]] tables, one per board)")
            return ()
        return (Unit("0", table.port, table.probe_id),)
    if table.port is not None:
        problems.append("[serial] give 'port' or [[serial.unit]] tables, not both")
    units = tuple(
        Unit(
            unit.name if unit.name is not None else str(k),
            unit.port,
            unit.probe_id or table.probe_id,
        )
        for k, unit in enumerate(table.unit)
    )
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        problems.append(f"[[serial.unit]] names must differ, got {names}")
    ports = [u.port for u in units]
    if len(set(ports)) != len(ports):
        problems.append(f"[[serial.unit]] two units share one port: {ports}")
    return units


def _resolve(table: SerialTable, path: Path | None) -> tuple[SerialSettings | None, list[str]]:
    """The settings of a well-typed table, or ``None`` and every problem across
    its fields (the declared types cannot say that mode 'address' needs
    'pte_address', or which placeholders a command may use)."""
    problems: list[str] = []
    units = _units(table, problems)
    lab = labgrid_settings(table.labgrid, problems) if table.labgrid is not None else None
    command_placeholders = FLASH_PLACEHOLDERS + (LABGRID_PLACEHOLDERS if lab else ())

    firmware = table.firmware
    mode = firmware.mode
    pte_address = _address(firmware.pte_address)
    image_address = _address(firmware.image_address)
    image_path = None
    if firmware.image is not None:
        image_path = Path(firmware.image).expanduser()
        if not image_path.is_absolute() and path is not None:
            image_path = path.parent / image_path
    build = None
    if mode == "address":
        if pte_address is None:
            problems.append(
                "[serial.firmware] mode 'address' needs 'pte_address' (the ET_MODEL_PTE_ADDR "
                "the firmware was built with, e.g. 0x70000000)"
            )
        if firmware.build is not None:
            problems.append("[serial.firmware] 'build' is for mode 'embedded'")
    else:
        if firmware.build is None:
            problems.append(
                "[serial.firmware] mode 'embedded' needs 'build': the command that builds the "
                "firmware with {program} embedded and writes {output}"
            )
        else:
            build = _command(
                firmware.build,
                "serial.firmware",
                BUILD_PLACEHOLDERS,
                firmware.build_timeout_s,
                problems,
            )
        if firmware.image is not None or pte_address is not None:
            problems.append("[serial.firmware] mode 'embedded' takes no 'image' or 'pte_address'")
    raw_images = mode == "embedded" or (
        image_path is not None and image_path.suffix.lower() not in (".elf", ".axf", ".hex")
    )
    if raw_images and image_address is None:
        what = "the embedded firmware build" if mode == "embedded" else f"'image' {firmware.image}"
        problems.append(
            f"[serial.firmware] needs 'image_address': where {what} (a raw image) is written"
        )

    flash_table = table.flash
    target = flash_table.target
    flash = None
    if isinstance(flash_table, CommandFlash):
        flash = _command(
            flash_table.command,
            "serial.flash",
            command_placeholders,
            flash_table.timeout_s,
            problems,
        )

    by_pyocd = isinstance(flash_table, PyocdFlash)
    reset_table = table.reset or (PyocdReset() if by_pyocd else NoReset())
    reset: Command | None = None
    if isinstance(reset_table, PyocdReset):
        if target is None:  # flashing by command; pyOCD's flash needs its target anyway
            problems.append("[serial.reset] method 'pyocd' needs [serial.flash] 'target'")
        reset = Command(
            ("pyocd", "reset", "--target", "{target}", "--uid", "{probe_id}"),
            reset_table.timeout_s,
        )
    elif isinstance(reset_table, CommandReset):
        reset = _command(
            reset_table.command,
            "serial.reset",
            command_placeholders,
            reset_table.timeout_s,
            problems,
        )
    if isinstance(flash_table, PyocdFlash):  # pyOCD resets the board itself when nothing else does
        extra = flash_table.extra_args
        flash = pyocd_load_command(extra, flash_table.timeout_s, reset_after=reset is None)
    uses_pyocd = by_pyocd or isinstance(reset_table, PyocdReset)
    if lab is not None and uses_pyocd and not table.probe_id:
        problems.append(
            "[serial.labgrid] boards flash and reset with method 'command' (which may name "
            "{place} and {exporter}); pyOCD needs [serial] probe_id, which fits one place only"
        )
    if uses_pyocd:
        missing = [u.name for u in units if u.probe_id is None]
        if missing:
            problems.append(
                f"pyOCD needs 'probe_id' for every unit (missing for {missing}); "
                "`pyocd list` shows them"
            )

    if problems or flash is None:
        return None, problems
    return SerialSettings(
        units=units,
        baud=table.baud,
        bundle_io=table.bundle_io,
        firmware_mode=mode,
        pte_address=pte_address,
        firmware_image=image_path,
        image_address=image_address,
        build=build,
        flash=flash,
        flash_method=_method(flash_table),
        flash_extra=flash_table.extra_args if isinstance(flash_table, PyocdFlash) else (),
        flash_target=target,
        reset=reset,
        quiet_s=table.quiet_s,
        reconnect_s=table.reconnect_s,
        retries=table.retries,
        lock_timeout_s=table.lock_timeout_s,
        labgrid=lab,
    ), []


def serial_problems(table: SerialTable, path: Path | None = None) -> list[str]:
    """The problems across the fields of a well-typed ``[serial]`` table (every one)."""
    return _resolve(table, path)[1]


def parse_serial(section: Mapping[str, Any] | None, path: Path | None) -> SerialSettings:
    """Validate a ``[serial]`` table: its declared types (:class:`SerialTable`),
    then what spans fields.

    Raises:
        ConfigError: naming the board file, then every problem with its field.
    """
    where = f"board file {path}"
    if not section:
        raise ConfigError(f"{where}: kind 'serial' needs a [serial] table with 'port'")
    table, problems = convert_all(section, SerialTable, "[serial]")
    if table is not None:
        settings, problems = _resolve(table, path)
        if settings is not None:
            return settings
    raise ConfigError(problems_message(where, problems))


def serial_settings(spec: BoardSpec) -> SerialSettings:
    """The settings of a serial board: from its checked table (``spec.settings``,
    set when its file was read), or, for a spec made in code, from its ``[serial]``
    section, checked as a file's would be.

    Raises:
        ConfigError: a spec made in code with a bad ``[serial]`` section, or with
            settings of another kind.
    """
    table = spec.settings_of(SerialTable)
    if table is not None:
        settings, problems = _resolve(table, spec.path)
        if settings is not None:
            return settings
        raise ConfigError(problems_message(f"board file {spec.path}", problems))
    return parse_serial(spec.sections.get("serial"), spec.path)


def pyocd_load_command(
    extra_args: Sequence[str],
    timeout_s: float,
    image_format: str = "bin",
    *,
    reset_after: bool = False,
) -> Command:
    """pyOCD's ``load`` as a command template. A raw image (``bin``) goes at
    ``{address}``; ELF and hex files carry their own addresses. Unless pyOCD is
    the board's only reset (``reset_after``), ``--no-reset``: the harness resets
    after it has drained the UART."""
    where = ("--base-address", "{address}") if image_format == "bin" else ()
    no_reset = () if reset_after else ("--no-reset",)
    return Command(
        (
            "pyocd",
            "load",
            "--target",
            "{target}",
            "--uid",
            "{probe_id}",
            *where,
            "--format",
            image_format,
            *no_reset,
            *extra_args,
            "{image}",
        ),
        timeout_s,
    )


def flash_command(settings: SerialSettings, image: Path) -> Command:
    """The flash command for ``image``: with pyOCD, ELF (``.elf``, ``.axf``) and
    ``.hex`` files are loaded in their own format; everything else is raw."""
    if settings.flash_method != "pyocd":
        return settings.flash
    image_format = {".elf": "elf", ".axf": "elf", ".hex": "hex"}.get(image.suffix.lower(), "bin")
    return pyocd_load_command(
        settings.flash_extra,
        settings.flash.timeout_s,
        image_format,
        reset_after=settings.reset is None,
    )
