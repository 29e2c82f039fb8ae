"""Result records: one JSON line per test, appended as each test finishes, and
read back as typed records.

Every record is written with one ``write`` under a file lock, then flushed and
fsynced, so a killed run loses no finished record and parallel workers never
interleave lines. :func:`read_records` is the one reader: each line decodes into
a :class:`~et_hil.report.record.Record`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import filelock
import msgspec

from et_hil.errors import ConfigError
from et_hil.report.record import Record


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


def _line(fields: Mapping[str, Any]) -> str:
    return json.dumps(_json_safe(fields), sort_keys=True) + "\n"


class ResultsWriter:
    """Appends records to a JSON Lines file shared by all workers of a run.

    The file holds the records of the runs that wrote to it and are still live
    (see :mod:`et_hil.report.sessions`), or else of the last run. The first
    record of a new run id drops the records of runs that have ended (and
    calls ``on_new_run`` with the runs whose records stay), so pytest runs
    that record nothing never touch it, all workers of one run share it, and
    two sessions started in one folder both keep every record.

    Args:
        path: the ``.jsonl`` file.
        run_id: the id every record of this run carries.
        on_new_run: called (under the lock) when this run joins the file, with
            the ids of the runs whose records it keeps (this one included).
    """

    def __init__(
        self,
        path: Path,
        run_id: str = "",
        on_new_run: Callable[[frozenset[str]], object] | None = None,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.on_new_run = on_new_run
        self._lock = filelock.FileLock(str(self.path) + ".lock")
        self._owner = self.path.with_name(self.path.name + ".run")

    def _owners(self) -> list[str]:
        """The runs whose records the file holds (one id a line)."""
        try:
            return self._owner.read_text().splitlines()
        except OSError:
            return []

    def _claim_locked(self) -> None:
        owners = self._owners()
        if self.run_id in owners:
            return
        from et_hil.report.sessions import live_runs

        staying = [run for run in owners if run in live_runs(self.path)]
        if not staying:
            self.path.write_text("")
        elif staying != owners:  # drop the records of runs that ended, keep the live ones'
            partial = self.path.with_name(self.path.name + ".partial")
            try:
                text = "".join(_lines_of(self.path, set(staying)))
            except FileNotFoundError:
                text = ""
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, self.path)  # readers see the old file or the new, whole
        keep = [*staying, self.run_id]
        partial_owner = self._owner.with_name(self._owner.name + ".partial")
        partial_owner.write_text("".join(f"{run}\n" for run in keep))
        os.replace(partial_owner, self._owner)
        if self.on_new_run is not None:
            self.on_new_run(frozenset(keep))

    def claim(self) -> None:
        """Make the file this run's (starting it afresh if another run had it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._claim_locked()

    def append(self, record: Record | Mapping[str, Any]) -> None:
        """Append one record durably (one write, flushed and fsynced, under the lock).

        ``record`` is a :class:`~et_hil.report.record.Record` (what the plugin
        writes) or any mapping of JSON values.
        """
        fields = record if isinstance(record, Mapping) else record.fields()
        line = _line(fields)
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


class _RunOf(msgspec.Struct):
    """The one field the writer reads of the records it keeps."""

    run_id: str | None = None


def _lines_of(path: Path, runs: set[str]) -> Iterator[str]:
    """The lines of ``path``'s records of ``runs``, as written (a torn line is dropped)."""
    decoder = msgspec.json.Decoder(_RunOf)
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                run = decoder.decode(line)
            except msgspec.DecodeError:
                continue
            if run.run_id in runs:
                yield line if line.endswith("\n") else line + "\n"


@dataclasses.dataclass(frozen=True)
class RecordLine:
    """One record of a results file, with its line as written.

    Attributes:
        record: the line decoded.
        text: the line, without its newline (``et-hil merge`` writes it unchanged).
        number: its line number in the file, from 1.
    """

    record: Record
    text: str
    number: int


# Lax: results files write infinities as strings ("inf"), which decode to floats.
_DECODER = msgspec.json.Decoder(Record, strict=False)


def record_lines(path: Path) -> Iterator[RecordLine]:
    """Yield each record of a results file with its line (none for a missing file).

    Blank lines are skipped, and so is a line that is not JSON but starts like a
    record: one torn by a writer that was killed mid-line (the next record starts
    on the next line, see :class:`ResultsWriter`).

    Raises:
        ConfigError: a line is not a result record (other JSON, a field of the
            wrong type, not JSON at all), naming the file, the line and the field.
    """
    path = Path(path)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = _decode(raw)
            except msgspec.ValidationError as exc:  # JSON, but not a record
                raise _not_a_record(path, number, str(exc)) from exc
            except ValueError as exc:  # not JSON
                if raw.lstrip().startswith(b"{"):
                    continue  # the start of a record, torn by a killed writer
                raise _not_a_record(path, number, f"not JSON ({exc})") from exc
            yield RecordLine(record, raw.decode("utf-8", errors="replace").rstrip("\r\n"), number)


def _decode(raw: bytes) -> Record:
    """One line as a record; ``Infinity`` and ``NaN`` literals are read too (Python's
    JSON writes them, and hand-made records hold them).

    Raises:
        msgspec.ValidationError: the line is JSON but not a record.
        ValueError: the line is not JSON.
    """
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError:
        return msgspec.convert(json.loads(raw), Record, strict=False)


def _not_a_record(path: Path, number: int, why: str) -> ConfigError:
    return ConfigError(
        f"results file {path}, line {number}: not a result record: {why}. A results file "
        "holds the JSON lines pytest writes (--et-results) or 'et-hil merge' joins: check "
        "that this is one, and mend or delete a line edited by hand"
    )


def read_records(path: Path) -> Iterator[Record]:
    """Yield the records of a results file (see :func:`record_lines`).

    Raises:
        ConfigError: a line is not a result record, naming the file and line.
    """
    for line in record_lines(path):
        yield line.record


def record_of(fields: Mapping[str, Any]) -> Record:
    """A record from JSON-like fields, as :func:`read_records` would decode its line.

    Raises:
        ConfigError: the fields are not a result record.
    """
    try:
        return msgspec.convert(_json_safe(fields), Record, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"not a result record: {exc}") from exc
