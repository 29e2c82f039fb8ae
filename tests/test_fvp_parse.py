"""Tests of et_hil.executor_runner.log (failure lines, the PMU report, the ETDump block)
and et_hil.boards.fvp.platform (the FVP command).

The log lines are written after the formats of ExecuTorch's
examples/arm/executor_runner/arm_executor_runner.cpp, the command after
backends/arm/test/runner_utils.py (``run_corstone``): every ``ET_LOG``
line is ``"%c [executorch:%s:%lu %s()] %s"`` and the ETDump block is ``#[RUN THIS]`` ...
``#[END]`` with one ``echo "<base64>" | base64 -d >file`` line per file.
"""

from __future__ import annotations

import base64
import re

import pytest

from et_hil.boards.fvp.platform import (
    load_platform,
    render_command,
    semihosting_command_line,
)
from et_hil.errors import ConfigError
from et_hil.executor_runner.log import (
    EtdumpBlockError,
    find_failures,
    parse_etdump_block,
    parse_pmu,
)

# ---------------------------------------------------------------- find_failures

CRASH_LINES = [
    "E [executorch:method.cpp:822 init()] Missing operator: [0] foo.out",
    "F [executorch:arm_executor_runner.cpp:1415 main()] Not right number of parameters!",
    "F [executorch:arm_executor_runner.cpp:1548 main()] In function main(), assert failed "
    "(model_ok == true): Problem running model",
    "E [executorch:arm_executor_runner.cpp:497 prepare_input_tensors()] "
    "input size (16) and tensor size (32) mismatch!",
    # Older runners print no function name.
    "E [executorch:arm_executor_runner.cpp:412] Loading of method forward failed",
    "Hard fault. irq=-13, pc=0x10001234, lr=0x10005679, xpsr=0x61000000, sp=0x3007ff00",
    "Assertion failed: (x != NULL), function foo, file bar.c, line 12.",
    "[critical] something the FVP could not survive",
]

# Ordinary lines that a bare "starts with E or F" check misreads as failures.
HARMLESS_LINES = [
    "Ethos-U PMU report:",
    "E2E latency 3 ms",
    "F1 score 0.9",
    "Failed to initialize timing-adapter #1",  # --fast warning, ignored by failures.toml
    "Timing adapter has no effect if option --fast/-F is enabled",  # likewise
    "I [executorch:arm_executor_runner.cpp:1550 main()] Program complete, exiting.",
    "I [executorch:arm_perf_monitor.cpp:171 StopMeasurements()] ethosu_pmu_cntr3 : 503",
    "I [executorch:arm_executor_runner.cpp:868 runner_init()] Loading of method forward "
    "failed with status 0x14",  # Info level upstream: not a failure line by itself
    "Output[0][0]: (float) 0.123456",
    "E: something harmless printed by a model",
    "F  FooBar",
    "Error rate: 0.1",  # not the FVP's "Error: " start-up message
    "Info: /OSCI/SystemC: Simulation stopped by user.",
    "",
]


def _classes(log: str) -> list[str]:
    return [f.failure_class for f in find_failures(log)]


@pytest.mark.parametrize("line", CRASH_LINES)
def test_crash_lines(line: str) -> None:
    (finding,) = find_failures(line)
    assert finding.failure_class == "crash"
    assert finding.line == line
    assert finding.what


def test_timeout_line() -> None:
    (finding,) = find_failures(
        "I [executorch:arm_executor_runner.cpp:1328 run_model()] Starting running 1 inferences...\n"
        "Info: Simulation is stopping. Reason: CPU time has been exceeded.\n"
    )
    assert finding.failure_class == "timeout"
    assert finding.line == "Info: Simulation is stopping. Reason: CPU time has been exceeded."


@pytest.mark.parametrize(
    "line",
    [
        "Warning: license checkout error for feature FVP_Corstone_SSE-300",
        "FlexNet licence request denied",
        "Error: FVP_Corstone_SSE-300_Ethos-U55: Unknown parameter 'ethosu.num_mac'",
        "Error: cannot load shared library libfoo.so",
    ],
)
def test_infrastructure_lines(line: str) -> None:
    assert _classes(line) == ["infrastructure_error"]


