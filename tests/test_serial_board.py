"""Serial boards end to end against the virtual board (tests/serial_double): real
programs on the real ExecuTorch runtime, the runner's UART format on a pty,
flashing through the command-template method; every misbehaviour ends in its
failure class."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from et_hil.boards.base import RUN_FACTS
from et_hil.boards.serial.board import SerialBoard
from et_hil.boards.spec import load_board_file
from et_hil.errors import ConfigError, InfrastructureError, RunCrashed, RunTimeout
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache
from et_hil.verdict.check import CheckResult, check_model
from tests.serial_double import VirtualBoard

pytestmark = pytest.mark.slow


class Tiny(torch.nn.Module):
    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(8, 4)
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x)) + self.bias


def x(seed: int = 0) -> tuple[torch.Tensor]:
    return (torch.randn(2, 8, generator=torch.Generator().manual_seed(seed)),)


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(ArtifactCache(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def vboard_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    """One virtual board process for the module (starting one imports the runtime)."""
    board = VirtualBoard(tmp_path_factory.mktemp("vboard")).start()
    yield board
    board.stop()


@pytest.fixture
def vboard(vboard_process: VirtualBoard) -> VirtualBoard:
    """The module's virtual board as each test expects it (nothing queued, its
    port present), whatever an earlier test left: tests pass in any order, alone."""
    return vboard_process.ready()


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ET_HIL_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


def make_board(vb: VirtualBoard, tmp_path: Path, **kw: object) -> SerialBoard:
    spec = load_board_file(vb.write_board_file(tmp_path / f"{vb.name}.toml", **kw))
    return SerialBoard(spec, tmp_path / "logs")


def check(
    board: SerialBoard,
    builder: Builder,
    run_dir: Path,
    model: torch.nn.Module | None = None,
    inputs: tuple[torch.Tensor] | None = None,
    quantize: str | None = "int8",
    timeout_s: float | None = None,
) -> CheckResult:
    return check_model(
        builder,
        board,
        model or Tiny(),
        inputs or x(),
        run_dir=run_dir,
        quantize=quantize,
        timeout_s=timeout_s,
    )


def test_bundleio_runs_the_tests_inputs(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path)
    assert board.availability().ok
    result = check(board, builder, tmp_path / "run")
    assert result.passed, result.table()
    assert set(result.run.timings) == {"uart_wall_s", "lock_wait_s"}
    facts = result.run.facts
    assert set(facts) <= set(RUN_FACTS)  # every fact the board gives is documented
    assert facts["bundleio"][0]["result"] == "PASS"
    assert facts["attempts"] == 1
    assert facts["outputs_from"] == "uart"
    assert facts["unit"] == "0"
    assert facts["pmu"]["npu_active_cycles"] == 0  # portable program: no NPU work
    assert facts["pmu"]["cpu_cycles"] > 0
    assert result.run.etdump_path is not None
    assert result.run.etdump_path.stat().st_size > 0
    flash = [c for c in vboard.flasher_calls() if c["action"] == "flash"][-1]
    bpte = tmp_path / "run" / str(facts["program"])
    assert flash["address"] == "0x70000000"
    assert flash["magic"] == "BP08"
    assert flash["bytes"] == bpte.stat().st_size
    assert "--unit" in flash["argv"]
    assert flash["port"] == str(vboard.link)
    assert facts["uart_log"] == str(tmp_path / "run" / "uart.log")
    log = (tmp_path / "run" / "uart.log").read_bytes()
    assert b"virtual-board boot ROM" in log
    assert b"#[RUN THIS]" in log


def test_outputs_are_the_boards_own(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    """Different inputs give different outputs: nothing is cached or made up."""
    board = make_board(vboard, tmp_path)
    first = check(board, builder, tmp_path / "a", inputs=x(1), quantize=None)
    second = check(board, builder, tmp_path / "b", inputs=x(2), quantize=None)
    assert first.passed
    assert second.passed
    expected = Tiny()(*x(2)).detach().numpy()
    # float32 outputs come over the UART with six decimals: within 5e-7 of eager
    np.testing.assert_allclose(second.run.outputs[0], expected, atol=6e-7, rtol=0)
    assert not np.allclose(first.run.outputs[0], second.run.outputs[0])


class ChannelsLast(torch.nn.Module):
    """A conv whose exported input and output are channels_last (dim order 0,2,3,1)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_a_channels_last_program_gets_its_bundle_in_its_dim_order(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    """The runtime copies bundled bytes as they are, and aborts when expected and
    real outputs differ in strides: the bundle must hold the program's dim order
    and bytes laid out in it (the devtools emitter alone makes them NCHW)."""
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )

    board = make_board(vboard, tmp_path)
    x_cl = torch.randn(1, 3, 5, 6, generator=torch.Generator().manual_seed(3))
    x_cl = x_cl.contiguous(memory_format=torch.channels_last)
    result = check(board, builder, tmp_path / "run", ChannelsLast(), (x_cl,), quantize=None)
    assert result.passed, result.table()
    assert result.run.facts["bundleio"][0]["result"] == "PASS"
    bpte = tmp_path / "run" / str(result.run.facts["program"])
    case = deserialize_from_flatbuffer_to_bundled_program(bpte.read_bytes())
    bundled = case.method_test_suites[0].test_cases[0]
    for value, logical in (
        (bundled.inputs[0].val, x_cl),
        (bundled.expected_outputs[0].val, ChannelsLast()(x_cl).detach()),
    ):
        assert list(value.dim_order) == [0, 2, 3, 1]
        nhwc = logical.permute(0, 2, 3, 1).contiguous().numpy()
        assert bytes(value.data) == nhwc.tobytes()


