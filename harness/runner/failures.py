"""What a failure line of the runner's log means for the test: the error to raise.

``harness/runner/failures.toml`` gives each failure line a class;
:func:`harness.runner.log.find_failures` finds the lines. Every board that
reads a runner log (FVP, serial) turns them into an error here, so a class
means the same error on every board.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import InfrastructureError, RunCrashed, RunError, RunTimeout
from harness.runner.log import LogFinding

# failures.toml classes that are not a crash of the program; any other class is.
ERRORS: dict[str, type[RunError]] = {
    "timeout": RunTimeout,
    "infrastructure_error": InfrastructureError,
}
SHOWN_LINES = 3  # failure lines quoted in the message; the log tail has the rest


def failure_error(
    findings: Sequence[LogFinding],
    who: str,
    *,
    context: str = "",
    log_tail: str = "",
    log_path: str | None = None,
) -> RunError | None:
    """The error the log's failure lines mean, or ``None`` when there are none.

    The first line decides the class (later lines are often its consequences);
    the message quotes the first :data:`SHOWN_LINES` lines.

    Args:
        findings: the failure lines, in log order.
        who: the board (and unit) at fault, e.g. ``"board 'corstone320'"``.
        context: put after the finding's meaning, e.g. ``" (attempt 2)"``.
        log_tail: the end of the log, for the report.
        log_path: where the whole log is.

    Returns:
        ``RunTimeout``, ``InfrastructureError`` (retried by boards that retry
        launch failures) or ``RunCrashed``; the caller raises it.
    """
    if not findings:
        return None
    first = findings[0]
    lines = "; ".join(f.line for f in findings[:SHOWN_LINES])
    error = ERRORS.get(first.failure_class, RunCrashed)
    return error(f"{who}: {first.what}{context}: {lines}", log_tail=log_tail, log_path=log_path)
