"""Tests of et_hil.boards.spec: built-in board files, validation errors, user boards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from et_hil.boards.spec import (
    BoardSpec,
    builtin_board_dir,
    load_board_file,
    load_board_files,
    load_boards,
    resolve_board_names,
)
from et_hil.errors import BuildError, ConfigError
from et_hil.programs.target_registry import check_target_name, get_target
from et_hil.tolerance import Tolerance, TolerancePolicy

BUILTIN = {
    # name: (kind, target, cpu)
    "host": ("host", "portable", None),
    "tosa": ("tosa", "tosa-int", None),
    "corstone300": ("fvp", "ethos-u55-128", "cortex-m55"),
    "corstone300-u65": ("fvp", "ethos-u65-256", "cortex-m55"),
    "corstone320": ("fvp", "ethos-u85-256", "cortex-m85"),
    "qemu-m55": ("qemu", "portable", "cortex-m55"),
    "qemu-m55-cmsis": ("qemu", "cortex-m55", "cortex-m55"),
}

VALID = """\
name = "myboard"
kind = "tosa"
target = "ethos-u55-128"
"""


def _write(folder: Path, text: str, name: str = "board.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _board(name: str, kind: str = "host", target: str = "portable", **extra: str) -> str:
    lines = [f'name = "{name}"', f'kind = "{kind}"', f'target = "{target}"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- built-in boards


def test_builtin_board_dir_has_the_files() -> None:
    names = sorted(p.name for p in builtin_board_dir().glob("*.toml"))
    assert names == sorted(f"{name}.toml" for name in BUILTIN)


def test_all_builtin_boards_load() -> None:
    boards = load_boards()
    assert set(boards) == set(BUILTIN)
    for name, (kind, target, cpu) in BUILTIN.items():
        spec = boards[name]
        assert isinstance(spec, BoardSpec)
        assert (spec.name, spec.kind, spec.target, spec.cpu) == (name, kind, target, cpu)
        assert spec.path is not None
        assert spec.path.name == f"{name}.toml"
        assert spec.description


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_board_file_loads_alone(name: str) -> None:
    spec = load_board_file(builtin_board_dir() / f"{name}.toml")
    assert spec.name == name
    assert spec.run_timeout_s > 0


def test_builtin_host_details() -> None:
    host = load_boards()["host"]
    assert host.capabilities == frozenset({"etdump", "intermediate_outputs", "dynamic_shapes"})
    assert host.run_timeout_s == 60.0
    assert host.memory == {}
    assert host.sections == {}
    # host.toml sets only the float limits; the quantized ones are the defaults
    assert host.tolerance == TolerancePolicy(float=Tolerance(atol=1e-4, rtol=1e-4))


def test_builtin_fvp_details() -> None:
    spec = load_boards()["corstone320"]
    assert spec.capabilities == frozenset({"npu", "etdump", "cycle_counts"})
    assert spec.run_timeout_s == 600.0
    assert spec.memory == {
        "sram_bytes": 4194304,
        "flash_bytes": 8388608,
        "ddr_bytes": 268435456,
        "file_pool_bytes": 62914560,  # the semihosting runner's file pool (upstream default)
        "method_pool_bytes": 83886080,  # corstone-fvp.md's runner build, the Docker image's
    }
    assert set(spec.sections) == {"vela", "fvp"}
    assert spec.sections["fvp"] == {"platform": "corstone320"}
    assert spec.sections["vela"]["memory_mode"] == "Shared_Sram"
    # no [tolerance] in the file: the defaults apply
    assert spec.tolerance == TolerancePolicy()


# ---------------------------------------------------------------- a valid user file


def test_load_minimal_board_file_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    spec = load_board_file(path)
    assert spec == BoardSpec(name="myboard", kind="tosa", target="ethos-u55-128", path=path)
    assert spec.run_timeout_s == 60.0
    assert spec.capabilities == frozenset()
    assert spec.tolerance == TolerancePolicy()


def test_load_board_file_accepts_str_path(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    assert load_board_file(str(path)).path == path


# ---------------------------------------------------------------- errors


def _assert_config_error(path: Path, field_pattern: str) -> ConfigError:
    """Load ``path`` and check the error names the file, then the field."""
    with pytest.raises(ConfigError, match=re.escape(f"board file {path}")) as info:
        load_board_file(path)
    assert re.search(field_pattern, str(info.value)), str(info.value)
    return info.value


def test_error_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(f"board file {path}: cannot read it")) as info:
        load_board_file(path)
    assert "No such file" in str(info.value)


def test_error_invalid_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "x"\nkind = \n')
    with pytest.raises(ConfigError, match=re.escape(f"board file {path}: not valid TOML")):
        load_board_file(path)


@pytest.mark.parametrize(
    ("text", "field_pattern"),
    [
        pytest.param(
            'kind = "host"\ntarget = "portable"\n',
            r"missing required field 'name'",
            id="missing-name",
        ),
        pytest.param(
            'name = "b"\ntarget = "portable"\n',
            r"missing required field 'kind'",
            id="missing-kind",
        ),
        pytest.param(
            'name = "b"\nkind = "host"\n',
            r"missing required field 'target'",
            id="missing-target",
        ),
        pytest.param(
            'name = ""\nkind = "host"\ntarget = "portable"\n',
            r"field 'name' must be a non-empty string",
            id="empty-name",
        ),
        pytest.param(
            'name = 3\nkind = "host"\ntarget = "portable"\n',
            r"field 'name' must be a non-empty string",
            id="name-not-string",
        ),
        pytest.param(
            _board("My Board"),
            r"field 'name' = 'My Board': use lowercase",
            id="bad-name-characters",
        ),
        pytest.param(
            _board("b", kind="gpu"),
            r"field 'kind' = 'gpu': must be one of fvp, host, qemu, serial, tosa",
            id="bad-kind",
        ),
        pytest.param(
            _board("b", colour='"red"'),
            r"unknown field 'colour' \(known: name, kind, target",
            id="unknown-top-level-field",
        ),
        pytest.param(
            _board("b", capabilities='["npu", "wifi"]'),
            r"field 'capabilities': unknown capability 'wifi' \(known: npu, etdump",
            id="unknown-capability",
        ),
        pytest.param(
            _board("b", capabilities='"npu"'),
            r"field 'capabilities' must be a list of strings",
            id="capabilities-not-list",
        ),
        pytest.param(
            _board("b", run_timeout_s="0"),
            r"field 'run_timeout_s' must be a positive number, got 0",
            id="zero-timeout",
        ),
        pytest.param(
            _board("b", run_timeout_s="true"),
            r"field 'run_timeout_s' must be a positive number, got True",
            id="bool-timeout",
        ),
        pytest.param(
            _board("b") + "[memory]\nsram_bytes = -1\n",
            r"\[memory\] field 'sram_bytes' must be a positive integer",
            id="negative-memory",
        ),
        pytest.param(
            _board("b") + '[memory]\nsram_bytes = "2MB"\n',
            r"\[memory\] field 'sram_bytes' must be a positive integer",
            id="string-memory",
        ),
        pytest.param(
            _board("b") + "[memory]\nflash_bytes = 1.5\n",
            r"\[memory\] field 'flash_bytes' must be a positive integer",
            id="float-memory",
        ),
        pytest.param(
            _board("b") + "[memory]\nsram = 1024\n",
            r"\[memory\] unknown field 'sram'",
            id="unknown-memory-field",
        ),
        pytest.param(
            _board("b") + "[tolerance.float]\natoll = 1e-3\n",
            r"\[tolerance\.float\]: unknown tolerance field 'atoll'",
            id="unknown-tolerance-field",
        ),
        pytest.param(
            _board("b") + "[tolerance.floats]\natol = 1e-3\n",
            r"unknown tolerance section 'floats'",
            id="unknown-tolerance-section",
        ),
        pytest.param(
            _board("b") + "[tolerance.quantized]\nmax_lsb = -1\n",
            r"\[tolerance\.quantized\]: tolerance 'max_lsb' must be >= 0",
            id="negative-tolerance",
        ),
        pytest.param(
            _board("b", vela='"fast"'),
            r"\[vela\] must be a table",
            id="stage-section-not-table",
        ),
        pytest.param(
            _board("b", cpu="55"),
            r"field 'cpu' must be a string",
            id="cpu-not-string",
        ),
    ],
)
def test_error_names_file_and_field(tmp_path: Path, text: str, field_pattern: str) -> None:
    path = _write(tmp_path, text)
    _assert_config_error(path, field_pattern)


def test_a_single_problem_is_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _board("b", kind="gpu"))
    error = _assert_config_error(path, r"field 'kind'")
    assert "\n" not in str(error)


def test_error_is_config_error_for_tolerance(tmp_path: Path) -> None:
    # [tolerance] is checked against its declared type, as every table is: the
    # problem is a line of the file's ConfigError, naming the table and the field
    path = _write(tmp_path, _board("b") + "[tolerance.float]\natoll = 1e-3\n")
    error = _assert_config_error(path, "atoll")
    assert str(error).startswith(
        f"board file {path}: [tolerance.float]: unknown tolerance field 'atoll' (known: atol, "
    )


# ---------------------------------------------------------------- every problem at once


def _problems(error: ConfigError, path: Path) -> list[str]:
    """The listed problems of a several-problem error (one per line after the header)."""
    header, *lines = str(error).split("\n")
    assert header == f"board file {path}: {len(lines)} problems:"
    assert all(line.startswith("  - ") for line in lines)
    return [line.removeprefix("  - ") for line in lines]


def test_every_problem_of_a_file_in_one_error(tmp_path: Path) -> None:
    # Three unrelated mistakes: each used to hide the ones after it. The declared
    # types first (in field order: [vela] is one), then the checks across fields.
    path = _write(
        tmp_path,
        _board("b", kind="fvp", target="ethos-u55-100", colour='"red"')
        + '[vela]\nsytem_config = "Ethos_U55_High_End_Embedded"\n'
        + '[fvp]\nplatform = "corstone300-u55"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    assert _problems(info.value, path) == [
        "unknown field 'colour' (known: name, kind, target, description, cpu, capabilities, "
        "run_timeout_s, require_full_delegation, memory, tolerance, vela, baseline, fvp, qemu, "
        "serial)",
        "[vela] unknown field 'sytem_config' (known: system_config, memory_mode, extra_flags)",
        "field 'target' = 'ethos-u55-100': Ethos-U55 has 32, 64, 128, 256 MACs, not 100",
    ]


def test_every_problem_includes_memory_tolerance_and_serial(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _board("b", kind="serial", capabilities='["wifi"]', run_timeout_s="0")
        + "[memory]\nsram = 1\n[tolerance.float]\natoll = 1e-3\n[serial]\nport = 3\n",
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    problems = _problems(info.value, path)
    assert len(problems) == 6, problems
    # the declared types first (in field order: capabilities, and [tolerance], are
    # declared too), then the checks across fields
    assert problems[0].startswith("field 'capabilities': unknown capability 'wifi'")
    assert problems[1] == "field 'run_timeout_s' must be a positive number, got 0"
    assert problems[2].startswith("[memory] unknown field 'sram' (known: sram_bytes")
    assert problems[3].startswith("[tolerance.float]: unknown tolerance field 'atoll'")
    # the [serial] table's every problem too, each a line of the list
    assert problems[4:] == [
        "[serial] field 'port' must be a device path or a pyserial URL, got 3",
        "[serial] missing required field 'flash'",
    ]


def test_every_tolerance_problem_is_listed_with_the_others(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _board("b", run_timeout_s="0")
        + "[tolerance.float]\natoll = 1e-3\nrtol = -1\n"
        + "[tolerance.quantized]\nmax_lsb = 'one'\n"
        + "[tolerance.quantised]\nmax_lsb = 1\n",
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    problems = _problems(info.value, path)
    assert problems[0] == "field 'run_timeout_s' must be a positive number, got 0"
    # a table's unknown fields first, then its fields in declared order (as every table)
    assert problems[1:] == [
        "[tolerance] unknown tolerance section 'quantised' (known: float, quantized, golden, "
        "quantized_vs_float)",
        "[tolerance.float]: unknown tolerance field 'atoll' (known: atol, max_bias_lsb, max_lsb, "
        "max_mean_lsb, min_cosine, min_snr_db, min_top1, min_top5, rounding_lsb, rtol, "
        "snr_margin_db)",
        "[tolerance.float]: tolerance 'rtol' must be >= 0, got -1",
        "[tolerance.quantized]: tolerance 'max_lsb' must be a number, got 'one'",
    ]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("ethos-u55-100", "Ethos-U55 has 32, 64, 128, 256 MACs, not 100"),
        ("ethos-u85-64", "Ethos-U85 has 128, 256, 512, 1024, 2048 MACs, not 64"),
        (
            "ethos-u95-128",
            "not a known compile target (known: portable, tosa-int[+extensions], tosa-fp, ",
        ),
        ("tosa", "not a known compile target"),
    ],
)
def test_bad_target_fails_at_load(tmp_path: Path, target: str, problem: str) -> None:
    path = _write(tmp_path, _board("b", kind="tosa", target=target))
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    assert str(info.value).startswith(f"board file {path}: field 'target' = '{target}': {problem}")


@pytest.mark.parametrize(
    "target",
    [
        "portable",
        "tosa-int",
        "tosa-fp",
        "ethos-u55-32",
        "ethos-u65-512",
        "ethos-u85-2048",
        "cortex-m55",
        "cortex-m85",
    ],
)
def test_known_target_names(target: str) -> None:
    assert check_target_name(target) is None


def test_get_target_says_what_the_board_file_check_says() -> None:
    # One source of truth: the build's error carries the load-time check's words.
    with pytest.raises(BuildError) as info:
        get_target("ethos-u55-100", board="b")
    assert str(info.value) == (
        "board 'b': target 'ethos-u55-100': Ethos-U55 has 32, 64, 128, 256 MACs, not 100"
    )


@pytest.mark.parametrize(
    ("vela", "problem"),
    [
        (
            'sytem_config = "x"',
            "[vela] unknown field 'sytem_config' (known: system_config, memory_mode, extra_flags)",
        ),
        ("memory_mode = 3", "[vela] field 'memory_mode' must be a string, got 3"),
        ('extra_flags = "-v"', "[vela] field 'extra_flags' must be a list of strings, got '-v'"),
    ],
)
def test_vela_mistakes_fail_at_load(tmp_path: Path, vela: str, problem: str) -> None:
    path = _write(tmp_path, _board("b", kind="tosa", target="ethos-u55-128") + f"[vela]\n{vela}\n")
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    assert str(info.value) == f"board file {path}: {problem}"


def test_vela_is_for_ethos_u_targets(tmp_path: Path) -> None:
    path = _write(
        tmp_path, _board("b", kind="tosa", target="tosa-int") + '[vela]\nmemory_mode = "x"\n'
    )
    _assert_config_error(
        path, r"\[vela\] is for Ethos-U targets \(compiled by Vela\); target 'tosa-int' does not"
    )


@pytest.mark.parametrize("kind", ["host", "tosa"])
def test_full_delegation_needs_a_delegate(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, _board("b", kind=kind, require_full_delegation="true"))
    error = _assert_config_error(
        path,
        r"field 'require_full_delegation' = true: target 'portable' has no delegate: "
        r"require_full_delegation cannot apply",
    )
    assert "\n" not in str(error)
    # with a delegate it is fine
    load_board_file(
        _write(tmp_path, _board("c", kind=kind, target="tosa-int", require_full_delegation="true"))
    )


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            _board("b", kind="serial") + "[memory]\nfile_pool_bytes = 1024\n",
            r"\[memory\] field 'file_pool_bytes' is the semihosting runner's file pool, for kind "
            r"'fvp'; this board is kind 'serial'",
        ),
        (
            _board("b", kind="fvp", target="ethos-u55-128")
            + '[memory]\nprogram_bytes = 1024\n[fvp]\nplatform = "corstone300-u55"\n',
            r"\[memory\] field 'program_bytes' does not apply to kind 'fvp'",
        ),
    ],
)
def test_memory_fields_of_another_runner_mode(tmp_path: Path, text: str, pattern: str) -> None:
    _assert_config_error(_write(tmp_path, text), pattern)


def test_new_memory_fields_load(tmp_path: Path) -> None:
    text = _board("b", kind="fvp", target="ethos-u55-128") + (
        "[memory]\nfile_pool_bytes = 1048576\nmethod_pool_bytes = 2097152\n"
        '[fvp]\nplatform = "corstone300-u55"\n'
    )
    spec = load_board_file(_write(tmp_path, text))
    assert spec.memory == {"file_pool_bytes": 1048576, "method_pool_bytes": 2097152}


def test_lab_file_names_the_board_in_each_problem(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[board]]\nname = "good"\nkind = "host"\ntarget = "portable"\n'
        '[[board]]\nname = "npu"\nkind = "tosa"\ntarget = "ethos-u55-100"\n'
        '[board.vela]\nsytem_config = "x"\n'
        '[[board]]\nkind = "host"\ntarget = "portable"\n'
        '[[board]]\nname = "good"\nkind = "host"\ntarget = "portable"\n',
        "lab.toml",
    )
    with pytest.raises(ConfigError) as info:
        load_board_files(path)
    assert _problems(info.value, path) == [
        "board 'npu': [vela] unknown field 'sytem_config' (known: system_config, memory_mode, "
        "extra_flags)",
        "board 'npu': field 'target' = 'ethos-u55-100': Ethos-U55 has 32, 64, 128, 256 MACs, "
        "not 100",
        "[[board]] #3: missing required field 'name'",
        "board 'good' is listed twice",
    ]


def test_a_lab_file_with_one_problem_is_one_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[board]]\nname = "a"\nkind = "host"\ntarget = "portable"\n'
        '[[board]]\nname = "b"\nkind = "host"\ntarget = "portble"\n',
        "lab.toml",
    )
    with pytest.raises(ConfigError) as info:
        load_board_files(path)
    assert str(info.value).startswith(
        f"board file {path}: board 'b': field 'target' = 'portble': not a known compile target"
    )


def test_loading_boards_imports_neither_torch_nor_executorch() -> None:
    # The plugin loads board files in every pytest run: the target check must stay cheap.
    code = (
        "import sys, et_hil.boards.spec as b; b.load_boards(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- user boards


def test_load_boards_with_extra_user_board(tmp_path: Path) -> None:
    extra = _write(tmp_path, VALID, "mine.toml")
    boards = load_boards([extra])
    assert set(boards) == {*BUILTIN, "myboard"}
    assert boards["myboard"].path == extra
    assert boards["myboard"].kind == "tosa"


def test_load_boards_user_file_overrides_builtin(tmp_path: Path) -> None:
    override = _write(
        tmp_path,
        _board("host", description='"my host"', run_timeout_s="5"),
        "host-override.toml",
    )
    boards = load_boards([override])
    assert set(boards) == set(BUILTIN)
    assert boards["host"].path == override
    assert boards["host"].description == "my host"
    assert boards["host"].run_timeout_s == 5.0
    # the override is whole: the built-in capabilities do not carry over
    assert boards["host"].capabilities == frozenset()


def test_load_boards_two_user_files_same_name(tmp_path: Path) -> None:
    first = _write(tmp_path, VALID, "first.toml")
    second = _write(tmp_path, VALID.replace("tosa", "host"), "second.toml")
    with pytest.raises(
        ConfigError,
        match=re.escape(f"board file {second}: board 'myboard' is already defined by {first}"),
    ):
        load_boards([first, second])


def test_load_boards_bad_user_file_raises(tmp_path: Path) -> None:
    bad = _write(tmp_path, _board("b", kind="gpu"), "bad.toml")
    with pytest.raises(ConfigError, match=re.escape(str(bad))):
        load_boards([bad])


def test_resolve_board_names_unknown_lists_known() -> None:
    boards = load_boards()
    with pytest.raises(ConfigError, match=r"unknown board 'nope'") as info:
        resolve_board_names(["host", "nope"], boards)
    message = str(info.value)
    known = "corstone300, corstone300-u65, corstone320, host, qemu-m55, qemu-m55-cmsis, tosa"
    assert f"Known boards: {known}." in message
    assert "--board-file" in message


def test_resolve_board_names_drops_duplicates_keeps_order() -> None:
    boards = load_boards()
    names = ["tosa", "host", "tosa", "corstone320", "host"]
    assert resolve_board_names(names, boards) == ["tosa", "host", "corstone320"]


def test_resolve_board_names_empty() -> None:
    assert resolve_board_names([], load_boards()) == []


def test_a_lab_file_lists_every_problem_of_every_board(tmp_path: Path) -> None:
    # Two serial boards with several problems each (types, then across fields), an FVP
    # board and a host board with one each: one error lists all of them, each with its board.
    serial = '[[board]]\nname = "{name}"\nkind = "serial"\ntarget = "portable"\n'
    path = _write(
        tmp_path,
        serial.format(name="left")
        + '[board.serial]\nport = 3\nbaud = "fast"\n[board.serial.flash]\nmethod = "jtag"\n'
        + serial.format(name="right")
        + '[board.serial]\nport = "/dev/b"\n[board.serial.firmware]\nmode = "embedded"\n'
        '[board.serial.flash]\nmethod = "pyocd"\ntarget = "cortex_m"\n'
        '[[board]]\nname = "fvp"\nkind = "fvp"\ntarget = "ethos-u55-128"\n'
        '[board.fvp]\nplatform = "corstone999"\n'
        '[[board]]\nname = "host"\nkind = "host"\ntarget = "portable"\nrun_timeout_s = -1\n',
        "lab.toml",
    )
    with pytest.raises(ConfigError) as info:
        load_board_files(path)
    problems = _problems(info.value, path)
    assert problems[:5] == [
        "board 'left': [serial] field 'port' must be a device path or a pyserial URL, got 3",
        "board 'left': [serial] field 'baud' must be a positive integer, got 'fast'",
        "board 'left': [serial.flash] field 'method' must be 'pyocd' or 'command', got 'jtag'",
        "board 'right': [serial.firmware] mode 'embedded' needs 'build': the command that "
        "builds the firmware with {program} embedded and writes {output}",
        "board 'right': [serial.firmware] needs 'image_address': where the embedded firmware "
        "build (a raw image) is written",
    ]
    assert problems[5].startswith("board 'right': pyOCD needs 'probe_id' for every unit")
    assert problems[6].startswith("board 'fvp': [fvp] platform 'corstone999' is unknown")
    assert problems[7:] == ["board 'host': field 'run_timeout_s' must be a positive number, got -1"]


def test_a_baseline_table_gives_the_boards_limits_and_a_bad_limit_is_named(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(
        'name = "b"\nkind = "host"\ntarget = "portable"\n'
        '[baseline]\ncycles_total = "+5%"\nsnr_db = { limit = "-2", action = "warn" }\n'
    )
    spec = load_board_file(good)
    assert spec.baseline_limits == {
        "cycles_total": "+5%",
        "snr_db": {"limit": "-2", "action": "warn"},
    }
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\nkind = "host"\ntarget = "portable"\n[baseline]\nsram_bytes = "less"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(bad)
    assert str(info.value).startswith(
        f"board file {bad}: [baseline]: sram_bytes: limit 'less' is not one of the forms '+2%'"
    )


def test_every_baseline_problem_is_named_once(tmp_path: Path) -> None:
    # a text that is no limit, a table with a wrong action, a figure that does not
    # exist and a sign against the figure's worse direction: each once, with its key
    path = _write(
        tmp_path,
        _board("b")
        + '[baseline]\npte_bytes = "lots"\nsnr_db = { limit = "-2", action = "error" }\n'
        + 'cycles_totl = "+5%"\ncycles_total = "-5%"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    problems = _problems(info.value, path)
    assert problems[0].startswith(
        "[baseline]: pte_bytes: limit 'lots' is not one of the forms '+2%', '+0', '-1'"
    )
    assert problems[1:3] == [
        "[baseline.snr_db]: a limit table has 'limit' and 'action' ('fail' or 'warn'); "
        "got action = 'error'",
        "[baseline]: cycles_totl: no such figure (figures: snr_db, max_lsb, top1, "
        "vela.cycles_total, vela.cycles_npu, vela.inference_time_s, vela.sram_bytes, "
        "vela.off_chip_flash_bytes, pte_bytes, planned_memory_bytes, execute_s, pmu, "
        "pmu.<counter>, their last parts, and NAME@QUALIFIER)",
    ]
    assert problems[3].startswith("[baseline]: limit '-5%' for cycles_total: a larger")
    assert len(problems) == 4


def test_a_capability_that_is_not_a_string_is_named_by_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path, _board("b", capabilities='["npu", 3]'))
    error = _assert_config_error(path, "capabilities")
    assert str(error) == (
        f"board file {path}: field 'capabilities' item 2 must be one of npu, etdump, "
        "intermediate_outputs, cycle_counts, bundled_io, dynamic_shapes, got 3"
    )


def test_the_typed_tables_reach_the_spec(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _board("b", kind="tosa", target="ethos-u55-128", capabilities='["npu", "etdump"]')
        + "[tolerance.quantized]\nmax_lsb = 2\n"
        + '[vela]\nextra_flags = ["--verbose-cycle-estimate"]\n'
        + '[baseline]\nsnr_db = { limit = "-2" }\n',
    )
    spec = load_board_file(path)
    assert spec.capabilities == frozenset({"npu", "etdump"})
    assert spec.tolerance.quantized == Tolerance(max_lsb=2.0, rounding_lsb=1.0, snr_margin_db=10.0)
    # limits as written, as records keep them (the table's omitted action stays omitted)
    assert spec.baseline_limits == {"snr_db": {"limit": "-2"}}
    target = get_target(spec.target, board=spec.name, vela=spec.sections.get("vela"))
    assert target.options()["extra_flags"] == ["--verbose-cycle-estimate"]


def test_vela_options_of_a_board_made_in_code_are_checked_by_the_same_type() -> None:
    with pytest.raises(BuildError) as info:
        get_target("ethos-u55-128", board="b", vela={"memory_mode": 3, "sytem_config": "x"})
    assert str(info.value) == (
        "board 'b': [vela] unknown field 'sytem_config' (known: system_config, memory_mode, "
        "extra_flags); [vela] field 'memory_mode' must be a string, got 3"
    )