def test_firmware_without_bundleio_is_compared_on_all_ones(
    tmp_path_factory: pytest.TempPathFactory, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    vb = VirtualBoard(
        tmp_path_factory.mktemp("plain"), "plainboard", bundle_io=False, pmu=False
    ).start()
    try:
        board = make_board(vb, tmp_path)
        with pytest.warns(UserWarning, match="ran all-ones inputs"):
            result = check(board, builder, tmp_path / "run")
        assert result.passed, result.table()
        assert "all-ones" in result.run.facts["inputs"]
        ones = torch.ones(2, 8)
        vs_eager_on_ones = result.comparisons[1]
        assert vs_eager_on_ones.reference == "eager_float"
        assert vs_eager_on_ones.passed
        np.testing.assert_allclose(result.run.outputs[0], Tiny()(ones).detach().numpy(), atol=0.05)
        flashes = [c for c in vb.flasher_calls() if c["action"] == "flash"]
        assert flashes[-1]["magic"] == "ET12"
    finally:
        vb.stop()


def test_embedded_firmware_is_built_once_per_program(
    tmp_path_factory: pytest.TempPathFactory, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    vb = VirtualBoard(tmp_path_factory.mktemp("emb"), "embboard", embedded=True).start()
    try:
        board = make_board(vb, tmp_path)
        for k in range(2):
            assert check(board, builder, tmp_path / f"run{k}").passed
        builds = [c for c in vb.flasher_calls() if c["action"] == "build"]
        flashes = [c for c in vb.flasher_calls() if c["action"] == "flash"]
        assert len(builds) == 1  # same program and inputs: the firmware is reused
        assert [f["address"] for f in flashes] == ["0x00000000", "0x00000000"]
    finally:
        vb.stop()


def test_a_hang_ends_at_the_runs_own_timeout_with_the_log(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path)
    vboard.set_mode("hang")
    with pytest.raises(RunTimeout, match="did not finish within") as info:
        check(board, builder, tmp_path / "run", timeout_s=5)
    # The capture's own wall time, from the message: at least the 5 s given to
    # this run, and well short of the board file's run_timeout_s (20 s), which
    # would mean the run's timeout was ignored. The 15 s margin is for a busy
    # machine, where the capture loop (50 ms reads) may be scheduled late.
    found = re.search(r"did not finish within ([0-9.]+) s", str(info.value))
    assert found is not None
    assert 5 <= float(found.group(1)) < 20
    assert "uart.log" in str(info.value)
    assert "Starting running" in str(info.value)
    # the next run on the same board is fine again
    assert check(board, builder, tmp_path / "after").passed


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("hardfault", "CPU hard fault"),
        ("crash", "runner error or fatal log line"),
    ],
)
def test_faults_end_the_run_at_once_as_crashes_with_the_log(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path, mode: str, message: str
) -> None:
    board = make_board(vboard, tmp_path)
    check(board, builder, tmp_path / "warm")  # the program is built: time the run alone
    vboard.set_mode(mode)
    started = time.monotonic()
    with pytest.raises(RunCrashed, match=message) as info:
        check(board, builder, tmp_path / "run", timeout_s=60)
    # The fault ends the capture (0.5 s after the last line), not the 60 s
    # timeout: the class alone cannot tell, since a capture that timed out
    # with a fault in it is a crash too. Seen: 0.4-0.5 s in all (flash, reset,
    # capture) at a load average of 4.5 on 2 cores; half the timeout leaves a
    # busier machine a wide margin.
    assert time.monotonic() - started < 30
    assert "uart.log" in str(info.value)
    assert "Starting running" in str(info.value)
    # the next run on the same board is fine again
    assert check(board, builder, tmp_path / "after").passed