@pytest.mark.parametrize("line", HARMLESS_LINES)
def test_harmless_lines_are_not_findings(line: str) -> None:
    assert _classes(line) == []


def test_findings_in_order_in_a_whole_log() -> None:
    log = "\n".join(
        [
            "Failed to initialize timing-adapter #1",
            "I [executorch:arm_executor_runner.cpp:1530 main()] PTE @ 0x70000000 [----ET12]",
            "Ethos-U PMU report:",
            CRASH_LINES[0],
            "E2E latency 3 ms",
            "Hard fault. irq=-13, pc=0x10001234, lr=0x0, xpsr=0x0, sp=0x0",
            "Info: Simulation is stopping. Reason: CPU time has been exceeded.",
        ]
    )
    findings = find_failures(log)
    assert [f.failure_class for f in findings] == ["crash", "crash", "timeout"]
    assert findings[0].line == CRASH_LINES[0]
    assert findings[1].line.startswith("Hard fault.")


def test_crlf_and_cr_line_endings() -> None:
    lines = [
        "I [executorch:arm_executor_runner.cpp:1550 main()] Program complete, exiting.",
        CRASH_LINES[1],
        "F1 score 0.9",
        "Info: Simulation is stopping. Reason: CPU time has been exceeded.",
    ]
    for newline in ("\r\n", "\r"):
        findings = find_failures(newline.join(lines) + newline)
        assert [f.failure_class for f in findings] == ["crash", "timeout"]
        # The line is reported without its carriage return.
        assert [f.line for f in findings] == [lines[1], lines[3]]


def test_one_finding_per_line() -> None:
    # A line matching several patterns is reported once, by the first pattern.
    line = "E [executorch:foo.cpp:1 bar()] Assertion failed after Hard fault"
    assert _classes(line) == ["crash"]


# Upstream's failure checks, copied from the reference (section 2):
# backends/arm/test/runner_utils.py, applied to the FVP's stdout ...
UPSTREAM_RUNNER_UTILS = re.compile(
    r"(^[EF][: ].*$)|(^.*Hard fault.*$)|(^.*Assertion.*$)", re.MULTILINE
)
# ... and backends/arm/scripts/run_fvp.sh (grep -E), after it drops the --fast timing-adapter lines.
UPSTREAM_RUN_FVP = re.compile(
    r"^(F|E|\[critical\]|Hard fault.|Info: Simulation is stopping. Reason: CPU time has been "
    r"exceeded.).*$"
)
RUN_FVP_IGNORED = ("Failed to initialize timing-adapter", "Timing adapter has no effect")


def test_precision_compared_with_upstream_regexes() -> None:
    # runner_utils' "^[EF][: ]" fires on any line starting "E:", "E ", "F:" or "F ".
    for line in ["E: something harmless printed by a model", "F  FooBar"]:
        assert UPSTREAM_RUNNER_UTILS.search(line), line
        assert _classes(line) == [], line
    # run_fvp.sh's "^(F|E|...)" fires on any line starting with E or F at all.
    for line in ["Ethos-U PMU report:", "E2E latency 3 ms", "F1 score 0.9"]:
        assert not UPSTREAM_RUNNER_UTILS.search(line), line  # runner_utils is right here
        assert UPSTREAM_RUN_FVP.match(line), line
        assert _classes(line) == [], line
    # Both upstream checks and ours agree on the runner's real error lines.
    for line in CRASH_LINES[:5]:
        assert UPSTREAM_RUNNER_UTILS.search(line), line
        assert UPSTREAM_RUN_FVP.match(line), line
        assert _classes(line) == ["crash"], line
    # The --fast warnings: run_fvp.sh filters them before its grep, and so do we.
    for line in HARMLESS_LINES[3:5]:
        assert any(text in line for text in RUN_FVP_IGNORED)
        assert _classes(line) == []


