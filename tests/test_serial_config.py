"""The [serial] table: what a user writes for a physical board, and the
messages a mistake gets (naming the file and the field)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from et_hil.boards.serial.settings import parse_serial
from et_hil.boards.spec import load_board_file, load_board_files, load_boards
from et_hil.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "boards" / "examples"

BASE = {
    "port": "/dev/ttyACM0",
    "firmware": {"mode": "address", "pte_address": 0x70000000},
    "flash": {"method": "command", "command": ["my-flash", "{image}", "{address}"]},
}


def _with(**changes: object) -> dict[str, object]:
    section = {**BASE, **changes}
    return {k: v for k, v in section.items() if v is not None}


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_the_readme_examples_are_valid_board_files(example: Path) -> None:
    spec = load_board_file(example)
    settings = parse_serial(spec.sections["serial"], spec.path)
    assert spec.kind == "serial"
    assert settings.flash.argv


def test_defaults_for_a_single_board() -> None:
    settings = parse_serial(BASE, Path("b.toml"))
    assert [(u.name, u.port) for u in settings.units] == [("0", "/dev/ttyACM0")]
    assert (settings.baud, settings.bundle_io, settings.retries) == (115200, False, 1)
    assert settings.reset is None  # a command flasher resets the board itself by default
    assert settings.flash.render({"image": "p.pte", "address": "0x70000000"}) == [
        "my-flash",
        "p.pte",
        "0x70000000",
    ]


def test_pyocd_renders_load_without_reset_then_reset() -> None:
    section = _with(flash={"method": "pyocd", "target": "cortex_m"}, probe_id="0240000032")
    settings = parse_serial(section, Path("b.toml"))
    values = {
        "target": "cortex_m",
        "probe_id": "0240000032",
        "address": "0x70000000",
        "image": "p.bpte",
    }
    assert settings.flash.render(values) == [
        "pyocd",
        "load",
        "--target",
        "cortex_m",
        "--uid",
        "0240000032",
        "--base-address",
        "0x70000000",
        "--format",
        "bin",
        "--no-reset",
        "p.bpte",
    ]
    assert settings.reset is not None
    assert settings.reset.render(values) == [
        "pyocd",
        "reset",
        "--target",
        "cortex_m",
        "--uid",
        "0240000032",
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (_with(port=None), "[serial] needs 'port'"),
        (_with(baud="fast"), "[serial] field 'baud' must be a positive integer"),
        (_with(firmware={"mode": "address"}), "mode 'address' needs 'pte_address'"),
        (_with(firmware={"mode": "embedded"}), "mode 'embedded' needs 'build'"),
        (
            _with(firmware={"mode": "flashy"}),
            "[serial.firmware] field 'mode' must be 'address' or 'embedded', got 'flashy'",
        ),
        (_with(flash={"method": "jtag"}), "'method' must be 'pyocd' or 'command', got 'jtag'"),
        (
            _with(flash={"method": "command", "command": ["x", "{imag}"]}),
            "unknown placeholder '{imag}'",
        ),
        (_with(flash={"method": "pyocd"}), "method 'pyocd' needs 'target'"),
        (
            _with(flash={"method": "pyocd", "target": "cortex_m"}),
            "pyOCD needs 'probe_id' for every unit",
        ),
        (_with(speed=3), "[serial] unknown field 'speed'"),
        (
            _with(
                port=None, unit=[{"name": "a", "port": "/dev/x"}, {"name": "a", "port": "/dev/y"}]
            ),
            "names must differ",
        ),
        (_with(unit=[{"port": "/dev/y"}]), "give 'port' or [[serial.unit]] tables, not both"),
        (
            _with(firmware={"mode": "embedded", "build": ["b", "{program}", "{output}"]}),
            "needs 'image_address': where the embedded firmware build (a raw image) is written",
        ),
        (
            _with(firmware={"mode": "address", "pte_address": 0x70000000, "image": "fw.bin"}),
            "needs 'image_address': where 'image' fw.bin (a raw image) is written",
        ),
        (
            _with(flash={"method": "command", "command": ["x"], "extra_args": ["-v"]}),
            "'extra_args' is for method 'pyocd'",
        ),
        (_with(firmware={"mode": "address", "address": 0}), "unknown field 'address'"),
    ],
)
def test_mistakes_name_the_file_and_the_field(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_serial(section, Path("/lab/board.toml"))
    assert "board file /lab/board.toml" in str(info.value)


def test_a_bad_serial_table_fails_when_the_board_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('name = "b"\nkind = "serial"\ntarget = "portable"\n[serial]\nport = 3\n')
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    assert str(info.value) == (
        f"board file {path}: 2 problems:\n"
        "  - [serial] field 'port' must be a device path or a pyserial URL, got 3\n"
        "  - [serial] missing required field 'flash'"
    )


def test_a_lab_file_lists_boards_and_load_board_file_refuses_it(tmp_path: Path) -> None:
    lab = tmp_path / "lab.toml"
    lab.write_text(
        '[[board]]\nname = "a"\nkind = "host"\ntarget = "portable"\n'
        '[[board]]\nname = "b"\nkind = "tosa"\ntarget = "tosa-int"\n'
    )
    assert [s.name for s in load_board_files(lab)] == ["a", "b"]
    assert {"a", "b"} <= set(load_boards([lab]))
    with pytest.raises(ConfigError, match="it is a lab file of 2 boards"):
        load_board_file(lab)


def test_pyocd_loads_elf_and_hex_images_in_their_own_format() -> None:
    from et_hil.boards.serial.settings import flash_command

    section = _with(
        flash={"method": "pyocd", "target": "cortex_m", "extra_args": ["-f", "4M"]},
        probe_id="0240000032",
    )
    settings = parse_serial(section, Path("b.toml"))
    values = {"target": "cortex_m", "probe_id": "0240000032", "address": "0x0", "image": "fw.elf"}
    elf = flash_command(settings, Path("fw.elf")).render(values)
    assert elf == [
        "pyocd", "load", "--target", "cortex_m", "--uid", "0240000032",
        "--format", "elf", "--no-reset", "-f", "4M", "fw.elf",
    ]  # fmt: skip
    raw = flash_command(settings, Path("model.bpte")).render(values)
    assert raw[6:10] == ["--base-address", "0x0", "--format", "bin"]


def test_pyocd_resets_the_board_itself_when_there_is_no_reset_method() -> None:
    from et_hil.boards.serial.settings import flash_command

    section = _with(
        flash={"method": "pyocd", "target": "cortex_m"}, reset={"method": "none"}, probe_id="1"
    )
    settings = parse_serial(section, Path("b.toml"))
    assert settings.reset is None
    assert "--no-reset" not in flash_command(settings, Path("p.pte")).argv


def _problems(error: ConfigError, path: str) -> list[str]:
    head, _, rest = str(error).partition("\n")
    assert head.startswith(f"board file {path}: "), head
    assert head.endswith(" problems:"), head
    return [line.removeprefix("  - ") for line in rest.splitlines()]


def test_every_type_problem_of_the_table_at_once() -> None:
    section = _with(
        baud=0,
        quiet_s=-1,
        firmware={"mode": "address", "pte_address": "0x7zz", "imag": "fw.bin"},
        flash={"method": "command", "command": ["x"], "probe_id": "1", "timeout_s": "long"},
        reset=[],
    )
    with pytest.raises(ConfigError) as info:
        parse_serial(section, Path("/lab/board.toml"))
    assert _problems(info.value, "/lab/board.toml") == [
        "[serial] field 'baud' must be a positive integer, got 0",
        "[serial] field 'quiet_s' must be a number >= 0, got -1",
        "[serial.firmware] unknown field 'imag' (known: mode, pte_address, image, image_address, "
        "build, build_timeout_s)",
        "[serial.firmware] field 'pte_address' must be an address like 0x70000000, got '0x7zz'",
        "[serial.flash] put 'probe_id' in [serial] or in each [[serial.unit]]",
        "[serial.flash] field 'timeout_s' must be a number >= 0, got 'long'",
        "[serial.reset] must be a table",
    ]


def test_every_problem_across_fields_at_once() -> None:
    # well-typed, but the methods and modes lack what they need
    section = _with(
        firmware={"mode": "embedded", "pte_address": 0x70000000},
        flash={"method": "command", "command": ["x", "{imag}", "{adress}"]},
        reset={"method": "pyocd"},
    )
    with pytest.raises(ConfigError) as info:
        parse_serial(section, Path("/lab/board.toml"))
    known = "{image}, {address}, {port}, {probe_id}, {target}, {board}, {unit}"
    assert _problems(info.value, "/lab/board.toml") == [
        "[serial.firmware] mode 'embedded' needs 'build': the command that builds the firmware "
        "with {program} embedded and writes {output}",
        "[serial.firmware] mode 'embedded' takes no 'image' or 'pte_address'",
        "[serial.firmware] needs 'image_address': where the embedded firmware build (a raw "
        "image) is written",
        f"[serial.flash] command item '{{imag}}': unknown placeholder '{{imag}}' (known: {known})",
        f"[serial.flash] command item '{{adress}}': unknown placeholder '{{adress}}' "
        f"(known: {known})",
        "[serial.reset] method 'pyocd' needs [serial.flash] 'target'",
        "pyOCD needs 'probe_id' for every unit (missing for ['0']); `pyocd list` shows them",
    ]


def test_each_unit_is_checked_and_named() -> None:
    section = _with(port=None, unit=[{"port": "/dev/a", "probe": "x"}, {"name": ""}, "c"])
    with pytest.raises(ConfigError) as info:
        parse_serial(section, Path("/lab/board.toml"))
    assert _problems(info.value, "/lab/board.toml") == [
        "[serial.unit #1] unknown field 'probe' (known: name, port, probe_id)",
        "[serial.unit #2] field 'name' must be a non-empty string, got ''",
        "[serial.unit #2] missing required field 'port'",
        "[serial.unit #3] must be a table",
    ]


def test_units_take_the_tables_probe_and_their_index_as_name() -> None:
    section = _with(
        port=None,
        probe_id="P",
        unit=[{"port": "/dev/a"}, {"name": "right", "port": "/dev/b", "probe_id": "Q"}],
        firmware={"mode": "address", "pte_address": "0x7000_0000"},  # a string, as before
    )
    settings = parse_serial(section, Path("b.toml"))
    assert [(u.name, u.port, u.probe_id) for u in settings.units] == [
        ("0", "/dev/a", "P"),
        ("right", "/dev/b", "Q"),
    ]
    assert settings.pte_address == 0x70000000


def test_the_board_spec_holds_the_typed_table(tmp_path: Path) -> None:
    from et_hil.boards.serial.settings import SerialTable, serial_settings

    spec = load_board_file(EXAMPLES / "mps3-an552.toml")
    assert isinstance(spec.settings, SerialTable)
    assert serial_settings(spec) == parse_serial(spec.sections["serial"], spec.path)
    # a relative firmware image resolves against the board file's folder
    image = parse_serial(
        _with(firmware={"mode": "address", "pte_address": 0, "image": "fw.elf"}),
        tmp_path / "b.toml",
    ).firmware_image
    assert image == tmp_path / "fw.elf"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        # each method is a table of its own (a tagged union): what it takes, it declares
        (_with(flash={"command": ["x"]}), "[serial.flash] missing required field 'method'"),
        (
            _with(flash={"method": "pyocd", "target": "cortex_m", "command": ["x"]}),
            "[serial.flash] 'command' is for method 'command'",
        ),
        (
            _with(flash={"method": "command"}),
            """[serial.flash] method 'command' needs 'command', e.g. ["my-flash", "{image}", """,
        ),
        (
            _with(reset={"method": "reboot"}),
            "[serial.reset] field 'method' must be 'pyocd', 'command' or 'none', got 'reboot'",
        ),
        (_with(reset={"method": "command"}), "[serial.reset] method 'command' needs 'command'"),
        (
            _with(reset={"method": "none", "timeout_s": 5}),
            "[serial.reset] unknown field 'timeout_s' (known: method)",
        ),
        # a [serial.reset] table says its method (without the table: the default)
        (_with(reset={"timeout_s": 5}), "[serial.reset] missing required field 'method'"),
    ],
)
def test_a_method_takes_what_its_table_declares(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_serial(section, Path("/lab/board.toml"))
    assert str(info.value).startswith(f"board file /lab/board.toml: {message}")


def test_the_reset_method_defaults_by_the_flash_method() -> None:
    by_command = parse_serial(BASE, Path("b.toml"))
    assert by_command.reset is None  # the flasher resets the board
    by_pyocd = parse_serial(
        _with(flash={"method": "pyocd", "target": "cortex_m"}, probe_id="1"), Path("b.toml")
    )
    assert by_pyocd.reset is not None
    assert by_pyocd.reset.argv[:2] == ("pyocd", "reset")
    assert (by_command.flash_method, by_pyocd.flash_method) == ("command", "pyocd")
