"""One step of a firmware build (the runner build, unpacking a tarball, a git query):
a child in its own process group (:mod:`et_hil.processes`), its output in a log
(a query's is read instead), killed with everything it started at its time limit
or on an interrupt.

A build step that hangs (a configure waiting on a lock, a compiler stuck on a
file system) would otherwise hold the build's file lock, and every process
waiting for that build, until someone notices.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from et_hil import processes
from et_hil.errors import HarnessError

# A git query of a local checkout takes milliseconds; a minute means a hung file system.
QUERY_TIMEOUT_S = 60.0


class FirmwareBuildError(HarnessError):
    """Configuring or building the runner failed; the message names the log."""


class FirmwareStepTimeout(FirmwareBuildError):
    """A build step ran past its time limit and was killed.

    Attributes:
        step: what the step was (``runner build``, ``unpacking executorch-...``).
        command: its command line.
        log_path: the log holding its output (``None`` for a query: it keeps none).
        timeout_s: its time limit.
    """

    def __init__(
        self,
        step: str,
        command: Sequence[str],
        log_path: Path | None,
        timeout_s: float,
        setting: str | None = None,
    ) -> None:
        self.step = step
        self.command = shlex.join(command)
        self.log_path = log_path
        self.timeout_s = timeout_s
        limit = f"{timeout_s:g} s" + (f" ({setting})" if setting else "")
        where = f"; read {log_path} for where it stopped" if log_path is not None else ""
        super().__init__(
            f"{step} was still running after {limit} and was killed with every process it "
            f"started: {self.command}{where}"
        )


def run_step(
    step: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout_s: float,
    setting: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
) -> processes.Finished:
    """Run one build step to its end; its output goes to ``log_path``, after a
    ``$ command`` line.

    Args:
        step: what it is, for messages (``runner build``).
        argv: the command.
        log_path: the log file.
        timeout_s: its time limit.
        setting: where the limit is set, for the timeout's message
            (``[qemu.firmware] build_timeout_s``).
        env: its environment (default: this process's).
        cwd: its working folder.
        append: add to the log (steps that share one) instead of starting it afresh.

    Returns:
        How it ended; a non-zero exit is the caller's to judge.

    Raises:
        FirmwareStepTimeout: still running at ``timeout_s`` (killed).
        FirmwareBuildError: the program cannot be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        try:
            finished = processes.run(argv, timeout_s, log=log, cwd=cwd, env=env)
        except OSError as exc:
            raise FirmwareBuildError(
                f"{step}: cannot start {argv[0]} ({exc.strerror}); see {log_path}"
            ) from exc
    if finished.timed_out:
        raise FirmwareStepTimeout(step, argv, log_path, timeout_s, setting)
    return finished


def query(
    what: str, argv: Sequence[str], timeout_s: float = QUERY_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a quick command whose output is the answer (a git query), to its end.

    Args:
        what: what it asks, for messages (``the revision of /src/executorch``).
        argv: the command.
        timeout_s: its time limit.

    Returns:
        Its exit status, stdout and stderr (a non-zero exit is the caller's to judge).

    Raises:
        FirmwareStepTimeout: still running at ``timeout_s`` (killed).
        FirmwareBuildError: the program cannot be started.
    """
    try:
        proc = processes.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise FirmwareBuildError(f"{what}: cannot start {argv[0]} ({exc.strerror})") from exc
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise FirmwareStepTimeout(what, argv, None, timeout_s) from exc
    finally:
        processes.kill_group(proc)  # what it left behind, or all of it on a timeout
    return subprocess.CompletedProcess(
        list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )
