"""Tests of harness.boardspec: built-in board files, validation errors, user boards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.boardspec import (
    BoardSpec,
    builtin_board_dir,
    load_board_file,
    load_boards,
    resolve_board_names,
)
from harness.errors import ConfigError
from harness.tolerance import Tolerance, TolerancePolicy

BUILTIN = {
    # name: (kind, target, cpu)
    "host": ("host", "portable", None),
    "tosa": ("tosa", "tosa-int", None),
    "corstone300": ("fvp", "ethos-u55-128", "cortex-m55"),
    "corstone300-u65": ("fvp", "ethos-u65-256", "cortex-m55"),
    "corstone320": ("fvp", "ethos-u85-256", "cortex-m85"),
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
    assert host.capabilities == frozenset({"etdump", "intermediate_outputs"})
    assert host.run_timeout_s == 60.0
    assert host.memory == {}
    assert host.sections == {}
    assert host.tolerance == TolerancePolicy(
        float=Tolerance(atol=1e-5, rtol=1e-4),
        quantized=Tolerance(max_lsb=1.0),
        quantized_vs_float=Tolerance(min_snr_db=10.0),
    )


def test_builtin_fvp_details() -> None:
    spec = load_boards()["corstone320"]
    assert spec.capabilities == frozenset({"npu", "etdump", "cycle_counts"})
    assert spec.run_timeout_s == 600.0
    assert spec.memory == {
        "sram_bytes": 4194304,
        "flash_bytes": 8388608,
        "ddr_bytes": 268435456,
    }
    assert set(spec.sections) == {"vela", "fvp"}
    assert spec.sections["fvp"] == {"platform": "corstone320"}
    assert spec.sections["vela"]["memory_mode"] == "Shared_Sram"
    assert spec.tolerance.quantized == Tolerance(max_lsb=1.0)
    # no [tolerance.float] in the file: the default applies
    assert spec.tolerance.float == TolerancePolicy().float


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
            r"field 'kind' = 'gpu': must be one of host, tosa, fvp, serial",
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


def test_error_is_config_error_for_tolerance(tmp_path: Path) -> None:
    # the ValueError of the tolerance parser is turned into a ConfigError
    path = _write(tmp_path, _board("b") + "[tolerance.float]\natoll = 1e-3\n")
    error = _assert_config_error(path, "atoll")
    assert isinstance(error.__cause__, ValueError)


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
    assert "Known boards: corstone300, corstone300-u65, corstone320, host, tosa." in message
    assert "--board-file" in message


def test_resolve_board_names_drops_duplicates_keeps_order() -> None:
    boards = load_boards()
    names = ["tosa", "host", "tosa", "corstone320", "host"]
    assert resolve_board_names(names, boards) == ["tosa", "host", "corstone320"]


def test_resolve_board_names_empty() -> None:
    assert resolve_board_names([], load_boards()) == []
