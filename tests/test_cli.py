"""Tests of the ``et-hil`` command (et_hil.cli): an honest doctor, every reason a board
cannot run, options before and after the subcommand, usage errors without tracebacks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from et_hil.boards import Availability, make_board
from et_hil.boards.fvp import platform as fvp
from et_hil.boards.fvp.board import FvpBoard
from et_hil.boards.spec import load_board_file
from et_hil.cli import main
from tests.fvp_double.make_elf import write_elf

DOUBLE_DIR = Path(__file__).parent / "fvp_double"
NO_FVP_320 = "FVP_Corstone_SSE-320 (FVP 11.27_25) is not on PATH"


@pytest.fixture
def bare_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FVP on PATH, no QEMU, no Docker engine, a private cache and lock folder."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin")
    monkeypatch.setenv("ET_HIL_QEMU", str(tmp_path / "no-qemu-system-arm"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("ET_HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ET_HIL_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("ET_HIL_FVP_DIR", "ET_HIL_FVP_IMAGE", "ET_HIL_DOCKER_ENV"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def fvp_on_path(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The FVP double on PATH (doctor only looks for it; nothing runs)."""
    monkeypatch.setenv("PATH", f"{DOUBLE_DIR}{os.pathsep}{os.environ['PATH']}")
    return bare_machine


def fvp_board_file(
    folder: Path, runner_elf: Path | None = None, name: str = "myfvp", backends=("local",)
) -> Path:
    """A Corstone-320 board of one's own (Cortex-M85), local FVP only by default."""
    lines = [
        f'name = "{name}"',
        'kind = "fvp"',
        'target = "ethos-u85-256"',
        'cpu = "cortex-m85"',
        "[fvp]",
        'platform = "corstone320"',
        f"backends = {json.dumps(list(backends))}",
    ]
    if runner_elf is not None:
        lines.append(f"runner_elf = {json.dumps(str(runner_elf))}")
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def serial_board_file(folder: Path) -> Path:
    path = folder / "serial.toml"
    path.write_text(
        'name = "myserial"\nkind = "serial"\ntarget = "portable"\n'
        '[serial]\nport = "/dev/no-such-port"\n'
        '[serial.firmware]\nmode = "address"\npte_address = 0x70000000\n'
        '[serial.flash]\nmethod = "command"\ncommand = ["my-flash", "{image}", "{address}"]\n'
    )
    return path


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def rows_of(text: str) -> dict[str, tuple[str, str]]:
    """The doctor's table as {check: (status, detail)}."""
    lines = text.splitlines()
    header = lines[0]
    check_at, detail_at = header.index("check"), header.index("detail")
    table = {}
    for line in lines[1:]:
        if not line.strip():
            break
        table[line[check_at:detail_at].strip()] = (line[:check_at].strip(), line[detail_at:])
    return table


# ---------------------------------------------------------------- doctor: honest verdicts


def test_doctor_names_the_boards_that_cannot_run_and_never_says_plain_ready(
    bare_machine, capsys
) -> None:
    assert main(["doctor"]) == 0  # the basics and the host board are fine
    out = capsys.readouterr().out
    assert "ready" not in [line.strip() for line in out.splitlines()]
    summary = last_line(out)
    assert summary.startswith("ready for: host, tosa; cannot run here: corstone300 (")
    assert f"corstone320 ({NO_FVP_320}; " in summary
    assert "no runner ELF configured" in summary
    table = rows_of(out)
    assert table["board corstone320"][0] == "warn"
    assert table["runner ELF corstone320"][0] == "warn"
    assert "none configured" in table["runner ELF corstone320"][1]