# ---------------------------------------------------------------- parse_pmu

PERF = "I [executorch:arm_perf_monitor.cpp:{line} StopMeasurements()] "

# Values are hand-written (not from a real run); the line formats are the runner's
# (reference section 4, item 5), each with the ET_LOG prefix the runner adds.
PMU_LOG = "\n".join(
    [
        "I [executorch:arm_executor_runner.cpp:1338 run_model()] 1 inferences finished",
        PERF.format(line=141) + "NPU Inferences : 1",
        PERF.format(line=143) + "NPU delegations: 1 (1.00 per inference)",
        PERF.format(line=146) + "Profiler report, CPU cycles per operator:",
        PERF.format(line=158) + "ethos-u : cycle_cnt : 1234 cycles (1234.00 per inference)",
        PERF.format(line=170) + "Operator(s) total: 1300 CPU cycles (1300.00 per inference)",
        PERF.format(line=176) + "Inference runtime: 5000 CPU cycles total (5000.00 per inference)",
        PERF.format(line=182) + "NOTE: CPU cycle values and ratio calculations require FPGA "
        "and identical CPU/NPU frequency",
        PERF.format(line=189) + "Inference CPU ratio: 75.32 %",
        PERF.format(line=194) + "Inference NPU ratio: 24.68 %",
        PERF.format(line=203) + "cpu_wait_for_npu_cntr : 1100 CPU cycles (1100.00 per inference)",
        PERF.format(line=209) + "Ethos-U PMU report:",
        # "% llu": the space flag gives the value a leading space.
        PERF.format(line=210) + "ethosu_pmu_cycle_cntr :  4321 (4321.00 per inference)",
        PERF.format(line=217) + "ethosu_pmu_cntr0 : 10 (10.00 per inference)",
        PERF.format(line=217) + "ethosu_pmu_cntr1 : 20 (20.00 per inference)",
        PERF.format(line=217) + "ethosu_pmu_cntr2 : 30 (30.00 per inference)",
        PERF.format(line=217) + "ethosu_pmu_cntr3 : 40 (40.00 per inference)",
        PERF.format(line=225) + "Ethos-U PMU Events:[ETHOSU_PMU_AXI0_RD_DATA_BEAT_RECEIVED, "
        "ETHOSU_PMU_AXI1_RD_DATA_BEAT_RECEIVED, ETHOSU_PMU_AXI0_WR_DATA_BEAT_WRITTEN, "
        "ETHOSU_PMU_NPU_IDLE]",
        "I [executorch:arm_executor_runner.cpp:1355 run_model()] Model run: 1",
    ]
)

PMU_EXPECTED = {
    "npu_active_cycles": 4321,
    "cpu_cycles": 5000,
    "cpu_cycles_in_npu_delegate": 1234,
    "counters": {
        "ETHOSU_PMU_AXI0_RD_DATA_BEAT_RECEIVED": 10,
        "ETHOSU_PMU_AXI1_RD_DATA_BEAT_RECEIVED": 20,
        "ETHOSU_PMU_AXI0_WR_DATA_BEAT_WRITTEN": 30,
        "ETHOSU_PMU_NPU_IDLE": 40,
    },
}


def test_parse_pmu() -> None:
    assert parse_pmu(PMU_LOG) == PMU_EXPECTED


def test_parse_pmu_crlf() -> None:
    assert parse_pmu(PMU_LOG.replace("\n", "\r\n")) == PMU_EXPECTED


def test_the_pmu_report_is_not_a_failure() -> None:
    assert _classes(PMU_LOG) == []


def test_parse_pmu_without_events_line_names_counters_by_index() -> None:
    log = "\n".join(line for line in PMU_LOG.split("\n") if "PMU Events" not in line)
    assert parse_pmu(log)["counters"] == {"cntr0": 10, "cntr1": 20, "cntr2": 30, "cntr3": 40}


