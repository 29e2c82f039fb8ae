"""Tests of harness.runner.failures: one failure class means one error on every board."""

from __future__ import annotations

from harness.errors import InfrastructureError, RunCrashed, RunTimeout
from harness.runner.failures import failure_error
from harness.runner.log import LogFinding, find_failures


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