def test_noise_on_the_line_is_ignored(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path)
    vboard.set_mode("noise")
    result = check(board, builder, tmp_path / "run")
    assert result.passed
    assert result.run.facts["attempts"] == 1
    assert b"\xff\x00\xfe" in (tmp_path / "run" / "uart.log").read_bytes()


def test_output_of_an_earlier_run_is_never_taken(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path)
    before = check(board, builder, tmp_path / "a", model=Tiny(bias=5.0))
    vboard.set_mode("stale")  # the old run is replayed while the new program is flashed
    after = check(board, builder, tmp_path / "b", model=Tiny(bias=0.0))
    assert after.passed, after.table()
    assert float(np.max(after.run.outputs[0])) <= 1.0 < float(np.min(before.run.outputs[0]))
    log = (tmp_path / "b" / "uart.log").read_bytes()
    assert log.count(b"PTE @ 0x70000000") == 1  # the replay was drained before the reset


def test_dropped_bytes_are_retried_then_an_infrastructure_failure(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path, retries=1)
    vboard.set_mode("drop", count=1)
    once = check(board, builder, tmp_path / "once")
    assert once.passed
    assert once.run.facts["attempts"] == 2
    vboard.set_mode("drop", count=2)
    with pytest.raises(InfrastructureError, match="link corrupted: ETDump block") as info:
        check(board, builder, tmp_path / "twice")
    assert "failed on every attempt (2)" in str(info.value)


def test_a_port_that_vanishes_and_returns_is_retried(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path, reconnect_s=5)
    vboard.set_mode("disconnect", seconds=1.0)
    result = check(board, builder, tmp_path / "run")
    assert result.passed
    assert result.run.facts["attempts"] == 2
    assert b"=== et-hil: attempt 2: port lost" in (tmp_path / "run" / "uart.log").read_bytes()


def test_a_port_gone_for_good_is_an_infrastructure_failure(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path, reconnect_s=1)
    vboard.set_mode("vanish", seconds=6.0)
    with pytest.raises(InfrastructureError, match="did not come back within 1 s"):
        check(board, builder, tmp_path / "run")
    # The harness gave up while the port was still gone (after its 1 s
    # reconnect limit), not once the board was back 6 s after it vanished:
    # an order of events, with ~5 s for a busy machine to be late in.
    assert not vboard.link.exists()
    vboard.ready()  # the port comes back: the same board object works again
    assert check(board, builder, tmp_path / "after").passed


def test_a_failing_flasher_names_the_board_and_command(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    board = make_board(vboard, tmp_path)
    (vboard.folder / "flasher_fails").write_text("1")
    try:
        with pytest.raises(
            InfrastructureError, match=r"board 'vboard': the flash command exited with status 3"
        ) as info:
            check(board, builder, tmp_path / "run")
        assert "no probe found" in str(info.value)
    finally:
        (vboard.folder / "flasher_fails").unlink()


def test_unplugged_board_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        'name = "gone"\nkind = "serial"\ntarget = "portable"\n'
        '[serial]\nport = "/dev/serial/by-id/usb-nothing-here"\n'
        "[serial.firmware]\npte_address = 0x70000000\n"
        '[serial.flash]\nmethod = "command"\ncommand = ["true", "{image}"]\n'
    )
    availability = SerialBoard(load_board_file(path), tmp_path).availability()
    assert not availability.ok
    assert "/dev/serial/by-id/usb-nothing-here is not present" in availability.reason
    assert "by-id" in availability.hint