def test_parse_pmu_without_report() -> None:
    # A Cortex-M-only build prints no PMU report.
    assert parse_pmu("I [executorch:arm_executor_runner.cpp:1550 main()] Program complete") == {}
    assert parse_pmu("") == {}


# ---------------------------------------------------------------- parse_etdump_block

ETDUMP = bytes(range(256)) + b"\x00ETDP"
DEBUG_BUFFER = b"\x01\x02\x03 debug \xff"


def _block(files: dict[str, bytes], newline: str = "\n", end: bool = True) -> str:
    lines = [
        "I [executorch:arm_executor_runner.cpp:1160 write_etdump()] [base64] buffer size: 261",
        "#[RUN THIS]",
    ]
    for name, data in files.items():
        lines.append(f"# Writing {name} [base64]")
        lines.append(f'echo "{base64.b64encode(data).decode()}" | base64 -d >{name}')
    lines.append("# Generate cpu cycle table with:")
    lines.append(
        "python3 -m devtools.inspector.inspector_cli --etdump_path etdump.bin "
        "--source_time_scale cycles --target_time_scale cycles"
    )
    if end:
        lines.append("#[END]")
    lines.append("I [executorch:arm_executor_runner.cpp:1550 main()] Program complete, exiting.")
    return newline.join(lines) + newline


def test_etdump_block_round_trip() -> None:
    log = _block({"debug_buffer.bin": DEBUG_BUFFER, "etdump.bin": ETDUMP})
    assert parse_etdump_block(log) == {"etdump.bin": ETDUMP, "debug_buffer.bin": DEBUG_BUFFER}


def test_etdump_block_crlf() -> None:
    log = _block({"debug_buffer.bin": DEBUG_BUFFER, "etdump.bin": ETDUMP}, newline="\r\n")
    assert parse_etdump_block(log) == {"etdump.bin": ETDUMP, "debug_buffer.bin": DEBUG_BUFFER}


def test_etdump_block_without_debug_buffer() -> None:
    assert parse_etdump_block(_block({"etdump.bin": ETDUMP})) == {"etdump.bin": ETDUMP}


def test_etdump_block_tolerates_space_after_redirect() -> None:
    payload = base64.b64encode(ETDUMP).decode()
    log = f'#[RUN THIS]\necho "{payload}" | base64 -d > etdump.bin  \n#[END]\n'
    assert parse_etdump_block(log) == {"etdump.bin": ETDUMP}


def test_no_etdump_block() -> None:
    assert parse_etdump_block("") == {}
    assert parse_etdump_block(PMU_LOG) == {}


def test_etdump_block_without_end() -> None:
    log = _block({"etdump.bin": ETDUMP}, end=False)
    with pytest.raises(EtdumpBlockError, match="never ends"):
        parse_etdump_block(log)


def test_etdump_block_with_invalid_base64() -> None:
    log = '#[RUN THIS]\necho "not*base64!" | base64 -d >etdump.bin\n#[END]\n'
    with pytest.raises(EtdumpBlockError, match=r"etdump\.bin: invalid base64"):
        parse_etdump_block(log)


def test_etdump_block_with_truncated_base64() -> None:
    payload = base64.b64encode(ETDUMP).decode()[:-3]  # cut mid-quantum, as a lost UART tail would
    log = f'#[RUN THIS]\necho "{payload}" | base64 -d >etdump.bin\n#[END]\n'
    with pytest.raises(EtdumpBlockError):
        parse_etdump_block(log)


def test_etdump_block_without_etdump_line() -> None:
    log = _block({"debug_buffer.bin": DEBUG_BUFFER})
    with pytest.raises(EtdumpBlockError, match=r"no etdump\.bin"):
        parse_etdump_block(log)


def test_etdump_block_error_is_a_value_error() -> None:
    assert issubclass(EtdumpBlockError, ValueError)


# ---------------------------------------------------------------- render_command

PLATFORMS = ["corstone300-u55", "corstone300-u65", "corstone320"]
CMD_LINE = "executor_runner -m program.pte -o out -i i0.bin -i i1.bin"


