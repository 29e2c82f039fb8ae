"""Result records: one JSON line per test, appended as each test finishes.

Every record is written with one ``write`` under a file lock, then flushed and
fsynced, so a killed run loses no finished record and parallel workers never
interleave lines.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import filelock


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class ResultsWriter:
    """Appends records to a JSON Lines file shared by all workers of a run.

    Args:
        path: the ``.jsonl`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = filelock.FileLock(str(self.path) + ".lock")

    def reset(self) -> None:
        """Start an empty file (once per run, by the controlling process)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.path.write_text("")

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record durably."""
        line = json.dumps(_json_safe(record), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a results file, skipping a torn last line."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
    except FileNotFoundError:
        return
