"""FVP platform files (the top-level fvp/*.toml): declared fields, and
every mistake of a file in one error naming the file and each field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from et_hil.boards.fvp import platform as fvp
from et_hil.errors import ConfigError


@pytest.fixture
def platforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped platform files that a test may break."""
    folder = tmp_path / "platforms"
    shutil.copytree(fvp.platform_dir(), folder)
    monkeypatch.setattr(fvp, "platform_dir", lambda: folder)
    return folder


@pytest.mark.parametrize("path", sorted(fvp.platform_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_platform_loads(path: Path) -> None:
    platform = fvp.load_platform(path.stem)
    assert platform.name == path.stem
    assert all(
        len(params) > 0 for params in (platform.headless, platform.uart, platform.semihosting)
    )


def test_every_problem_of_a_platform_file_at_once(platforms: Path) -> None:
    path = platforms / "corstone320.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('cpu = "cortex-m85"\n', "")  # missing
    text = text.replace("default_num_macs = 128", "default_num_macs = 0")  # out of range
    text = text.replace("semihosting_cmdline_limit = 256", 'semihosting_cmdline_limit = "256"')
    text += 'uart_mode = ["x"]\n'  # a typo of uart_mode_extra
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        fvp.load_platform("corstone320")
    lines = str(info.value).splitlines()
    assert lines[0] == f"FVP platform file {path}: 4 problems:"
    assert lines[1].startswith("  - unknown field 'uart_mode' (known: name, executable, ")
    assert lines[2:] == [
        "  - missing required field 'cpu'",
        "  - field 'default_num_macs' must be a positive integer, got 0",
        "  - field 'semihosting_cmdline_limit' must be a positive integer, got '256'",
    ]


def test_a_list_of_parameters_must_be_strings(platforms: Path) -> None:
    path = platforms / "corstone300-u55.toml"
    text = path.read_text(encoding="utf-8").replace(
        "uart = [\"mps3_board.uart0.out_file='-'\"]", "uart = [1]"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        fvp.load_platform("corstone300-u55")
    assert str(info.value) == (
        f"FVP platform file {path}: field 'uart' must be a list of strings, got [1]"
    )


def test_the_name_must_be_the_file_name(platforms: Path) -> None:
    # board files' [fvp] platform names the file; a copied file keeps its old name
    shutil.copy(platforms / "corstone320.toml", platforms / "corstone320-mine.toml")
    with pytest.raises(ConfigError, match="field 'name' = 'corstone320': must be the file's name"):
        fvp.load_platform("corstone320-mine")


def test_a_platform_file_that_is_not_toml(platforms: Path) -> None:
    (platforms / "broken.toml").write_text("name = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"FVP platform file .*broken.toml: not valid TOML"):
        fvp.load_platform("broken")