def test_wrong_pte_address_in_the_board_file_is_named(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    text = vboard.board_toml().replace("pte_address = 0x70000000", "pte_address = 0x60000000")
    path = tmp_path / "wrong.toml"
    path.write_text(text)
    board = SerialBoard(load_board_file(path), tmp_path / "logs")
    # the double's firmware reads 0x70000000, where the flash is now erased
    (vboard.folder / "flash" / "0x70000000.bin").unlink(missing_ok=True)
    with pytest.raises(
        ConfigError,
        match=r"reads its program at 0x70000000, the board file writes it at "
        r"\[serial.firmware\] pte_address = 0x60000000",
    ):
        check(board, builder, tmp_path / "run")
    flashes = [c for c in vboard.flasher_calls() if c["action"] == "flash"]
    assert flashes[-1]["address"] == "0x60000000"


def test_bundle_programs_on_firmware_without_bundleio_are_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    vb = VirtualBoard(tmp_path_factory.mktemp("nobundle"), "nobundle", bundle_io=False).start()
    try:
        text = vb.board_toml().replace("bundle_io = false", "bundle_io = true")
        path = tmp_path / "liar.toml"
        path.write_text(text)
        board = SerialBoard(load_board_file(path), tmp_path / "logs")
        with pytest.raises(
            ConfigError, match=r"cannot load a BundleIO program .* -DET_BUNDLE_IO=ON"
        ):
            check(board, builder, tmp_path / "run")
    finally:
        vb.stop()


def test_outputs_come_exact_from_the_etdump_when_the_firmware_dumps_them(
    tmp_path_factory: pytest.TempPathFactory, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    vb = VirtualBoard(tmp_path_factory.mktemp("dump"), "dumpboard", dump_outputs=True).start()
    try:
        board = make_board(vb, tmp_path)
        result = check(board, builder, tmp_path / "run", quantize=None)
        assert result.passed, result.table()
        assert result.run.facts["outputs_from"] == "etdump"
        assert result.run.debug_buffer_path is not None
        out = result.run.outputs[0]
        # bit-exact float32, not the UART's six decimals: some values carry more digits
        assert np.any(np.abs(out * 1e6 - np.round(out * 1e6)) > 1e-3)
        np.testing.assert_allclose(out, Tiny()(*x()).detach().numpy(), atol=1e-6, rtol=0)
    finally:
        vb.stop()


def test_address_mode_firmware_is_flashed_once_per_unit(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    firmware = tmp_path / "runner.bin"
    firmware.write_bytes(b"address-mode runner image v1")
    text = vboard.board_toml().replace(
        "pte_address = 0x70000000",
        f'pte_address = 0x70000000\nimage = "{firmware}"\nimage_address = 0x10000000',
    )
    path = tmp_path / "fw.toml"
    path.write_text(text)
    board = SerialBoard(load_board_file(path), tmp_path / "logs")
    before = len(vboard.flasher_calls())
    assert check(board, builder, tmp_path / "a").passed
    assert check(board, builder, tmp_path / "b").passed
    flashes = [c for c in vboard.flasher_calls()[before:] if c["action"] == "flash"]
    assert [f["address"] for f in flashes] == ["0x10000000", "0x70000000", "0x70000000"]
    firmware.write_bytes(b"address-mode runner image v2")  # a new build is flashed again
    assert check(board, builder, tmp_path / "c").passed
    flashes = [c for c in vboard.flasher_calls()[before:] if c["action"] == "flash"]
    assert [f["address"] for f in flashes][3:] == ["0x10000000", "0x70000000"]


def test_the_runners_own_bundleio_failure_is_recorded_not_a_crash(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    """Upstream main() traps after a BundleIO mismatch (hard fault, exit code 1);
    the harness records the verdict and judges the outputs with its own tolerances."""
    board = make_board(vboard, tmp_path)
    vboard.set_mode("bundle_fail")
    result = check(board, builder, tmp_path / "run")
    assert result.passed, result.table()
    assert result.run.facts["bundleio"][0]["result"] == "FAIL"
    log = (tmp_path / "run" / "uart.log").read_bytes()
    assert b"Problem running model" in log
    assert b"Application exit code: 1." in log


def test_the_debug_pass_finds_a_faulty_layer_through_the_uart(
    vboard: VirtualBoard, builder: Builder, tmp_path: Path, locks: Path
) -> None:
    """Serial boards get STATS taps (13 numbers per layer over the UART), in a bundle
    whose expected outputs include every tap's statistics."""
    from et_hil.programs.taps import Fault
    from et_hil.verdict.debug import debug_model

    class Three(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a = torch.nn.Linear(8, 16)
            self.b = torch.nn.Linear(16, 16)
            self.c = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(torch.relu(self.b(torch.relu(self.a(x)))))

    board = make_board(vboard, tmp_path)
    clean = debug_model(board=board, builder=builder, model=Three(), inputs=x(),
                        run_dir=tmp_path / "clean", quantize="int8")  # fmt: skip
    assert clean.reducer == "STATS"
    assert clean.first_divergent is None, clean.table()
    assert {r.where for r in clean.rows} == {"CPU (STATS)"}
    # rows: the input, relu(a(x)), relu(b(.)), c(.); the fault goes into b's weights
    assert [r.op for r in clean.rows] == ["input", "aten.relu", "aten.relu", "aten.linear"]
    target = clean.rows[2].node
    faulty = debug_model(board=board, builder=builder, model=Three(), inputs=x(),
                         run_dir=tmp_path / "faulty", quantize="int8",
                         fault=Fault(target, factor=2.0))  # fmt: skip
    assert faulty.first_divergent is not None
    assert faulty.first_divergent.node == target, faulty.table()
    assert (tmp_path / "faulty" / "probe1" / "uart.log").exists()  # it ran on the board
