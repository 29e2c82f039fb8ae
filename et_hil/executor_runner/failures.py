"""What a failure line of the runner's log means for the test: the error to raise.

``et_hil/executor_runner/failures.toml`` gives each failure line a class;
:func:`et_hil.executor_runner.log.find_failures` finds the lines. Every board that
reads a runner log (FVP, QEMU, serial) turns them into an error here, so a class
means the same error on every board.

``runner_config`` lines are limits of the firmware as it was built (an operator
missing from its kernel list, a full intermediate-output buffer): their message
says what the runner was built with, when that is known (:class:`RunnerFacts`),
and how to rebuild it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from et_hil.errors import (
    InfrastructureError,
    RunCrashed,
    RunError,
    RunnerConfigError,
    RunTimeout,
)
from et_hil.executor_runner.log import LogFinding

# failures.toml classes that are not a crash of the program; any other class is.
ERRORS: dict[str, type[RunError]] = {
    "timeout": RunTimeout,
    "infrastructure_error": InfrastructureError,
    "runner_config": RunnerConfigError,
}
SHOWN_LINES = 3  # failure lines quoted in the message; the log tail has the rest
SHOWN_OPERATORS = 12  # operators of the runner's list quoted in a missing-operator message


@dataclasses.dataclass(frozen=True)
class RunnerFacts:
    """What a runner ELF was built with, as far as the harness knows it.

    Attributes:
        elf: the ELF's path (for messages).
        operators: its kernel list (``None``: unknown; ``()`` with ``wide``: every
            portable and quantized kernel).
        wide: built with the wide kernel list rather than a selected one.
        intermediate_buffer_bytes: its ETDump intermediate-output buffer
            (``0``: none; ``None``: unknown).
        rebuild: the command that rebuilds it with other settings.
    """

    elf: str
    operators: tuple[str, ...] | None = None
    wide: bool = False
    intermediate_buffer_bytes: int | None = None
    rebuild: str = "rebuild the runner (docs/boards/qemu.md, 'Runner firmware')"


def _runner_advice(finding: LogFinding, runner: RunnerFacts | None) -> str:
    """What to do about a runner_config line, with what is known of the runner."""
    rebuild = runner.rebuild if runner else RunnerFacts(elf="").rebuild
    if finding.kind == "missing_operator":
        operator = finding.detail.get("operator", "?")
        text = f"operator '{operator}' is not in the runner's kernel list"
        if runner is not None and runner.operators is not None:
            listed = ", ".join(runner.operators[:SHOWN_OPERATORS])
            more = len(runner.operators) - SHOWN_OPERATORS
            listed += f", ... ({more} more)" if more > 0 else ""
            text += f" (runner {runner.elf} has: {listed or 'none'})"
        return f"{text}; {rebuild} with it, e.g. --ops {operator} or --ops wide"
    if finding.kind == "intermediate_buffer":
        size = runner.intermediate_buffer_bytes if runner else None
        held = f"{size} bytes" if size else "its size"
        return (
            f"the program's intermediate outputs do not fit the runner's ETDump debug buffer "
            f"({held}); {rebuild} with a larger --intermediate-buffer, or with "
            "--intermediate-buffer 0 for no intermediate outputs"
        )
    return rebuild


def failure_error(
    findings: Sequence[LogFinding],
    who: str,
    *,
    context: str = "",
    log_tail: str = "",
    log_path: str | None = None,
    runner: RunnerFacts | None = None,
) -> RunError | None:
    """The error the log's failure lines mean, or ``None`` when there are none.

    The first line decides the class (later lines are often its consequences),
    except that a runner-configuration line anywhere names the cause: the crash
    that follows a missing operator is its consequence. The message quotes the
    first :data:`SHOWN_LINES` lines.

    Args:
        findings: the failure lines, in log order.
        who: the board (and unit) at fault, e.g. ``"board 'corstone320'"``.
        context: put after the finding's meaning, e.g. ``" (attempt 2)"``.
        log_tail: the end of the log, for the report.
        log_path: where the whole log is.
        runner: what the runner was built with, for runner-configuration advice.

    Returns:
        ``RunTimeout``, ``InfrastructureError`` (retried by boards that retry
        launch failures), ``RunnerConfigError`` or ``RunCrashed``; the caller raises it.
    """
    if not findings:
        return None
    first = next((f for f in findings if f.failure_class == "runner_config"), findings[0])
    lines = "; ".join(f.line for f in findings[:SHOWN_LINES])
    error = ERRORS.get(first.failure_class, RunCrashed)
    message = f"{who}: {first.what}{context}: {lines}"
    if error is RunnerConfigError:
        message += f"\n{_runner_advice(first, runner)}"
    return error(message, log_tail=log_tail, log_path=log_path)
