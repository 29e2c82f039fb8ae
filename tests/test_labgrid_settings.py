"""The [serial.labgrid] table: a board reached through a labgrid lab, and the
messages its mistakes get (naming the field and what to write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from et_hil.boards.labgrid.settings import DEFAULT_COORDINATOR
from et_hil.boards.serial.settings import parse_serial
from et_hil.errors import ConfigError

LAB = {
    "labgrid": {"tags": {"pool": "ci", "board": "mps3-an552"}},
    "firmware": {"mode": "address", "pte_address": 0x70000000},
    "flash": {"method": "command", "command": ["flash", "--host", "{exporter}", "{place}"]},
}


def _with(**changes: object) -> dict[str, object]:
    section = {**LAB, **changes}
    return {k: v for k, v in section.items() if v is not None}


def test_a_pool_by_tags_needs_no_port_and_may_name_place_and_exporter() -> None:
    settings = parse_serial(LAB, Path("b.toml"))
    assert settings.units == ()
    assert settings.labgrid is not None
    assert dict(settings.labgrid.filters) == {"pool": "ci", "board": "mps3-an552"}
    assert settings.labgrid.describe() == "a place with board=mps3-an552 pool=ci"
    rendered = settings.flash.render({"exporter": "lab-a", "place": "mps3-1"})
    assert rendered == ["flash", "--host", "lab-a", "mps3-1"]


def test_one_place_by_name_is_labgrids_name_filter() -> None:
    settings = parse_serial(_with(labgrid={"place": "vboard0"}), Path("b.toml"))
    assert settings.labgrid is not None
    assert dict(settings.labgrid.filters) == {"name": "vboard0"}
    assert settings.labgrid.describe() == "place vboard0"


def test_the_coordinator_comes_from_the_file_then_lg_coordinator_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    default = parse_serial(LAB, Path("b.toml")).labgrid
    assert default is not None
    assert default.address() == DEFAULT_COORDINATOR == "127.0.0.1:20408"
    monkeypatch.setenv("LG_COORDINATOR", "lab.example.com:20408")
    assert default.address() == "lab.example.com:20408"
    given = parse_serial(
        _with(labgrid={"place": "p", "coordinator": "10.0.0.2:1234"}), Path("b.toml")
    ).labgrid
    assert given is not None
    assert given.address() == "10.0.0.2:1234"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (_with(labgrid={}), "[serial.labgrid] needs 'place' (one place) or 'tags'"),
        (_with(port="/dev/ttyACM0"), "takes no 'port' or [[serial.unit]]"),
        (_with(labgrid={"tags": {"Pool": "CI"}}), "labgrid takes lower-case keys"),
        (_with(labgrid={"tags": {"name": "x"}}), "use 'place' for the place's name"),
        (_with(labgrid={"place": "p", "timeout_s": -1}), "'timeout_s' must be a number >= 0"),
        (_with(labgrid={"place": "p", "hosts": 2}), "[serial.labgrid] unknown field 'hosts'"),
        (
            _with(flash={"method": "pyocd", "target": "cortex_m"}),
            "pyOCD needs [serial] probe_id, which fits one place only",
        ),
    ],
)
def test_mistakes_name_the_field(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_serial(section, Path("/lab/b.toml"))
    assert "/lab/b.toml" in str(info.value)
    assert message in str(info.value)


def test_place_and_exporter_placeholders_are_for_labgrid_boards_only() -> None:
    section = {
        "port": "/dev/ttyACM0",
        "firmware": {"mode": "address", "pte_address": 0x70000000},
        "flash": {"method": "command", "command": ["flash", "{place}"]},
    }
    with pytest.raises(ConfigError, match=r"unknown placeholder '\{place\}'"):
        parse_serial(section, Path("b.toml"))


def test_an_unreachable_coordinator_makes_the_board_unavailable_naming_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from et_hil.boards.labgrid.places import labgrid_availability

    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:1")  # nothing listens on port 1
    settings = parse_serial(LAB, Path("b.toml")).labgrid
    assert settings is not None
    found = labgrid_availability(settings)
    assert not found.ok
    assert "labgrid coordinator 127.0.0.1:1 ($LG_COORDINATOR) is not reachable" in found.reason
    assert "(docs/boards/labgrid.md)" in found.hint
