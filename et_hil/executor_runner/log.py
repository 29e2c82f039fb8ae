"""Reading what the upstream ``arm_executor_runner`` prints: failure lines, PMU
counters, the base64 ETDump block, and (on UART builds) the run's own lines,
outputs and BundleIO verdict.

FVP boards and serial boards print the same format (the ``ET_LOG``, output and
ETDump lines of ExecuTorch's examples/arm/executor_runner/arm_executor_runner.cpp),
so both read it here.
Nothing in this module does I/O beyond reading ``et_hil/executor_runner/failures.toml``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from et_hil.datafiles import runner_failures_file
from et_hil.programs import dim_order

EOT = "\x04"  # the runner's last character; ends an FVP with uart0.shutdown_on_eot=1


@dataclasses.dataclass(frozen=True)
class FailurePattern:
    """A log line that means the run failed, and which failure class it is."""

    failure_class: str
    regex: re.Pattern[str]
    what: str
    kind: str | None = None  # which runner limit a runner_config line names


@functools.cache
def load_failure_patterns() -> tuple[list[FailurePattern], list[re.Pattern[str]]]:
    """The failure patterns and the lines to ignore first (``executor_runner/failures.toml``)."""
    data = tomllib.loads(runner_failures_file().read_text())
    patterns = [
        FailurePattern(p["class"], re.compile(p["regex"], re.MULTILINE), p["what"], p.get("kind"))
        for p in data["pattern"]
    ]
    ignore = [re.compile(r) for r in data.get("ignore", {}).get("regex", [])]
    return patterns, ignore


@dataclasses.dataclass(frozen=True)
class LogFinding:
    """A failure found in a log: its class, what it means, and the line."""

    failure_class: str
    what: str
    line: str
    kind: str | None = None
    detail: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the regex's named groups


def find_failures(log: str) -> list[LogFinding]:
    """Every line of ``log`` that means the run failed, in order (CRLF tolerated)."""
    patterns, ignore = load_failure_patterns()
    findings = []
    for line in log.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if any(r.match(line) for r in ignore):
            continue
        for pattern in patterns:
            if match := pattern.regex.match(line):
                detail = {k: v for k, v in match.groupdict().items() if v is not None}
                findings.append(
                    LogFinding(
                        pattern.failure_class, pattern.what, line.strip(), pattern.kind, detail
                    )
                )
                break
    return findings


_PMU_CYCLES = re.compile(r"ethosu_pmu_cycle_cntr\s*:\s*(\d+)")
_PMU_COUNTER = re.compile(r"ethosu_pmu_cntr(\d+)\s*:\s*(\d+)")
_PMU_EVENTS = re.compile(r"Ethos-U PMU Events:\[([^\]]*)\]")
_CPU_CYCLES = re.compile(r"Inference runtime: (\d+) CPU cycles total")
_NPU_CPU_CYCLES = re.compile(r"ethos-u\s*:\s*cycle_cnt\s*:\s*(\d+) cycles")


def parse_pmu(log: str) -> dict[str, Any]:
    """The Ethos-U PMU report of an Ethos-U build (empty when there is none)."""
    pmu: dict[str, Any] = {}
    if match := _PMU_CYCLES.search(log):
        pmu["npu_active_cycles"] = int(match.group(1))
    counters = {int(i): int(v) for i, v in _PMU_COUNTER.findall(log)}
    if counters:
        events = []
        if match := _PMU_EVENTS.search(log):
            events = [e.strip() for e in match.group(1).split(",") if e.strip()]
        pmu["counters"] = {
            (events[i] if i < len(events) else f"cntr{i}"): v for i, v in sorted(counters.items())
        }
    if match := _CPU_CYCLES.search(log):
        pmu["cpu_cycles"] = int(match.group(1))
    if match := _NPU_CPU_CYCLES.search(log):
        pmu["cpu_cycles_in_npu_delegate"] = int(match.group(1))
    return pmu


class EtdumpBlockError(ValueError):
    """The ``#[RUN THIS]`` ... ``#[END]`` block is incomplete or not valid base64."""


