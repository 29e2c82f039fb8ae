"""Board kinds as plug-ins: the registry, the pytest hook, and the docs' worked example.

The example kind is read from docs/boards/your-own-kind.md itself (the blocks after
the ``<!-- toy-kind: FILE -->`` markers) and run as a user would run it, so the
page cannot drift from what works.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from et_hil import plugins
from et_hil.boards import registry
from et_hil.boards.kind import BoardKind
from et_hil.boards.spec import load_board_file
from et_hil.errors import ConfigError

PAGE = Path(__file__).resolve().parent.parent / "docs" / "boards" / "your-own-kind.md"
_BLOCK = re.compile(r"<!-- toy-kind: (?P<file>\S+) -->\n```\w*\n(?P<body>.*?)```", re.S)


def docs_example() -> dict[str, str]:
    """The worked example's files, by name, as the page shows them."""
    return {m["file"]: m["body"] for m in _BLOCK.finditer(PAGE.read_text(encoding="utf-8"))}


def test_the_docs_show_one_module_and_one_board_file() -> None:
    files = docs_example()
    assert sorted(files) == ["boards/in-process.toml", "conftest.py", "test_in_process.py"]
    assert "def pytest_et_hil_board_kinds" in files["conftest.py"]


@pytest.mark.slow
def test_the_docs_toy_kind_runs_from_a_users_conftest(et_pytester: pytest.Pytester) -> None:
    for name, body in docs_example().items():
        path = et_pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    results = et_pytester.path / "results.jsonl"
    run = et_pytester.runpytest_subprocess(
        "--et-board", "boards/in-process.toml", f"--et-results={results}", "-p", "no:randomly"
    )
    run.assert_outcomes(passed=1)
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["board"] == "in-process"
    assert record["outcome"] == "passed"
    assert record["timings"]["fidelity"] == "in-process-wall"


def test_the_builtin_kinds_are_registered() -> None:
    kinds = registry.kinds()
    # et-hil's own entry points, in the order its metadata lists them
    assert list(kinds)[:5] == ["fvp", "host", "qemu", "serial", "tosa"]
    assert kinds["fvp"].settings_table == "fvp"
    assert set(kinds["fvp"].fidelities) == {"fvp-fast", "fvp-cycles"}