def _params(argv: list[str]) -> list[str]:
    """The ``-C`` values of an FVP argv, in order."""
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-C"]


def _render(platform_name: str, **kwargs: object) -> list[str]:
    platform = load_platform(platform_name)
    args: dict[str, object] = {
        "executable": platform.executable,
        "elf": "/elfs/arm_executor_runner",
        "num_macs": platform.default_num_macs,
        "timeout_s": 600,
        "semihosting_cwd": "/tmp/run0",
        "input_count": 2,
    }
    args.update(kwargs)
    return render_command(platform, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PLATFORMS)
def test_semihosting_command(name: str) -> None:
    platform = load_platform(name)
    argv = _render(name, num_macs=256, timeout_s=42)
    assert argv[0] == platform.executable
    assert argv[-4:] == ["-a", "/elfs/arm_executor_runner", "--timelimit", "42"]
    params = _params(argv)
    assert len(argv) == 1 + 2 * len(params) + 4
    assert params[0] == f"{platform.num_macs_param}=256"
    prefix = platform.semihosting_prefix
    assert params[-1] == f"{prefix}semihosting-cmd_line='{CMD_LINE}'"
    assert params[-2] == f"{platform.npu_extra_args_param}='--fast'"
    assert params[-3] == f"{prefix}semihosting-cwd=/tmp/run0"
    for p in ("semihosting-enable=1", "semihosting-stack_base=0", "semihosting-heap_limit=0"):
        assert prefix + p in params
    assert [p for p in params if "--fast" in p] == [params[-2]]


@pytest.mark.parametrize("name", PLATFORMS)
def test_semihosting_command_without_fast(name: str) -> None:
    params = _params(_render(name, fast=False))
    assert not any("--fast" in p for p in params)
    assert not any("extra_args" in p for p in params)
    assert params[-1].endswith(f"semihosting-cmd_line='{CMD_LINE}'")


def test_corstone300_semihosting_command_exactly() -> None:
    # Upstream's runner_utils.run_corstone for corstone-300 (reference section 2b).
    assert _render("corstone300-u55", input_count=1) == [
        "FVP_Corstone_SSE-300_Ethos-U55",
        *("-C", "ethosu.num_macs=128"),
        *("-C", "mps3_board.visualisation.disable-visualisation=1"),
        *("-C", "mps3_board.telnetterminal0.start_telnet=0"),
        *("-C", "mps3_board.uart0.out_file='-'"),
        *("-C", "cpu0.semihosting-enable=1"),
        *("-C", "cpu0.semihosting-stack_base=0"),
        *("-C", "cpu0.semihosting-heap_limit=0"),
        *("-C", "cpu0.semihosting-cwd=/tmp/run0"),
        *("-C", "ethosu.extra_args='--fast'"),
        *("-C", "cpu0.semihosting-cmd_line='executor_runner -m program.pte -o out -i i0.bin'"),
        *("-a", "/elfs/arm_executor_runner", "--timelimit", "600"),
    ]
    # No shutdown_on_eot in semihosting mode on SSE-300: the runner's _exit stops the FVP.
    assert not any("shutdown_on_eot" in p for p in _params(_render("corstone300-u55")))


def test_corstone320_semihosting_command_exactly() -> None:
    # Upstream's runner_utils.run_corstone for corstone-320 (reference section 2b).
    sub = "mps4_board.subsystem."
    assert _params(_render("corstone320", input_count=0)) == [
        f"{sub}ethosu.num_macs=128",
        "mps4_board.visualisation.disable-visualisation=1",
        "vis_hdlcd.disable_visualisation=1",
        "mps4_board.telnetterminal0.start_telnet=0",
        "mps4_board.uart0.out_file='-'",
        "mps4_board.uart0.unbuffered_output=1",
        "mps4_board.uart0.shutdown_on_eot=1",
        f"{sub}cpu0.semihosting-enable=1",
        f"{sub}cpu0.semihosting-stack_base=0",
        f"{sub}cpu0.semihosting-heap_limit=0",
        f"{sub}cpu0.semihosting-cwd=/tmp/run0",
        f"{sub}ethosu.extra_args='--fast'",
        # a program without inputs goes as a bundle, the line padded to the runner's 7 arguments
        f"{sub}cpu0.semihosting-cmd_line='executor_runner -m program.bpte -o out -o out'",
    ]


