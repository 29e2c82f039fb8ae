"""Compile targets as plug-ins: the registry, its lookups, the pytest hook and entry points.

The toy target is the portable target under another name: what the registry must
show is that a name nobody built in reaches the board-file check, the build and the
record through the same lookup the built-in names take.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from et_hil import plugins
from et_hil.boards.spec import load_board_file
from et_hil.errors import BuildError, ConfigError
from et_hil.programs import target_registry
from et_hil.programs.target_kind import TargetKind
from et_hil.programs.targets import CompileTarget, PortableTarget

# A conftest.py target through the plugin, end to end: tests/test_docs.py builds and runs
# the documented example (docs/boards/your-own-kind.md, 'A compile target of your own').


def _make_toy(name: str, board: str, vela: Mapping[str, Any]) -> CompileTarget:
    made.append((name, board, dict(vela)))
    return PortableTarget(name=name)


made: list[tuple[str, str, dict[str, Any]]] = []
TOY = TargetKind(name="toy", pattern=r"toy-\d+", spelled="toy-N", make=_make_toy, delegates=False)


@pytest.fixture
def toy() -> Iterator[TargetKind]:
    made.clear()
    target_registry.register([TOY], source="test")
    yield TOY
    target_registry.unregister("toy")


def test_the_builtin_targets_are_registered_as_kinds_first() -> None:
    kinds = target_registry.kinds()
    assert list(kinds)[:4] == ["portable", "tosa", "ethos-u", "cortex-m"]
    assert all(isinstance(kind, TargetKind) for kind in kinds.values())
    assert target_registry.kind_of("ethos-u65-512") is kinds["ethos-u"]
    assert target_registry.kind_of("tosa-int+int16+u55") is kinds["tosa"]
    assert target_registry.kind_of("ethos-u65-512x") is None  # the whole name must match


def test_an_unknown_name_lists_the_known_ones_and_how_to_add_one() -> None:
    with pytest.raises(BuildError) as info:
        target_registry.get_target("npu-9000", board="b")
    assert str(info.value) == (
        "board 'b': target 'npu-9000': not a known compile target (known: portable, "
        "tosa-int[+extensions], tosa-fp, ethos-u55-{32,64,128,256}, ethos-u65-{256,512}, "
        "ethos-u85-{128,256,512,1024,2048}, cortex-m55, cortex-m85); a target of your own "
        "registers through the pytest_et_hil_compile_targets hook or the "
        "et_hil.compile_targets entry-point group (et_hil/programs/target_registry.py)"
    )


def test_a_registered_target_is_resolved_and_made_with_the_boards_settings(
    toy: TargetKind,
) -> None:
    assert target_registry.check_target_name("toy-3") is None
    assert not target_registry.has_delegate("toy-3")
    assert "toy-N" in (target_registry.check_target_name("toy") or "")  # listed when unknown
    target = target_registry.get_target("toy-3", board="bench", vela={"memory_mode": "x"})
    assert target.name == "toy-3"
    assert made == [("toy-3", "bench", {"memory_mode": "x"})]


def test_a_board_file_may_name_a_registered_target(tmp_path: Path, toy: TargetKind) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(
        'name = "bench"\nkind = "host"\ntarget = "toy-1"\nrequire_full_delegation = true\n'
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    # The board file check asks the kind whether its programs have delegates.
    assert "target 'toy-1' has no delegate" in str(info.value)
    path.write_text('name = "bench"\nkind = "host"\ntarget = "toy-1"\n')
    assert load_board_file(path).target == "toy-1"


def test_two_kinds_of_one_name_are_refused(toy: TargetKind) -> None:
    other = TargetKind(name="toy", pattern="other", spelled="other", make=_make_toy)
    with pytest.raises(ConfigError, match="compile target kind 'toy' from conftest is already"):
        target_registry.register([other], source="conftest")
    target_registry.register([toy], source="again")  # the same kind twice is harmless
    with pytest.raises(ConfigError, match="returned 'toy': return TargetKind values"):
        target_registry.register(["toy"], source="conftest")  # type: ignore[list-item]


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[metadata.EntryPoint]]:
    """Entry points the registry reads, read again for each test."""
    found: list[metadata.EntryPoint] = []
    monkeypatch.setattr(
        plugins, "group", lambda name: found if name == target_registry.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(target_registry.REGISTRY, "_entry_points_read", False)
    yield found
    target_registry.unregister("toy")


def test_an_entry_point_adds_its_targets_on_the_first_lookup(
    entry_points: list[metadata.EntryPoint],
) -> None:
    entry_points.append(
        metadata.EntryPoint(
            name="toy", value="tests.test_compile_targets:TOY", group="et_hil.compile_targets"
        )
    )
    assert target_registry.check_target_name("toy-2") is None


def test_a_broken_entry_point_is_a_config_error_naming_it(
    entry_points: list[metadata.EntryPoint],
) -> None:
    entry_points.append(
        metadata.EntryPoint(
            name="broken", value="no_such_module_for_et_hil:KIND", group="et_hil.compile_targets"
        )
    )
    with pytest.raises(ConfigError, match=r"entry point 'broken = no_such_module_for_et_hil:KIND'"):
        target_registry.check_target_name("portable")
