"""Corstone FVPs as data: platform files in ``fvp/`` rendered into command lines,
and the runner's output read back (failures, PMU counters, ETDump blocks).

Nothing here starts a process: :mod:`harness.boards.fvp` runs the command,
locally or in Docker, and both use the same rendering and parsing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import importlib.resources
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

RUNNER_ARGV0 = "executor_runner"  # argv[0] of the semihosting command line; ignored by the runner


@dataclasses.dataclass(frozen=True)
class FvpPlatform:
    """One FVP product, as read from ``fvp/<name>.toml``."""

    name: str
    executable: str
    version: str
    cpu: str
    default_num_macs: int
    num_macs_param: str
    npu_extra_args_param: str
    semihosting_prefix: str
    semihosting_cmdline_limit: int
    headless: tuple[str, ...]
    uart: tuple[str, ...]
    uart_mode_extra: tuple[str, ...]
    semihosting: tuple[str, ...]
    path: Path


@dataclasses.dataclass(frozen=True)
class FailurePattern:
    """A log line that means the run failed, and which failure class it is."""

    failure_class: str
    regex: re.Pattern[str]
    what: str


def platform_dir() -> Path:
    """Folder of the FVP platform files (``fvp/`` in a checkout, packaged in a wheel)."""
    packaged = importlib.resources.files("harness") / "fvp_platforms"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "fvp"


def load_platform(name: str) -> FvpPlatform:
    """The FVP platform called ``name``.

    Raises:
        ConfigError: no such platform file, or a bad field in it.
    """
    path = platform_dir() / f"{name}.toml"
    if not path.exists():
        known = sorted(p.stem for p in platform_dir().glob("*.toml") if p.stem != "failures")
        raise ConfigError(f"unknown FVP platform '{name}' (known: {', '.join(known)})")
    data = tomllib.loads(path.read_text())
    try:
        return FvpPlatform(
            name=data["name"],
            executable=data["executable"],
            version=data["version"],
            cpu=data["cpu"],
            default_num_macs=int(data["default_num_macs"]),
            num_macs_param=data["num_macs_param"],
            npu_extra_args_param=data["npu_extra_args_param"],
            semihosting_prefix=data["semihosting_prefix"],
            semihosting_cmdline_limit=int(data["semihosting_cmdline_limit"]),
            headless=tuple(data["headless"]),
            uart=tuple(data["uart"]),
            uart_mode_extra=tuple(data.get("uart_mode_extra", ())),
            semihosting=tuple(data["semihosting"]),
            path=path,
        )
    except KeyError as exc:
        raise ConfigError(f"FVP platform file {path}: missing field {exc}") from exc


@functools.cache
def load_failure_patterns() -> tuple[list[FailurePattern], list[re.Pattern[str]]]:
    """The failure patterns and the lines to ignore first (``fvp/failures.toml``)."""
    data = tomllib.loads((platform_dir() / "failures.toml").read_text())
    patterns = [
        FailurePattern(p["class"], re.compile(p["regex"], re.MULTILINE), p["what"])
        for p in data["pattern"]
    ]
    ignore = [re.compile(r) for r in data.get("ignore", {}).get("regex", [])]
    return patterns, ignore


def semihosting_command_line(input_count: int) -> str:
    """The runner's argv, as upstream writes it: basenames only, to stay short."""
    line = f"{RUNNER_ARGV0} -m program.pte -o out"
    for i in range(input_count):
        line += f" -i i{i}.bin"
    return line


def render_command(
    platform: FvpPlatform,
    *,
    executable: str,
    elf: str,
    num_macs: int,
    timeout_s: int,
    semihosting_cwd: str | None,
    input_count: int = 0,
    fast: bool = True,
) -> list[str]:
    """The FVP argv for one run, parameter by parameter as upstream renders it.

    Args:
        platform: the FVP product.
        executable: the FVP binary to start (path or name).
        elf: the runner ELF, as the FVP will see it.
        num_macs: MACs of the Ethos-U; must match the program's compile target.
        timeout_s: the FVP's ``--timelimit``.
        semihosting_cwd: folder with the program and inputs (semihosting mode);
            ``None`` renders a UART-mode command.
        input_count: number of ``i<k>.bin`` inputs.
        fast: ``--fast`` NPU model (functional); False gives cycle-approximate NPU timing.

    Raises:
        ConfigError: the semihosting command line would be truncated by the FVP.
    """
    params = [f"{platform.num_macs_param}={num_macs}", *platform.headless, *platform.uart]
    if semihosting_cwd is None:
        params += list(platform.uart_mode_extra)
    else:
        params += [platform.semihosting_prefix + p for p in platform.semihosting]
        params.append(f"{platform.semihosting_prefix}semihosting-cwd={semihosting_cwd}")
    if fast:
        params.append(f"{platform.npu_extra_args_param}='--fast'")
    if semihosting_cwd is not None:
        line = semihosting_command_line(input_count)
        if len(line) > platform.semihosting_cmdline_limit:
            raise ConfigError(
                f"FVP {platform.name}: the semihosting command line is {len(line)} characters; "
                f"the FVP truncates beyond {platform.semihosting_cmdline_limit} "
                f"({input_count} inputs are too many)"
            )
        params.append(f"{platform.semihosting_prefix}semihosting-cmd_line='{line}'")
    argv = [executable]
    for param in params:
        argv += ["-C", param]
    return [*argv, "-a", elf, "--timelimit", str(timeout_s)]


@dataclasses.dataclass(frozen=True)
class LogFinding:
    """A failure found in a log: its class, what it means, and the line."""

    failure_class: str
    what: str
    line: str


def find_failures(log: str) -> list[LogFinding]:
    """Every line of ``log`` that means the run failed, in order (CRLF tolerated)."""
    patterns, ignore = load_failure_patterns()
    findings = []
    for line in log.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if any(r.match(line) for r in ignore):
            continue
        for pattern in patterns:
            if pattern.regex.match(line):
                findings.append(LogFinding(pattern.failure_class, pattern.what, line.strip()))
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


def quote_argv(argv: Sequence[str]) -> str:
    """A shell-pasteable rendering of an argv (for repro folders)."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
