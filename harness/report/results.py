"""Result records: one JSON line per test, appended as each test finishes.

Every record is written with one ``write`` under a file lock, then flushed and
fsynced, so a killed run loses no finished record and parallel workers never
interleave lines.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

if TYPE_CHECKING:
    from harness.report.record import Record


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

    The file belongs to one run at a time: the first record of a new run id
    starts it afresh (and calls ``on_new_run``), so pytest runs that record
    nothing never touch it, and all workers of one run share it.

    Args:
        path: the ``.jsonl`` file.
        run_id: the id every record of this run carries.
        on_new_run: called (under the lock) when this run takes the file over.
    """

    def __init__(
        self, path: Path, run_id: str = "", on_new_run: Callable[[], object] | None = None
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.on_new_run = on_new_run
        self._lock = filelock.FileLock(str(self.path) + ".lock")
        self._owner = self.path.with_name(self.path.name + ".run")

    def _claim_locked(self) -> None:
        owner = self._owner.read_text() if self._owner.exists() else None
        if owner != self.run_id:
            self.path.write_text("")
            self._owner.write_text(self.run_id)
            if self.on_new_run is not None:
                self.on_new_run()

    def claim(self) -> None:
        """Make the file this run's (starting it afresh if another run had it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._claim_locked()

    def append(self, record: Record | Mapping[str, Any]) -> None:
        """Append one record durably (one write, flushed and fsynced, under the lock).

        ``record`` is a :class:`~harness.report.record.Record` (what the plugin
        writes) or any mapping of JSON values.
        """
        fields = record if isinstance(record, Mapping) else record.fields()
        line = json.dumps(_json_safe(fields), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._claim_locked()
            with self.path.open("ab+") as f:
                # A writer killed mid-line leaves a partial line: end it first so
                # that this record stays whole and readable.
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a results file, skipping a torn last line."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):  # a stray non-record line is not a record
                    yield record
    except FileNotFoundError:
        return