def test_doctor_board_fails_when_a_named_board_cannot_run_and_names_every_reason(
    bare_machine, capsys
) -> None:
    assert main(["doctor", "--board", "corstone320"]) == 1
    out = capsys.readouterr().out
    table = rows_of(out)
    assert table["board corstone320"][0] == "FAIL"
    assert table["runner ELF corstone320"][0] == "FAIL"
    assert "board host" not in table  # only the named boards
    summary = last_line(out)
    assert summary.startswith(f"no board can run here: corstone320 ({NO_FVP_320}; ")
    assert "the Docker daemon is not running" in summary
    assert summary.endswith("; no runner ELF configured)")


def test_doctor_board_passes_when_every_named_board_runs(bare_machine, capsys) -> None:
    assert main(["doctor", "--board", "host", "--board", "tosa"]) == 0
    assert last_line(capsys.readouterr().out) == "ready for: host, tosa"


def test_doctor_board_with_the_fvp_and_a_runner_elf_for_its_cpu(fvp_on_path, capsys) -> None:
    elf = fvp_on_path / "runner.elf"
    write_elf(elf, "cortex-m55")  # upstream builds M85 runners with -mcpu=cortex-m55
    board_file = fvp_board_file(fvp_on_path, elf)
    assert main(["doctor", "--board-file", str(board_file), "--board", "myfvp"]) == 0
    out = capsys.readouterr().out
    table = rows_of(out)
    found = f"{DOUBLE_DIR}/FVP_Corstone_SSE-320 (platform corstone320: FVP 11.27_25)"
    assert table["FVP_Corstone_SSE-320"] == ("ok", found)
    assert table["runner ELF myfvp"] == ("ok", f"{elf} (built for cortex-m55, fits cortex-m85)")
    assert last_line(out) == "ready for: myfvp"


def test_doctor_runner_elf_option_is_pytests(fvp_on_path, capsys) -> None:
    elf = fvp_on_path / "runner.elf"
    write_elf(elf, "cortex-m55")
    argv = ["doctor", "--board", "corstone320", "--runner-elf", f"corstone320={elf}"]
    assert main(argv) == 0
    assert last_line(capsys.readouterr().out) == "ready for: corstone320"


def test_doctor_checks_the_runner_elf_even_without_the_fvp(bare_machine, capsys) -> None:
    elf = bare_machine / "m4.elf"
    write_elf(elf, "cortex-m4")
    board_file = fvp_board_file(bare_machine, elf)
    assert main(["doctor", "--board-file", str(board_file)]) == 0  # optional equipment
    out = capsys.readouterr().out
    wrong_cpu = "was built for cortex-m4, the board's CPU is cortex-m85"
    status, detail = rows_of(out)["runner ELF myfvp"]
    assert status == "warn"
    assert wrong_cpu in detail
    assert f"myfvp ({NO_FVP_320}; board 'myfvp': runner ELF {elf} {wrong_cpu}" in last_line(out)

    assert main(["doctor", "--board-file", str(board_file), "--board", "myfvp"]) == 1
    out = capsys.readouterr().out
    assert rows_of(out)["runner ELF myfvp"][0] == "FAIL"


def test_doctor_takes_the_fvp_names_from_the_platform_files(
    bare_machine, monkeypatch, capsys
) -> None:
    platforms = bare_machine / "platforms"
    shutil.copytree(fvp.platform_dir(), platforms)
    text = (platforms / "corstone320.toml").read_text()
    (platforms / "corstone320.toml").write_text(
        text.replace('executable = "FVP_Corstone_SSE-320"', 'executable = "FVP_Renamed_320"')
    )
    monkeypatch.setattr(fvp, "platform_dir", lambda: platforms)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert rows_of(out)["FVP_Renamed_320"][0] == "warn"
    assert "FVP_Corstone_SSE-320" not in out
    assert "FVP_Corstone_SSE-300_Ethos-U55" in rows_of(out)


def test_doctor_fails_on_a_missing_basic(bare_machine, capsys) -> None:
    cache = bare_machine / "a-file"
    cache.write_text("")  # a cache folder that cannot be made
    assert main(["doctor", "--build-cache", str(cache / "cache")]) == 1
    out = capsys.readouterr().out
    assert rows_of(out)["build cache"][0] == "FAIL"
    assert out.strip().splitlines()[-2] == "problems found: fix the FAIL lines above"
    assert last_line(out).startswith("ready for: host, tosa; cannot run here: ")