def test_an_unknown_kind_names_the_known_ones_and_the_hook(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('name = "b"\nkind = "fpga"\ntarget = "portable"\n')
    with pytest.raises(ConfigError) as info:
        load_board_file(path)
    assert str(info.value) == (
        f"board file {path}: field 'kind' = 'fpga': must be one of fvp, host, qemu, serial, tosa"
    )


class LampSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A made-up kind's table: a required string and a bounded integer."""

    host: str
    port: int = msgspec.field(default=22)


@pytest.fixture
def lamp_kind() -> BoardKind:
    kind = BoardKind(
        name="lamp",
        board="nowhere:Nothing",  # never imported: these tests only read board files
        summary="a kind with its own table",
        fidelities={"lamp-wall": "made up"},
        settings_table="lamp",
        settings_type=LampSettings,
        settings_required=True,
    )
    registry.register([kind], source="test")
    yield kind
    registry.unregister("lamp")


def test_a_plugin_kind_gets_its_table_validated_and_typed(
    tmp_path: Path, lamp_kind: BoardKind
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('name = "l"\nkind = "lamp"\ntarget = "portable"\n[lamp]\nhost = "rack-3"\n')
    assert load_board_file(good).settings == LampSettings(host="rack-3", port=22)

    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "l"\nkind = "lamp"\ntarget = "portable"\n[lamp]\nport = "x"\ncolour = 1\n'
    )
    with pytest.raises(ConfigError) as info:
        load_board_file(bad)
    message = str(info.value)
    assert message.startswith(f"board file {bad}: 3 problems:")
    assert "[lamp] unknown field 'colour' (known: host, port)" in message
    assert "[lamp] missing required field 'host'" in message
    assert "[lamp] field 'port' = 'x': Expected `int`, got `str`" in message


def test_a_kind_reads_its_settings_as_its_own_type(tmp_path: Path, lamp_kind: BoardKind) -> None:
    from et_hil.boards.fvp.kind import FvpSettings

    path = tmp_path / "l.toml"
    path.write_text('name = "l"\nkind = "lamp"\ntarget = "portable"\n[lamp]\nhost = "rack-3"\n')
    spec = load_board_file(path)
    assert spec.settings_of(LampSettings) == LampSettings(host="rack-3")
    # another kind's type is a mistake of code, said as such (not a silent None)
    with pytest.raises(ConfigError) as info:
        spec.settings_of(FvpSettings)
    assert str(info.value) == (
        "board 'l' (kind 'lamp'): its settings are a LampSettings, not the FvpSettings its "
        "kind reads"
    )


def test_a_kind_without_a_settings_type_checks_its_plain_table(tmp_path: Path) -> None:
    given: list[object] = []

    def check(table: dict[str, object], path: Path) -> list[str]:
        given.append(table)
        return [] if "host" in table else ["[bulb] needs 'host'"]

    kind = BoardKind(
        name="bulb",
        board="nowhere:Nothing",
        summary="a kind whose table has no declared type",
        fidelities={"bulb-wall": "made up"},
        settings_table="bulb",
        check_settings=check,
    )
    registry.register([kind], source="test")
    try:
        good = tmp_path / "good.toml"
        good.write_text('name = "b"\nkind = "bulb"\ntarget = "portable"\n[bulb]\nhost = "x"\n')
        spec = load_board_file(good)
        assert given == [{"host": "x"}]
        # no type to convert to: the table stays plain, in sections, and settings is None
        assert spec.settings is None
        assert spec.sections["bulb"] == {"host": "x"}
        bad = tmp_path / "bad.toml"
        bad.write_text('name = "b"\nkind = "bulb"\ntarget = "portable"\n[bulb]\nport = 1\n')
        with pytest.raises(ConfigError) as info:
            load_board_file(bad)
        assert str(info.value) == f"board file {bad}: [bulb] needs 'host'"
    finally:
        registry.unregister("bulb")


def test_a_table_of_another_kind_is_refused(tmp_path: Path, lamp_kind: BoardKind) -> None:
    path = tmp_path / "b.toml"
    path.write_text('name = "b"\nkind = "host"\ntarget = "portable"\n[lamp]\nhost = "x"\n')
    with pytest.raises(ConfigError, match=r"\[lamp\] is for kind 'lamp', this board is kind"):
        load_board_file(path)


def test_two_kinds_of_one_name_are_refused(lamp_kind: BoardKind) -> None:
    other = BoardKind(name="lamp", board="x:Y", summary="", fidelities={})
    with pytest.raises(ConfigError, match=r"board kind 'lamp' from conftest is already registered"):
        registry.register([other], source="conftest")
    registry.register([lamp_kind], source="again")  # the same kind twice is harmless


def test_a_hook_that_returns_something_else_is_a_usage_error(
    et_pytester: pytest.Pytester,
) -> None:
    et_pytester.makeconftest("def pytest_et_hil_board_kinds():\n    return ['lamp']\n")
    et_pytester.makepyfile("def test_nothing():\n    pass\n")
    run = et_pytester.runpytest_subprocess()
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    run.stderr.fnmatch_lines(["*returned 'lamp': return BoardKind values*"])


def test_a_run_of_an_undeclared_fidelity_is_refused(tmp_path: Path, lamp_kind: BoardKind) -> None:
    from types import SimpleNamespace

    from et_hil.boards.base import RunResult
    from et_hil.errors import HarnessError
    from et_hil.verdict.check import _check_fidelity

    board = SimpleNamespace(spec=SimpleNamespace(name="l1", kind="lamp"))
    declared = RunResult("l1", (), 0.0, 0.0, "lamp-wall", tmp_path)
    _check_fidelity(board, declared)  # type: ignore[arg-type]
    undeclared = RunResult("l1", (), 0.0, 0.0, "host-wall", tmp_path)
    with pytest.raises(HarnessError) as info:
        _check_fidelity(board, undeclared)  # type: ignore[arg-type]
    assert str(info.value) == (
        "board 'l1' of kind 'lamp' returned fidelity 'host-wall', which its kind does not "
        "declare (lamp-wall); add it to the kind's BoardKind(fidelities=...)"
    )


def test_a_broken_entry_point_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed plug-in whose module does not import ends ``et-hil`` with a message
    naming the entry point, not a traceback."""
    from importlib import metadata

    broken = metadata.EntryPoint(
        name="broken", value="no_such_module_for_et_hil:KIND", group=registry.ENTRY_POINT_GROUP
    )
    installed = plugins.group  # et-hil's own kinds, then the broken one
    monkeypatch.setattr(plugins, "group", lambda name: [*installed(name), broken])
    with pytest.raises(ConfigError, match=r"entry point 'broken = no_such_module_for_et_hil:KIND'"):
        registry.load_entry_points()


def test_an_entry_point_giving_a_non_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    odd = metadata.EntryPoint(name="odd", value="math:pi", group=registry.ENTRY_POINT_GROUP)
    installed = plugins.group
    monkeypatch.setattr(plugins, "group", lambda name: [*installed(name), odd])
    with pytest.raises(ConfigError, match="give a BoardKind"):
        registry.load_entry_points()


def test_without_ets_own_entry_points_the_message_says_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkout used without being installed has no metadata: the built-in kinds are
    missing, and the message says how to install rather than 'unknown kind host'."""
    monkeypatch.setattr(registry.REGISTRY, "_items", {})
    monkeypatch.setattr(registry.REGISTRY, "_entry_points_read", False)
    monkeypatch.setattr(plugins, "group", lambda name: [])
    with pytest.raises(ConfigError, match=r"built-in board kinds are not registered.*make install"):
        registry.kinds()
