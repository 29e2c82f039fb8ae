"""Errors raised by the harness, one class per pipeline stage, each with the
:class:`FailureClass` its test's record gets::

    HarnessError                 (infrastructure_error)
    ├── ConfigError              config_error: bad option, board file or marker (names it)
    ├── BuildError               build_error: export, quantization, lowering or serialization failed
    │   ├── DelegationError      cpu_fallback: full delegation required, ops were left to the CPU
    │   └── FitError             does_not_fit: the program does not fit the board's memories
    ├── BoardUnavailable         board_unavailable: the board cannot run here (with an install hint)
    └── RunError                 a run on a board produced no result (carries the log tail and path)
        ├── RunTimeout           timeout: the run exceeded its time limit and was stopped
        ├── RunCrashed           crash: the runtime aborted, faulted or exited badly
        ├── RunnerConfigError    runner_config: the firmware as built cannot run this program
                                 (operator missing from its kernel list, a buffer too small)
        └── InfrastructureError  infrastructure_error: the harness's own plumbing failed
                                 (worker launch, FVP licence, serial link, flash command, disk)

Four failure classes are not exceptions. Three are verdicts of a check
(:attr:`et_hil.verdict.check.CheckResult.failure_class`): ``degenerate`` (a
reference or the board's output is constant, or nearly: nothing to judge a board
by, see :mod:`et_hil.verdict.degenerate`), ``numeric_mismatch`` (the board's
outputs are beyond the limits against a reference, each
:class:`et_hil.verdict.compare.Comparison` with its limits) and
``quantization_quality`` (the board agrees with the fake-quant reference, but the
quantized model itself is further from float than the test allows). The fourth,
``test_error``, is an assertion or error of the test's own code.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any


class FailureClass(enum.StrEnum):
    """Why a test did not pass; written to every result record."""

    BUILD_ERROR = "build_error"
    BOARD_UNAVAILABLE = "board_unavailable"
    TIMEOUT = "timeout"
    CRASH = "crash"
    RUNNER_CONFIG = "runner_config"
    NUMERIC_MISMATCH = "numeric_mismatch"
    DEGENERATE = "degenerate"  # a reference or output carries nothing to judge by
    QUANTIZATION_QUALITY = "quantization_quality"  # the model's int8 loss, not the board's
    INFRASTRUCTURE = "infrastructure_error"
    CPU_FALLBACK = "cpu_fallback"
    DOES_NOT_FIT = "does_not_fit"
    CONFIG_ERROR = "config_error"
    TEST_ERROR = "test_error"
    REGRESSION = "regression"  # a figure got worse than the baseline allows
    QUARANTINE_EXPIRED = "quarantine_expired"


class HarnessError(Exception):
    """Root of all harness errors."""

    failure_class: FailureClass = FailureClass.INFRASTRUCTURE


class ConfigError(HarnessError):
    """A board file, option or marker is invalid; the message names it."""

    failure_class = FailureClass.CONFIG_ERROR


class BuildError(HarnessError):
    """Turning a model into a program failed; the message names the model and stage."""

    failure_class = FailureClass.BUILD_ERROR


class DelegationError(BuildError):
    """Full delegation was required, and ops were left to the CPU (named in the message)."""

    failure_class = FailureClass.CPU_FALLBACK


class FitError(BuildError):
    """The program needs more memory than the board has (numbers in the message)."""

    failure_class = FailureClass.DOES_NOT_FIT


class BoardUnavailable(HarnessError):
    """The board cannot run on this machine.

    Args:
        board: board name.
        reason: what is missing.
        hint: what to do about it.
    """

    failure_class = FailureClass.BOARD_UNAVAILABLE

    def __init__(self, board: str, reason: str, hint: str = "") -> None:
        self.board = board
        self.reason = reason
        self.hint = hint
        text = f"board '{board}' cannot run here: {reason}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class RunError(HarnessError):
    """A run on a board did not produce a result.

    Args:
        message: what happened.
        log_tail: the last lines of the board's log.
        log_path: where the whole log is, if kept.
    """

    failure_class = FailureClass.INFRASTRUCTURE
    # Set by the check pipeline when it left a repro folder for this failure.
    repro_dir: Path | None = None
    repro_error: str | None = None

    def __init__(self, message: str, *, log_tail: str = "", log_path: str | None = None) -> None:
        self.message = message
        self.log_tail = log_tail
        self.log_path = log_path
        # Where the failed run was, as a board knows it (the unit, the labgrid
        # place): recorded as the check's board_facts, so a flaky unit shows up.
        self.board_facts: dict[str, Any] = {}
        super().__init__(self._text())

    def _text(self) -> str:
        text = self.message
        if self.log_path:
            text += f"\nfull log: {self.log_path}"
        if self.log_tail:
            text += "\n--- log tail ---\n" + self.log_tail.rstrip()
        return text

    def kept_in(self, run_dir: Path, repro_dir: Path) -> None:
        """Point the message at the repro folder's copy of the run folder, which
        stays, instead of the run folder (pytest deletes old ``tmp_path`` folders)."""
        self.repro_dir = repro_dir
        if self.log_path and Path(self.log_path).is_relative_to(run_dir):
            self.log_path = str(repro_dir / "run" / Path(self.log_path).relative_to(run_dir))
        self.args = (self._text(),)


class RunTimeout(RunError):
    """The run exceeded its time limit; the process was killed."""

    failure_class = FailureClass.TIMEOUT


class RunCrashed(RunError):
    """The runtime aborted, faulted or exited with a bad status."""

    failure_class = FailureClass.CRASH


class RunnerConfigError(RunError):
    """The runner firmware, as it was built, cannot run this program: an operator
    missing from its kernel list, or a buffer (intermediate outputs, method pool)
    too small. Not the model's fault: rebuild the runner (the message says how)."""

    failure_class = FailureClass.RUNNER_CONFIG


class InfrastructureError(RunError):
    """The harness's own plumbing failed (worker could not start, disk full...)."""

    failure_class = FailureClass.INFRASTRUCTURE


class EtHilDeprecationWarning(FutureWarning):
    """An et-hil spelling or API that goes in the next release (a FutureWarning:
    shown to users by default, unlike DeprecationWarning)."""