def parse_etdump_block(log: str) -> dict[str, bytes]:
    """Files carried in the UART log's base64 block: ``etdump.bin``, ``debug_buffer.bin``.

    Returns an empty dict when the log has no block.

    Raises:
        EtdumpBlockError: a block that starts but does not end, or bad base64.
    """
    text = log.replace("\r\n", "\n")
    start = text.find("#[RUN THIS]")
    if start < 0:
        return {}
    end = text.find("#[END]", start)
    if end < 0:
        raise EtdumpBlockError("ETDump block starts (#[RUN THIS]) but never ends (#[END])")
    files: dict[str, bytes] = {}
    for line in text[start:end].split("\n"):
        match = re.match(r'^echo "([^"]*)" \| base64 -d >\s*(\S+)\s*$', line.strip())
        if match:
            try:
                files[match.group(2)] = base64.b64decode(match.group(1), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise EtdumpBlockError(f"{match.group(2)}: invalid base64 ({exc})") from exc
    if "etdump.bin" not in files:
        raise EtdumpBlockError("ETDump block has no etdump.bin line")
    return files


def log_tail(log: str, lines: int = 25) -> str:
    """The last ``lines`` non-empty lines of a log."""
    kept = [line for line in log.replace("\r", "").split("\n") if line.strip()]
    return "\n".join(kept[-lines:])


# ----------------------------------------------------------------- UART builds
# A UART build (real boards, FVPs without semihosting) cannot write files: its
# whole result is the text it prints, from "PTE @ 0x... [----ET12]" to EOT.

_START = re.compile(r"PTE @ (?:0x)?([0-9a-fA-F]+) \[----(.{4})\]")
_COMPLETE = "Program complete, exiting."
_EXIT_CODE = re.compile(r"Application exit code: (-?\d+)\.")
_HARD_FAULT = re.compile(r"Hard fault\.")
# An F line is followed by abort() (a trap): nothing useful comes after it.
_FATAL = re.compile(r"^F \[executorch:", re.MULTILINE)
_OUTPUT_COUNT = re.compile(r"\] (\d+) outputs: ?$", re.MULTILINE)
_OUTPUT_LINE = re.compile(
    r"^Output\[(\d+)\]\[(\d+)\]: \((float|int|char|bool)\) (\S+)", re.MULTILINE
)
_BUNDLE_RESULT = re.compile(r"TEST: BundleIO index\[(\d+)\] Test_result: (PASS|FAIL)")
_BUNDLE_STAT = re.compile(
    r"^ (mean_absolute_error|max_absolute_error|mean_relative_error"
    r"|max_relative_error):\s+(\S+)",
    re.MULTILINE,
)
# Lines the runner prints when its own BundleIO check fails. They are a verdict
# the harness records, not a crash: the harness compares the outputs itself.
BUNDLE_MISMATCH_LINES = (
    "Model output don't match expected BundleIO bpte ref data",
    "Test_result: FAIL",
    "Bundle verification failed with status",
    "Problem running model",
)
_PROBLEM_RUNNING = "Problem running model"
PTE_MAGIC = "ET12"
BUNDLE_MAGIC = "BP08"
# The dtypes the runner's print_outputs prints, by the type word on the line.
UART_DTYPES = {"float": "float32", "int": "int32", "char": "int8", "bool": "bool"}


@dataclasses.dataclass(frozen=True)
class UartRun:
    """One run's part of a UART capture.

    Attributes:
        text: from this run's start line to the end of the capture.
        address: where the runner found the program (``PTE @ 0x...``).
        magic: bytes 4-7 of the program it found (``ET12`` program, ``BP08`` bundle).
        end: how it ended: ``eot``, ``exit`` (``Application exit code``),
            ``complete`` (``Program complete`` without EOT yet), ``fault``, or ``None``.
        exit_code: the code of ``Application exit code: N.``, when printed.
    """

    text: str
    address: int | None
    magic: str | None
    end: str | None
    exit_code: int | None = None


def normalize_uart(raw: bytes) -> str:
    """UART bytes as text: CRLF to LF; bytes that are not UTF-8 become U+FFFD."""
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def find_run(text: str) -> UartRun | None:
    """The last run in ``text`` (a board may print boot noise, or reboot), or
    ``None`` when no run has started. A fault before any start line is a run too."""
    starts = list(_START.finditer(text))
    if not starts:
        fault = _HARD_FAULT.search(text) or _FATAL.search(text)
        if fault is None:
            return None
        return _with_end(UartRun(text[fault.start() :], None, None, None))
    last = starts[-1]
    return _with_end(UartRun(text[last.start() :], int(last.group(1), 16), last.group(2), None))


def _with_end(run: UartRun) -> UartRun:
    text = run.text
    exit_code = None
    if match := _EXIT_CODE.search(text):
        exit_code = int(match.group(1))
    if EOT in text:
        end = "eot"
    elif exit_code is not None:
        end = "exit"
    elif _HARD_FAULT.search(text) or _FATAL.search(text):
        end = "fault"
    elif _COMPLETE in text:
        end = "complete"
    else:
        end = None
    return dataclasses.replace(run, end=end, exit_code=exit_code)


@dataclasses.dataclass(frozen=True)
class _EndSigns:
    """What :func:`_with_end` looks for, gathered over a run's text line by line."""

    eot: bool = False
    exit_code: int | None = None
    fault: bool = False
    complete: bool = False

    def add(self, segment: str) -> _EndSigns:
        """These signs and those of ``segment`` (one line, or a line's end)."""
        exit_code = self.exit_code
        if exit_code is None and (match := _EXIT_CODE.search(segment)):
            exit_code = int(match.group(1))
        return _EndSigns(
            eot=self.eot or EOT in segment,
            exit_code=exit_code,
            fault=self.fault or bool(_HARD_FAULT.search(segment) or _FATAL.search(segment)),
            complete=self.complete or _COMPLETE in segment,
        )

    @property
    def end(self) -> str | None:
        """How the run ended, by the order of :func:`_with_end`."""
        if self.eot:
            return "eot"
        if self.exit_code is not None:
            return "exit"
        if self.fault:
            return "fault"
        return "complete" if self.complete else None


@dataclasses.dataclass(frozen=True)
class RunState:
    """What :func:`find_run` would say of a capture so far, without its text.

    Attributes:
        found: a run has started (a start line, or a fault before any).
        started: a start line has been seen (the run has a ``magic``).
        end: as :attr:`UartRun.end`.
        exit_code: as :attr:`UartRun.exit_code`.
    """

    found: bool
    started: bool
    end: str | None
    exit_code: int | None


@dataclasses.dataclass
class _Scan:
    # Signs since the last start line; before any, since the first hard fault
    # and since the first F line (find_run takes a hard fault over an F line).
    since_start: _EndSigns | None = None
    since_hard_fault: _EndSigns | None = None
    since_fatal: _EndSigns | None = None

    def add_line(self, line: str) -> None:
        # Every pattern of find_run and _with_end lies within one line, so a
        # line is looked at once, when it is complete.
        if starts := list(_START.finditer(line)):
            self.since_start = _EndSigns().add(line[starts[-1].start() :])
        elif self.since_start is not None:
            self.since_start = self.since_start.add(line)
        else:
            if self.since_hard_fault is not None:
                self.since_hard_fault = self.since_hard_fault.add(line)
            elif fault := _HARD_FAULT.search(line):
                self.since_hard_fault = _EndSigns().add(line[fault.start() :])
            if self.since_fatal is not None:
                self.since_fatal = self.since_fatal.add(line)
            elif _FATAL.search(line):
                self.since_fatal = _EndSigns().add(line)

    def state(self) -> RunState:
        signs = self.since_start or self.since_hard_fault or self.since_fatal
        if signs is None:
            return RunState(found=False, started=False, end=None, exit_code=None)
        return RunState(
            found=True,
            started=self.since_start is not None,
            end=signs.end,
            exit_code=signs.exit_code,
        )


class RunWatch:
    """:func:`find_run` over a capture that grows, at the cost of each byte once.

    Re-reading the whole capture on every line is quadratic: a run printing a
    large ETDump block or many output lines would spend minutes in the parser.
    This looks at each complete line once, as :func:`normalize_uart` would
    read it, and at the unfinished last line only when asked.
    """

    def __init__(self) -> None:
        self._scan = _Scan()
        self._partial = bytearray()  # bytes after the last LF

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes read from the port."""
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._partial += chunk
            return
        self._partial += chunk[:cut]
        # LF and CR never occur inside a UTF-8 sequence, so lines decode alone
        # exactly as in the whole capture.
        for line in bytes(self._partial).split(b"\n"):
            self._add(line, self._scan)
        self._partial = bytearray(chunk[cut + 1 :])

    @staticmethod
    def _add(line: bytes, scan: _Scan) -> None:
        for part in line.decode("utf-8", errors="replace").split("\r"):
            scan.add_line(part)

    def state(self) -> RunState:
        """What :func:`find_run` says of everything fed so far (the unfinished
        last line included: EOT comes without a line end)."""
        if not self._partial:
            return self._scan.state()
        scan = dataclasses.replace(self._scan)  # _EndSigns are immutable: a shallow copy
        self._add(bytes(self._partial), scan)
        return scan.state()


def bundle_abort(text: str) -> bool:
    """Whether the run ended only because the runner's own BundleIO check failed:
    ``main()`` then asserts ``model_ok`` ("Problem running model"), which traps
    (hard fault, ``Application exit code: 1.``, EOT)."""
    return _PROBLEM_RUNNING in text and _bundle_failed(text)


def _bundle_failed(text: str) -> bool:
    return any(verdict == "FAIL" for _, verdict in _BUNDLE_RESULT.findall(text))


def uart_failures(text: str) -> list[LogFinding]:
    """Failure lines of a UART run, without the runner's own BundleIO mismatch
    verdict and the abort that follows it (the verdict is recorded by
    :func:`parse_bundle_result`; the harness judges the outputs itself)."""
    if not _bundle_failed(text):
        return find_failures(text)
    if _PROBLEM_RUNNING in text:
        # from the "Problem running model" line on, it is the abort path
        text = text[: text.rfind("\n", 0, text.index(_PROBLEM_RUNNING)) + 1]
    return [f for f in find_failures(text) if not any(s in f.line for s in BUNDLE_MISMATCH_LINES)]


def parse_bundle_result(text: str) -> list[dict[str, Any]]:
    """The runner's BundleIO verdicts: ``[{"testset": 0, "result": "PASS", stats...}]``."""
    stats: dict[str, float] = {}
    for name, value in _BUNDLE_STAT.findall(text):
        try:
            stats[name] = float(value)
        except ValueError:
            continue
    return [
        {"testset": int(i), "result": verdict, **stats}
        for i, verdict in _BUNDLE_RESULT.findall(text)
    ]


class UartOutputError(ValueError):
    """The output lines do not give every element of every output.

    Attributes:
        lost: True when lines are missing or garbled (bytes lost on the link);
            False when the runner cannot print this dtype at all.
    """

    def __init__(self, message: str, *, lost: bool) -> None:
        super().__init__(message)
        self.lost = lost


def parse_uart_outputs(
    text: str, output_specs: Sequence[Mapping[str, Any]]
) -> list[npt.NDArray[Any]]:
    """The program's outputs from ``Output[i][j]: (type) v`` lines.

    Elements come in memory order (the tensor's dim order), so they are laid
    out in that order and transposed back to the logical shape. float32 values
    carry six decimals only: they are as exact as ``%f`` allows.

    Raises:
        UartOutputError: an output the runner cannot print (uint8, int16,
            int64, fp16...), or lines lost or garbled on the link.
    """
    values: dict[int, dict[int, str]] = {}
    types: dict[int, str] = {}
    for i, j, kind, value in _OUTPUT_LINE.findall(text):
        values.setdefault(int(i), {})[int(j)] = value
        types[int(i)] = kind
    if match := _OUTPUT_COUNT.search(text):
        printed = int(match.group(1))
        if printed != len(output_specs):
            raise UartOutputError(
                f"the runner reports {printed} outputs, the program has {len(output_specs)}: "
                "is the board running the program the harness wrote?",
                lost=True,
            )
    if output_specs and not values and _OUTPUT_COUNT.search(text):
        raise UartOutputError(
            "the runner printed no Output lines: build the firmware with "
            "-DET_LOG_DUMP_OUTPUT=ON (upstream's default), or with -DET_DUMP_OUTPUTS=ON so the "
            "harness reads exact outputs from the ETDump",
            lost=False,
        )
    outputs = []
    for i, spec in enumerate(output_specs):
        dtype = str(spec.get("dtype"))
        if spec.get("kind") != "tensor":
            raise UartOutputError(f"output {i} is not a tensor ({spec.get('kind')})", lost=False)
        if dtype not in UART_DTYPES.values():
            raise UartOutputError(
                f"output {i} is {dtype}; the runner prints float32, int32, int8 and bool "
                "outputs only. Build the firmware with ETDump outputs "
                "(-DET_DUMP_OUTPUTS=ON) so the harness reads them from the debug buffer",
                lost=False,
            )
        sizes = [int(s) for s in spec["sizes"]]
        order = [int(d) for d in spec.get("dim_order") or range(len(sizes))]
        count = int(np.prod(sizes)) if sizes else 1
        got = values.get(i, {})
        if types.get(i) not in (None, _uart_type(dtype)):
            raise UartOutputError(
                f"output {i} printed as ({types[i]}), the program's output is {dtype}", lost=True
            )
        missing = [j for j in range(count) if j not in got]
        if missing:
            raise UartOutputError(
                f"output {i}: {len(missing)} of {count} values missing from the UART log "
                f"(first missing index {missing[0]})",
                lost=True,
            )
        flat = np.array([_uart_value(got[j], dtype, i, j) for j in range(count)], dtype=dtype)
        outputs.append(dim_order.from_memory(flat, sizes, order))
    return outputs


def _uart_type(dtype: str) -> str:
    return next(word for word, name in UART_DTYPES.items() if name == dtype)


def _uart_value(text: str, dtype: str, i: int, j: int) -> Any:
    try:
        if dtype == "bool":
            return text == "true"
        if dtype == "float32":
            return float(text)  # accepts C's nan, -nan, inf
        return int(text)
    except ValueError as exc:
        raise UartOutputError(
            f"Output[{i}][{j}]: cannot read {text!r} as {dtype}", lost=True
        ) from exc