# ---------------------------------------------------------------- FvpBoard.availability


def _fvp_board(folder: Path, elf: Path | None, backends=("local",)) -> FvpBoard:
    spec = load_board_file(fvp_board_file(folder, elf, backends=backends))
    board = make_board(spec, folder / "work")
    assert isinstance(board, FvpBoard)
    return board


def test_a_board_lacking_the_fvp_and_the_elf_names_both(bare_machine) -> None:
    missing = bare_machine / "no-such.elf"
    found = _fvp_board(bare_machine, missing).availability()
    assert not found.ok
    assert found.reason == f"{NO_FVP_320}; runner ELF {missing} does not exist"
    fixes = found.hint.split("; ")
    assert fixes[0].startswith("install the Arm Corstone FVP (EULA)")
    assert fixes[-1] == "build it (docs/boards/corstone-fvp.md, 'Runner ELFs') or fix the path"


def test_a_board_lacking_the_fvp_names_an_elf_for_the_wrong_cpu(bare_machine) -> None:
    elf = bare_machine / "m4.elf"
    write_elf(elf, "cortex-m4")
    found = _fvp_board(bare_machine, elf).availability()
    assert found.reason.startswith(f"{NO_FVP_320}; board 'myfvp': runner ELF {elf} was built ")
    assert found.hint.endswith("; use the runner ELF built for this board")


def test_a_board_lacking_the_fvp_and_any_elf_names_both(bare_machine) -> None:
    found = _fvp_board(bare_machine, None, backends=("local", "docker")).availability()
    assert found.reason.startswith(f"{NO_FVP_320}; the Docker daemon is not running")
    assert found.reason.endswith("; no runner ELF configured")
    # Either executor's fix will do; the runner fix is needed as well.
    assert "'Installing the FVPs'); or start it" in found.hint
    assert found.hint.endswith("or use the FVP image, which brings its own runners")


class FakeExecutor:
    """An executor that can or cannot start the FVP, with or without an image runner
    (the members of FvpExecutor the board asks before and after runs)."""

    brings_runners = True

    def __init__(self, answer: Availability, image_runner: str | None = None) -> None:
        self.answer = answer
        self.runner = image_runner
        self.removals = 0

    def availability(self, platform: fvp.FvpPlatform) -> Availability:
        return self.answer

    def image_runner(self, platform: fvp.FvpPlatform) -> str | None:
        return self.runner

    def remove_leftovers(self) -> list[str]:
        self.removals += 1
        return []


def test_the_first_executor_that_can_start_the_fvp_is_chosen(bare_machine) -> None:
    board = _fvp_board(bare_machine, None)
    refuses = FakeExecutor(Availability(False, "not here", "install it"))
    image = FakeExecutor(Availability(True), image_runner="/opt/runner.elf")
    board.executors = [refuses, image]  # type: ignore[list-item]
    assert board.availability() == Availability(True)  # the image's own runner
    assert board.executor is image

    image.runner = None  # an image without runners needs a runner ELF
    found = board.availability()
    assert found.reason == "no runner ELF configured"
    assert "or use the FVP image" not in found.hint


def test_closing_the_board_asks_every_executor_to_remove_its_leftovers(bare_machine) -> None:
    board = _fvp_board(bare_machine, None)
    used, spare = FakeExecutor(Availability(True)), FakeExecutor(Availability(False, "no"))
    board.executors = [used, spare]  # type: ignore[list-item]
    board.close()
    assert (used.removals, spare.removals) == (1, 1)


