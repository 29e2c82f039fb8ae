"""Reading a UART runner log: which run is this run, how it ended, its outputs,
its BundleIO verdict. Logs are hand-written in the runner's format (ExecuTorch's
examples/arm/executor_runner/arm_executor_runner.cpp)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from et_hil.executor_runner.log import (
    RunState,
    RunWatch,
    UartOutputError,
    find_run,
    normalize_uart,
    parse_bundle_result,
    parse_uart_outputs,
    uart_failures,
)


def _log(message: str, level: str = "I", function: str = "main") -> str:
    return f"{level} [executorch:arm_executor_runner.cpp:1 {function}()] {message}\r\n"


START = _log("PTE @ 0x70000000 [----ET12]")
END = _log("Program complete, exiting.") + "I [executorch:arm_executor_runner.cpp:1554 main()] \x04"


def test_the_last_start_line_begins_the_run() -> None:
    earlier = START + _log("1 outputs: ") + "Output[0][0]: (float) 9.000000\r\n" + END
    boot = "boot ROM v1\r\n\xff\xfe garbage\r\n"
    ours = (
        START.replace("ET12", "BP08")
        + _log("1 outputs: ")
        + "Output[0][0]: (float) 1.500000\r\n"
        + END
    )
    run = find_run(normalize_uart((earlier + boot + ours).encode("latin-1")))
    assert run is not None
    assert (run.address, run.magic, run.end) == (0x70000000, "BP08", "eot")
    assert "9.000000" not in run.text


@pytest.mark.parametrize(
    ("tail", "end", "code"),
    [
        (END, "eot", None),
        (_log("Program complete, exiting."), "complete", None),
        ("Hard fault. irq=-13, pc=0x10001a2c\r\n", "fault", None),
        ("Hard fault. irq=-13\r\nApplication exit code: 1.\r\n", "exit", 1),
        (_log("In function run_model(), assert failed", "F", "run_model"), "fault", None),
        (_log("Starting running 1 inferences..."), None, None),
    ],
)
def test_how_a_run_ended(tail: str, end: str | None, code: int | None) -> None:
    run = find_run(normalize_uart((START + tail).encode()))
    assert run is not None
    assert (run.end, run.exit_code) == (end, code)


def test_no_run_without_a_start_line_or_a_fault() -> None:
    assert find_run("boot ROM v1\nnoise\n") is None
    fault = find_run("Hard fault. irq=-13\n")
    assert fault is not None
    assert fault.end == "fault"
    assert fault.magic is None


def test_outputs_in_dim_order_are_transposed_back() -> None:
    # A 1x2x2x2 output in channels-last memory order (0, 2, 3, 1): memory holds
    # [h][w][c], so element j=1 is (c=1, h=0, w=0) = logical index [0,1,0,0].
    spec = {"kind": "tensor", "dtype": "float32", "sizes": [1, 2, 2, 2], "dim_order": [0, 2, 3, 1]}
    values = [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]
    text = "".join(f"Output[0][{j}]: (float) {v:f}\n" for j, v in enumerate(values))
    (out,) = parse_uart_outputs(normalize_uart((_log("1 outputs: ") + text).encode()), [spec])
    np.testing.assert_array_equal(out.reshape(-1), np.arange(8, dtype=np.float32))


def test_int8_int32_and_bool_outputs() -> None:
    specs = [
        {"kind": "tensor", "dtype": "int8", "sizes": [2], "dim_order": [0]},
        {"kind": "tensor", "dtype": "int32", "sizes": [1], "dim_order": [0]},
        {"kind": "tensor", "dtype": "bool", "sizes": [2], "dim_order": [0]},
    ]
    text = (
        "Output[0][0]: (char) -128\nOutput[0][1]: (char) 127\n"
        "Output[1][0]: (int) 70000\n"
        "Output[2][0]: (bool) true  (0x1)\nOutput[2][1]: (bool) false (0x0)\n"
    )
    a, b, c = parse_uart_outputs(text, specs)
    assert a.dtype == np.int8
    assert a.tolist() == [-128, 127]
    assert b.tolist() == [70000]
    assert c.tolist() == [True, False]


def test_missing_values_mean_bytes_were_lost() -> None:
    spec = {"kind": "tensor", "dtype": "float32", "sizes": [3], "dim_order": [0]}
    with pytest.raises(UartOutputError, match="1 of 3 values missing") as info:
        parse_uart_outputs("Output[0][0]: (float) 1.0\nOutput[0][2]: (float) 1.0\n", [spec])
    assert info.value.lost


def test_dtypes_the_runner_cannot_print_are_a_config_problem() -> None:
    spec = {"kind": "tensor", "dtype": "int16", "sizes": [3], "dim_order": [0]}
    with pytest.raises(UartOutputError, match="ET_DUMP_OUTPUTS") as info:
        parse_uart_outputs("", [spec])
    assert not info.value.lost


def test_output_count_must_match_the_program() -> None:
    spec = {"kind": "tensor", "dtype": "float32", "sizes": [1], "dim_order": [0]}
    text = _log("2 outputs: ") + "Output[0][0]: (float) 1.0\r\n"
    with pytest.raises(UartOutputError, match="reports 2 outputs, the program has 1"):
        parse_uart_outputs(normalize_uart(text.encode()), [spec])


BUNDLE_FAIL = (
    "=== Error stats for testset 0 ===\n"
    " mean_absolute_error: 0.031250\n"
    " max_absolute_error:  0.062500\n"
    " mean_relative_error: 0.010000\n"
    " max_relative_error:  0.020000\n"
    + _log(
        "Model output don't match expected BundleIO bpte ref data. rtol=0.010000 atol=0.010000", "E"
    )
    + _log("TEST: BundleIO index[0] Test_result: FAIL", "E")
    + _log("Bundle verification failed with status 0x12", "E")
    + _log("In function main(), assert failed (model_ok == true): Problem running model", "F")
)


def test_the_abort_after_a_bundle_mismatch_is_not_a_crash() -> None:
    abort = "Hard fault. irq=-13, pc=0x10001a2c\r\nApplication exit code: 1.\r\n\x04"
    text = normalize_uart((START + BUNDLE_FAIL + abort).encode())
    assert uart_failures(text) == []
    run = find_run(text)
    assert run is not None
    assert run.exit_code == 1  # the board judges it with bundle_abort(), see serial.py


def test_a_hard_fault_without_a_bundle_mismatch_is_a_crash() -> None:
    text = START + "Hard fault. irq=-13\r\nApplication exit code: 1.\r\n"
    assert [f.what for f in uart_failures(text)] == ["CPU hard fault"]


def test_bundle_verdict_is_recorded_not_a_crash() -> None:
    (verdict,) = parse_bundle_result(BUNDLE_FAIL)
    assert verdict == {
        "testset": 0,
        "result": "FAIL",
        "mean_absolute_error": 0.03125,
        "max_absolute_error": 0.0625,
        "mean_relative_error": 0.01,
        "max_relative_error": 0.02,
    }
    assert uart_failures(START + BUNDLE_FAIL) == []


def test_other_errors_next_to_a_bundle_verdict_still_fail() -> None:
    missing = _log("Missing operator: [3] aten::foo.out", "E", "init")
    findings = uart_failures(START + missing + BUNDLE_FAIL)
    assert [f.line for f in findings] == [missing.strip()]


def test_firmware_that_prints_no_output_lines_is_a_config_problem() -> None:
    spec = {"kind": "tensor", "dtype": "float32", "sizes": [2], "dim_order": [0]}
    text = normalize_uart(_log("1 outputs: ").encode())
    with pytest.raises(UartOutputError, match="-DET_LOG_DUMP_OUTPUT=ON") as info:
        parse_uart_outputs(text, [spec])
    assert not info.value.lost


# ------------------------------------------------------------ RunWatch
# Pieces of captures for RunWatch, each a case find_run tells apart: reruns,
# faults of the old program before any start line (hard fault or F line, in
# either order), a start line mid-line, exit codes, CR-only line ends, EOT
# without a line end, and bytes that are not UTF-8.
_PIECES = [
    START.encode(),
    b"boot ROM v1\r\n",
    b"\xff\xfe garbage \xe2\x82\r\n",
    "caf\u00e9 \u20ac\r\n".encode(),
    b"Hard fault. irq=-13, pc=0x10001a2c\r\n",
    _log("In function run_model(), assert failed", "F", "run_model").encode(),
    b"Application exit code: 1.\r\n",
    b"Application exit code: -3.\r",
    _log("Program complete, exiting.").encode(),
    b"\x04",
    b"noise PTE @ 0x60000000 [----BP08] tail\n",
    b'echo "QUJD" | base64 -d >etdump.bin\r\n',
    b"Output[0][0]: (float) 1.500000\r\n",
]


def _state(raw: bytes) -> RunState:
    run = find_run(normalize_uart(raw))
    if run is None:
        return RunState(found=False, started=False, end=None, exit_code=None)
    return RunState(found=True, started=run.magic is not None, end=run.end, exit_code=run.exit_code)


@pytest.mark.parametrize("seed", range(40))
def test_run_watch_agrees_with_find_run_after_every_chunk(seed: int) -> None:
    # A capture of random pieces, cut into random chunks (a CRLF, a UTF-8
    # sequence or a start line split across reads): after every chunk the
    # watch must say what find_run says of the whole capture so far.
    rng = random.Random(seed)
    raw = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
    watch = RunWatch()
    pos = 0
    while pos < len(raw):
        chunk = raw[pos : pos + rng.choice([1, 2, 3, 7, 16, 64])]
        pos += len(chunk)
        watch.feed(chunk)
        assert watch.state() == _state(raw[:pos]), raw[:pos]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the F line comes first, but find_run takes the run from the hard fault
        (
            b"F [executorch:x.cpp:1 f()] died\r\nApplication exit code: 2.\r\n"
            b"Hard fault. irq=-13\r\n",
            RunState(found=True, started=False, end="fault", exit_code=None),
        ),
        # an EOT before the start line belongs to the earlier run
        (
            b"\x04" + START.encode() + _log("Program complete, exiting.").encode(),
            RunState(found=True, started=True, end="complete", exit_code=None),
        ),
        (b"boot\r\n", RunState(found=False, started=False, end=None, exit_code=None)),
    ],
)
def test_run_watch_hand_picked_cases(raw: bytes, expected: RunState) -> None:
    watch = RunWatch()
    watch.feed(raw)
    assert watch.state() == expected == _state(raw)
