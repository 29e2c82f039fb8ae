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
import shlex
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

FIRMWARE_MODES = ("address", "embedded")
FLASH_METHODS = ("pyocd", "command")
RESET_METHODS = ("pyocd", "command", "none")
FLASH_PLACEHOLDERS = ("image", "address", "port", "probe_id", "target", "board", "unit")
BUILD_PLACEHOLDERS = ("program", "output", "board")

_SERIAL_FIELDS = {
    "port",
    "probe_id",
    "baud",
    "bundle_io",
    "quiet_s",
    "reconnect_s",
    "retries",
    "lock_timeout_s",
    "firmware",
    "flash",
    "reset",
    "unit",
}
_FIRMWARE_FIELDS = {"mode", "pte_address", "image", "image_address", "build", "build_timeout_s"}
_FLASH_FIELDS = {"method", "target", "probe_id", "command", "timeout_s", "extra_args"}
_RESET_FIELDS = {"method", "command", "timeout_s"}
_UNIT_FIELDS = {"name", "port", "probe_id"}


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
    """A serial board's ``[serial]`` table, validated.

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


def _fail(path: Path | None, message: str) -> ConfigError:
    return ConfigError(f"board file {path}: {message}")


def _table(path: Path | None, parent: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key, {})
    if not isinstance(value, Mapping):
        raise _fail(path, f"[{where}] must be a table")
    return dict(value)


def _unknown(path: Path | None, table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise _fail(
            path, f"[{where}] unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )


def _number(
    path: Path | None, table: Mapping[str, Any], key: str, where: str, default: float
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(path, f"[{where}] field '{key}' must be a number >= 0, got {value!r}")
    return float(value)


def _address(path: Path | None, table: Mapping[str, Any], key: str, where: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise _fail(path, f"[{where}] field '{key}' = {value!r} is not an address") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, f"[{where}] field '{key}' must be an address like 0x70000000")
    return value


def _command(
    path: Path | None, value: Any, where: str, allowed: Sequence[str], timeout_s: float
) -> Command:
    if isinstance(value, str):
        argv = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise _fail(path, f"[{where}] 'command' must be a list of strings (or one string)")
    if not argv:
        raise _fail(path, f"[{where}] 'command' is empty")
    for item in argv:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(item) if f is not None]
        except ValueError as exc:
            raise _fail(path, f"[{where}] command item {item!r}: {exc}") from None
        for field in fields:
            if field not in allowed:
                raise _fail(
                    path,
                    f"[{where}] command item {item!r}: unknown placeholder '{{{field}}}' "
                    f"(known: {', '.join('{' + a + '}' for a in allowed)})",
                )
    return Command(tuple(argv), timeout_s)


def _units(path: Path | None, serial: Mapping[str, Any]) -> tuple[Unit, ...]:
    listed = serial.get("unit")
    if listed is None:
        if "port" not in serial:
            raise _fail(path, "[serial] needs 'port' (or [[serial.unit]] tables, one per board)")
        return (
            Unit(
                "0",
                _port(path, serial["port"], "serial"),
                _opt_str(path, serial, "probe_id", "serial"),
            ),
        )
    if "port" in serial:
        raise _fail(path, "[serial] give 'port' or [[serial.unit]] tables, not both")
    if not isinstance(listed, list) or not listed:
        raise _fail(path, "[[serial.unit]] must be a non-empty array of tables")
    units = []
    for k, unit in enumerate(listed):
        where = f"serial.unit #{k + 1}"
        if not isinstance(unit, Mapping):
            raise _fail(path, f"[{where}] must be a table")
        _unknown(path, unit, _UNIT_FIELDS, where)
        if "port" not in unit:
            raise _fail(path, f"[{where}] needs 'port'")
        name = unit.get("name", str(k))
        if not isinstance(name, str) or not name:
            raise _fail(path, f"[{where}] 'name' must be a non-empty string")
        probe = _opt_str(path, unit, "probe_id", where) or _opt_str(
            path, serial, "probe_id", "serial"
        )
        units.append(Unit(name, _port(path, unit["port"], where), probe))
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise _fail(path, f"[[serial.unit]] names must differ, got {names}")
    ports = [u.port for u in units]
    if len(set(ports)) != len(ports):
        raise _fail(path, f"[[serial.unit]] two units share one port: {ports}")
    return tuple(units)


def _port(path: Path | None, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, f"[{where}] 'port' must be a device path or a pyserial URL")
    return value


def _opt_str(path: Path | None, table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(path, f"[{where}] field '{key}' must be a string")
    return value


def parse_serial(section: Mapping[str, Any] | None, path: Path | None) -> SerialSettings:
    """Validate a ``[serial]`` table.

    Raises:
        ConfigError: naming the board file and the field at fault.
    """
    if not section:
        raise _fail(path, "kind 'serial' needs a [serial] table with 'port'")
    _unknown(path, section, _SERIAL_FIELDS, "serial")
    units = _units(path, section)
    baud = section.get("baud", 115200)
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise _fail(path, f"[serial] field 'baud' must be a positive integer, got {baud!r}")
    bundle_io = section.get("bundle_io", False)
    if not isinstance(bundle_io, bool):
        raise _fail(path, "[serial] field 'bundle_io' must be true or false")
    retries = section.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise _fail(path, f"[serial] field 'retries' must be an integer >= 0, got {retries!r}")

    firmware = _table(path, section, "firmware", "serial.firmware")
    _unknown(path, firmware, _FIRMWARE_FIELDS, "serial.firmware")
    mode = firmware.get("mode", "address")
    if mode not in FIRMWARE_MODES:
        raise _fail(path, f"[serial.firmware] 'mode' = {mode!r}: must be 'address' or 'embedded'")
    pte_address = _address(path, firmware, "pte_address", "serial.firmware")
    image_address = _address(path, firmware, "image_address", "serial.firmware")
    image = firmware.get("image")
    if image is not None and not isinstance(image, str):
        raise _fail(path, "[serial.firmware] 'image' must be a file path")
    image_path = None
    if image is not None:
        image_path = Path(image).expanduser()
        if not image_path.is_absolute() and path is not None:
            image_path = path.parent / image_path
    build = None
    if mode == "address":
        if pte_address is None:
            raise _fail(
                path,
                "[serial.firmware] mode 'address' needs 'pte_address' (the ET_MODEL_PTE_ADDR "
                "the firmware was built with, e.g. 0x70000000)",
            )
        if "build" in firmware:
            raise _fail(path, "[serial.firmware] 'build' is for mode 'embedded'")
    else:
        if "build" not in firmware:
            raise _fail(
                path,
                "[serial.firmware] mode 'embedded' needs 'build': the command that builds the "
                "firmware with {program} embedded and writes {output}",
            )
        build = _command(
            path,
            firmware["build"],
            "serial.firmware",
            BUILD_PLACEHOLDERS,
            _number(path, firmware, "build_timeout_s", "serial.firmware", 900),
        )
        if image is not None or pte_address is not None:
            raise _fail(path, "[serial.firmware] mode 'embedded' takes no 'image' or 'pte_address'")

    flash_table = _table(path, section, "flash", "serial.flash")
    _unknown(path, flash_table, _FLASH_FIELDS, "serial.flash")
    method = flash_table.get("method")
    if method not in FLASH_METHODS:
        raise _fail(path, f"[serial.flash] 'method' must be 'pyocd' or 'command', got {method!r}")
    flash_timeout = _number(path, flash_table, "timeout_s", "serial.flash", 180)
    target = _opt_str(path, flash_table, "target", "serial.flash")
    if "probe_id" in flash_table:
        raise _fail(path, "[serial.flash] put 'probe_id' in [serial] or in each [[serial.unit]]")
    extra = flash_table.get("extra_args", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise _fail(path, "[serial.flash] 'extra_args' must be a list of strings")
    if method == "pyocd":
        if target is None:
            raise _fail(
                path, "[serial.flash] method 'pyocd' needs 'target' (see `pyocd list --targets`)"
            )
        flash = pyocd_load_command(extra, flash_timeout)
    else:
        if extra:
            raise _fail(
                path, "[serial.flash] 'extra_args' is for method 'pyocd'; put them in 'command'"
            )
        if "command" not in flash_table:
            raise _fail(
                path,
                "[serial.flash] method 'command' needs 'command', "
                'e.g. ["my-flash", "{image}", "{address}"]',
            )
        flash = _command(
            path, flash_table["command"], "serial.flash", FLASH_PLACEHOLDERS, flash_timeout
        )

    reset_table = _table(path, section, "reset", "serial.reset")
    _unknown(path, reset_table, _RESET_FIELDS, "serial.reset")
    reset_method = reset_table.get("method", "pyocd" if method == "pyocd" else "none")
    if reset_method not in RESET_METHODS:
        raise _fail(
            path, f"[serial.reset] 'method' must be pyocd, command or none, got {reset_method!r}"
        )
    reset_timeout = _number(path, reset_table, "timeout_s", "serial.reset", 30)
    reset: Command | None = None
    if reset_method == "pyocd":
        if target is None:
            raise _fail(path, "[serial.reset] method 'pyocd' needs [serial.flash] 'target'")
        reset = Command(
            ("pyocd", "reset", "--target", "{target}", "--uid", "{probe_id}"), reset_timeout
        )
    elif reset_method == "command":
        if "command" not in reset_table:
            raise _fail(path, "[serial.reset] method 'command' needs 'command'")
        reset = _command(
            path, reset_table["command"], "serial.reset", FLASH_PLACEHOLDERS, reset_timeout
        )
    if method == "pyocd" and reset is None:
        flash = pyocd_load_command(extra, flash_timeout, reset_after=True)  # pyOCD resets
    raw_images = (mode == "embedded") or (
        image_path is not None and image_path.suffix.lower() not in (".elf", ".axf", ".hex")
    )
    if raw_images and image_address is None:
        what = "the embedded firmware build" if mode == "embedded" else f"'image' {image}"
        raise _fail(
            path,
            f"[serial.firmware] needs 'image_address': where {what} (a raw image) is written",
        )
    if method == "pyocd" or reset_method == "pyocd":
        missing = [u.name for u in units if u.probe_id is None]
        if missing:
            raise _fail(
                path,
                f"pyOCD needs 'probe_id' for every unit (missing for {missing}); "
                "`pyocd list` shows them",
            )

    return SerialSettings(
        units=units,
        baud=baud,
        bundle_io=bundle_io,
        firmware_mode=mode,
        pte_address=pte_address,
        firmware_image=image_path,
        image_address=image_address,
        build=build,
        flash=flash,
        flash_method=method,
        flash_extra=tuple(extra),
        flash_target=target,
        reset=reset,
        quiet_s=_number(path, section, "quiet_s", "serial", 0.3),
        reconnect_s=_number(path, section, "reconnect_s", "serial", 10),
        retries=retries,
        lock_timeout_s=_number(path, section, "lock_timeout_s", "serial", 3600),
    )


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