def test_an_elf_that_fits_is_fingerprinted(fvp_on_path) -> None:
    elf = fvp_on_path / "runner.elf"
    write_elf(elf, "cortex-m85")
    board = _fvp_board(fvp_on_path, elf)
    assert board.availability() == Availability(True)
    assert board.elf_sha256 == hashlib.sha256(elf.read_bytes()).hexdigest()


# ---------------------------------------------------------------- options anywhere


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_units_takes_board_files_before_and_after_the_subcommand(
    bare_machine, capsys, before
) -> None:
    option = ["--board-file", str(serial_board_file(bare_machine))]
    argv = [*option, "units"] if before else ["units", *option]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "myserial  0     /dev/no-such-port  no       free" in out


def test_board_files_before_and_after_the_subcommand_add_up(bare_machine, capsys) -> None:
    serial = serial_board_file(bare_machine)
    mine = fvp_board_file(bare_machine)
    assert main(["--board-file", str(serial), "boards", "--board-file", str(mine)]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert {"myserial", "myfvp", "host"} <= set(names)


def test_boards_takes_a_board_file_after_the_subcommand(bare_machine, capsys) -> None:
    mine = fvp_board_file(bare_machine, bare_machine / "no-such.elf")
    assert main(["boards", "--board-file", str(mine)]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("myfvp ")]
    assert f"no         {NO_FVP_320}; runner ELF" in line
    assert "(to fix: install the Arm Corstone FVP" in line


def test_cache_takes_the_build_cache_after_the_subcommand(bare_machine, capsys) -> None:
    folder = bare_machine / "my-cache"
    assert main(["cache", "--build-cache", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder}: 0.0 MiB")
    # After the subcommand wins over before it, as the nearer one.
    other = bare_machine / "other"
    assert main(["--build-cache", str(other), "cache", "--build-cache", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder}: 0.0 MiB")


def test_doctor_takes_the_build_cache_after_the_subcommand(bare_machine, capsys) -> None:
    folder = bare_machine / "my-cache"
    assert main(["doctor", "--board", "host", "--build-cache", str(folder)]) == 0
    assert rows_of(capsys.readouterr().out)["build cache"] == ("ok", f"{folder} writable")


# ---------------------------------------------------------------- errors, never tracebacks


@pytest.mark.parametrize("command", ["doctor", "units", "boards"])
def test_a_bad_board_file_is_a_usage_error(bare_machine, capsys, command) -> None:
    bad = bare_machine / "bad.toml"
    bad.write_text("name = \n")
    assert main([command, "--board-file", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"et-hil: error: board file {bad}: not valid TOML")
    assert captured.out == ""


def test_doctor_refuses_an_fvp_board_of_an_unknown_platform(bare_machine, capsys) -> None:
    bad = bare_machine / "bad.toml"
    bad.write_text(fvp_board_file(bare_machine).read_text().replace("corstone320", "nosuch"))
    assert main(["doctor", "--board-file", str(bad)]) == 2
    # refused when the file is read, naming the file, the field and the known platforms
    err = capsys.readouterr().err
    assert err.startswith(f"et-hil: error: board file {bad}: [fvp] platform 'nosuch' is unknown")
    assert "(known: corstone300-u55, corstone300-u65, corstone320)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["doctor", "--board", "nope"], "unknown board 'nope'. Known boards: corstone300, "),
        (["doctor", "--runner-elf", "nope=x.elf"], "--runner-elf nope=x.elf: unknown board"),
    ],
)
def test_doctor_usage_errors(bare_machine, capsys, argv, message) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"et-hil: error: {message}")


def test_an_unusable_lock_folder_is_said_without_a_traceback(
    bare_machine, monkeypatch, capsys
) -> None:
    (bare_machine / "a-file").write_text("")
    monkeypatch.setenv("ET_HIL_LOCK_DIR", str(bare_machine / "a-file" / "locks"))
    assert main(["--board-file", str(serial_board_file(bare_machine)), "units"]) == 1
    assert capsys.readouterr().err.startswith("et-hil: error: cannot create the board lock folder")