@pytest.mark.parametrize("name", PLATFORMS)
def test_uart_command(name: str) -> None:
    platform = load_platform(name)
    argv = _render(name, semihosting_cwd=None, input_count=0, timeout_s=7)
    params = _params(argv)
    assert argv[-4:] == ["-a", "/elfs/arm_executor_runner", "--timelimit", "7"]
    assert not any("semihosting" in p for p in params)
    for extra in platform.uart_mode_extra:
        assert extra in params
    assert params[-1] == f"{platform.npu_extra_args_param}='--fast'"
    # Every UART command stops on the runner's EOT byte.
    assert sum("uart0.shutdown_on_eot=1" in p for p in params) == 1


def test_corstone300_uart_command_exactly() -> None:
    # Upstream's run_fvp.sh for Ethos-U55 (reference section 2a), with --fast.
    assert _params(_render("corstone300-u55", semihosting_cwd=None, num_macs=64)) == [
        "ethosu.num_macs=64",
        "mps3_board.visualisation.disable-visualisation=1",
        "mps3_board.telnetterminal0.start_telnet=0",
        "mps3_board.uart0.out_file='-'",
        "mps3_board.uart0.shutdown_on_eot=1",
        "ethosu.extra_args='--fast'",
    ]
    assert load_platform("corstone300-u55").uart_mode_extra == (
        "mps3_board.uart0.shutdown_on_eot=1",
    )


def test_semihosting_command_line() -> None:
    # The runner refuses fewer than 7 arguments and wants one -i per program input;
    # a program without inputs goes as a BundleIO program with "-o out" given twice.
    assert semihosting_command_line(0) == "executor_runner -m program.bpte -o out -o out"
    assert semihosting_command_line(1) == "executor_runner -m program.pte -o out -i i0.bin"
    assert semihosting_command_line(2) == CMD_LINE


@pytest.mark.parametrize("name", PLATFORMS)
def test_command_line_over_256_characters(name: str) -> None:
    assert len(semihosting_command_line(40)) > 256
    with pytest.raises(ConfigError, match="256") as excinfo:
        _render(name, input_count=40)
    assert name in str(excinfo.value)


def test_command_line_limit_boundary() -> None:
    # 37 characters, then 10 for each of i0..i9 and 11 for each of i10..: 20 inputs fit.
    assert len(semihosting_command_line(20)) == 247
    assert len(semihosting_command_line(21)) == 258
    _render("corstone300-u55", input_count=20)
    with pytest.raises(ConfigError, match="256"):
        _render("corstone300-u55", input_count=21)


def test_uart_mode_has_no_command_line_limit() -> None:
    # UART builds take no semihosting argv, so the input count does not matter.
    assert _render("corstone300-u55", semihosting_cwd=None, input_count=40)


# ---------------------------------------------------------------- load_platform


def test_load_platform_fields() -> None:
    u55 = load_platform("corstone300-u55")
    assert (u55.executable, u55.cpu, u55.default_num_macs) == (
        "FVP_Corstone_SSE-300_Ethos-U55",
        "cortex-m55",
        128,
    )
    assert load_platform("corstone300-u65").default_num_macs == 256
    c320 = load_platform("corstone320")
    assert (c320.cpu, c320.semihosting_cmdline_limit) == ("cortex-m85", 256)
    assert c320.uart_mode_extra == ()


def test_load_platform_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown FVP platform 'corstone999'") as excinfo:
        load_platform("corstone999")
    message = str(excinfo.value)
    for name in PLATFORMS:
        assert name in message
    assert "failures" not in message  # the failure patterns file is not a platform
