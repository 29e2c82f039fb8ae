# ruff: noqa: E501  (the runner's log lines are quoted verbatim)
"""Tests of et_hil.executor_runner.failures: one failure class means one error on every board."""

from __future__ import annotations

from et_hil.errors import InfrastructureError, RunCrashed, RunnerConfigError, RunTimeout
from et_hil.executor_runner.failures import RunnerFacts, failure_error
from et_hil.executor_runner.log import LogFinding, find_failures


def test_no_findings_no_error() -> None:
    assert failure_error([], "board 'x'") is None


def test_class_picks_the_error_and_the_first_line_decides() -> None:
    timeout = LogFinding("timeout", "the run hit its time limit", "Info: Simulation is stopping")
    crash = LogFinding("crash", "the program crashed", "Hard fault.")
    infra = LogFinding("infrastructure_error", "the FVP has no licence", "licence error")
    assert type(failure_error([timeout, crash], "b")) is RunTimeout
    assert type(failure_error([infra, crash], "b")) is InfrastructureError
    assert type(failure_error([crash, timeout], "b")) is RunCrashed
    assert type(failure_error([LogFinding("new_class", "w", "l")], "b")) is RunCrashed


def test_message_quotes_three_lines_and_keeps_the_log() -> None:
    findings = [LogFinding("crash", "the program crashed", f"line {i}") for i in range(5)]
    error = failure_error(
        findings, "board 'c320'", context=" (attempt 2)", log_tail="tail", log_path="/r/fvp.log"
    )
    assert error is not None
    assert error.message == "board 'c320': the program crashed (attempt 2): line 0; line 1; line 2"
    assert (error.log_tail, error.log_path) == ("tail", "/r/fvp.log")


def test_real_runner_lines_through_find_failures() -> None:
    findings = find_failures("I [executorch:x] booting\nHard fault.\n")
    error = failure_error(findings, "board 'b'")
    assert isinstance(error, RunCrashed)
    assert "Hard fault." in error.message


# The genuine runner's lines (upstream arm_executor_runner on QEMU mps3-an547, as
# recorded in the firmware-on-qemu reference): a kernel missing from the runner's
# list, then the consequences the runner prints before it aborts.
MISSING_OPERATOR_LOG = """\
I [executorch:arm_executor_runner.cpp:700 runner_init()] Loading method forward
E [executorch:operator_registry.cpp:277 get_op_function_from_registry()] kernel 'aten::cumsum.out' not found.
E [executorch:method.cpp:1128 init()] There are 1 instructions don't have corresponding operator registered.
F [executorch:result.h:170 CheckOk()] In function CheckOk(), assert failed: hasValue_
"""
BUFFER_FULL_LOG = """\
E [executorch:buffer_data_sink.cpp:47 write()] Ran out of space to store intermediate outputs.
F [executorch:etdump_flatcc.cpp:576 log_evalue()] In function log_evalue(), assert failed (offset.ok())
"""


def test_a_missing_operator_is_a_runner_config_error_naming_it_and_the_list() -> None:
    runner = RunnerFacts(
        elf="/fw/runner.elf",
        operators=("aten::add.out", "aten::mul.out"),
        rebuild="rebuild with 'et-hil firmware build'",
    )
    error = failure_error(find_failures(MISSING_OPERATOR_LOG), "board 'qemu-m55'", runner=runner)
    assert isinstance(error, RunnerConfigError)
    assert error.failure_class == "runner_config"
    assert "kernel 'aten::cumsum.out' not found." in error.message  # the runner's own line
    assert "operator 'aten::cumsum.out' is not in the runner's kernel list" in error.message
    assert "runner /fw/runner.elf has: aten::add.out, aten::mul.out" in error.message
    assert "rebuild with 'et-hil firmware build' with it, e.g. --ops aten::cumsum.out" in (
        error.message
    )


def test_a_full_intermediate_buffer_names_its_size_and_the_way_out() -> None:
    runner = RunnerFacts(elf="/fw/runner.elf", intermediate_buffer_bytes=2097152)
    error = failure_error(find_failures(BUFFER_FULL_LOG), "board 'qemu-m55'", runner=runner)
    assert isinstance(error, RunnerConfigError)
    assert "Ran out of space to store intermediate outputs." in error.message
    assert "debug buffer (2097152 bytes)" in error.message
    assert "--intermediate-buffer 0 for no intermediate outputs" in error.message


def test_runner_config_advice_without_a_build_record() -> None:
    error = failure_error(find_failures(MISSING_OPERATOR_LOG), "board 'corstone300'")
    assert isinstance(error, RunnerConfigError)
    assert "runner /" not in error.message  # nothing known of the runner's list
    assert "(docs/boards/qemu.md, 'Runner firmware')" in error.message
