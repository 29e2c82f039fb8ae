"""What a runner ELF was built with: the build record beside it.

``et-hil firmware build`` writes ``<elf>.json`` next to each runner it builds
(source revision, recipe, kernel list, buffer sizes, the ELF's SHA-256). Boards
read it to word runner-configuration failures and put it in every result; an ELF
built some other way has no record, and the harness then says what it does not know.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from et_hil.executor_runner.failures import RunnerFacts


def record_path(elf: Path) -> Path:
    """Where the build record of ``elf`` is: ``<elf>.json``."""
    return elf.with_name(elf.name + ".json")


def read_build_record(elf: Path, sha256: str | None = None) -> dict[str, Any] | None:
    """The build record of ``elf``, or ``None`` when there is none, it is not valid
    JSON, or it describes another build (its ``elf_sha256`` differs from ``sha256``)."""
    path = record_path(elf)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if sha256 is not None and record.get("elf_sha256") != sha256:
        return None  # a stale record of an earlier build at the same path
    return record


def runner_facts(elf: Path, record: dict[str, Any] | None) -> RunnerFacts:
    """The facts failure messages use, from a build record (or none)."""
    if record is None:
        return RunnerFacts(elf=str(elf))
    operators = record.get("operators")
    return RunnerFacts(
        elf=str(elf),
        operators=tuple(operators) if isinstance(operators, list) else None,
        wide=bool(record.get("wide", False)),
        intermediate_buffer_bytes=record.get("intermediate_buffer_bytes"),
        rebuild=str(record.get("rebuild") or RunnerFacts(elf="").rebuild),
    )


SHOWN_OPERATORS = 40  # a selected kernel list up to this long goes into results whole


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What results carry of a build record: everything but a long kernel list,
    which is counted instead (the record beside the ELF keeps it whole)."""
    operators = record.get("operators")
    brief = {k: v for k, v in record.items() if k not in ("operators", "sizes", "rebuild")}
    if isinstance(operators, list):
        brief["operator_count"] = len(operators)
        if not record.get("wide") and len(operators) <= SHOWN_OPERATORS:
            brief["operators"] = operators
    return brief
