"""Quarantine: a reviewed file of known failures that must not fail the run, for a while.

The file is TOML, one ``[[quarantine]]`` table per entry::

    [[quarantine]]
    test = "suites/test_ops.py::test_op_int8[*-hardswish]"   # node id; * and ? match
    board = "corstone320"                                    # optional; * and ? match
    reason = "Vela 5.1 rounds hardswish's table differently"
    issue = "https://github.com/org/repo/issues/123"
    expires = 2027-01-31                                      # a TOML date

A quarantined test still runs and is recorded with its true outcome and the entry.
Until the entry expires a failure is reported as pytest's ``xfailed`` (it does
not fail the run) and a pass as ``passed`` with a note to drop the entry. Once
the entry has expired, the test fails whatever its outcome, naming the entry.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from et_hil.errors import ConfigError
from et_hil.report.record_parts import QuarantineRecord

_FIELDS = {"test", "board", "reason", "issue", "expires"}


@dataclasses.dataclass(frozen=True)
class QuarantineEntry:
    """One known failure.

    Attributes:
        test: node-id pattern (``*`` and ``?`` match; ``[...]`` is literal).
        board: board-name pattern (``*`` when the file leaves it out).
        reason: why it fails, for the reader of the report.
        issue: where its fix is tracked.
        expires: the last day it is quarantined.
        line: where the entry is, ``FILE:[[quarantine]] #N``, for messages.
    """

    test: str
    board: str
    reason: str
    issue: str
    expires: datetime.date
    line: str

    def matches(self, test: str, board: str | None) -> bool:
        """Whether this entry covers ``test`` on ``board``."""
        return bool(_pattern(self.test).match(test) and _pattern(self.board).match(board or ""))

    def expired(self, today: datetime.date) -> bool:
        """Past its last day."""
        return today > self.expires

    def as_dict(self) -> dict[str, Any]:
        """The entry as its record holds it (without whether it had expired)."""
        return {
            "reason": self.reason,
            "issue": self.issue,
            "expires": self.expires.isoformat(),
            "entry": self.line,
        }

    def record(self, today: datetime.date) -> QuarantineRecord:
        """The ``quarantine`` field of the record of a test it covers, in a run of ``today``."""
        return QuarantineRecord(**self.as_dict(), expired=self.expired(today))


@functools.cache
def _pattern(glob: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards, everything else literal: node ids hold ``[...]``,
    which fnmatch would read as a character set."""
    literal = re.escape(glob).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(literal + r"\Z", re.DOTALL)


def load_quarantine(path: Path) -> list[QuarantineEntry]:
    """Read a quarantine file; every problem of it in one error.

    Raises:
        ConfigError: naming the file, the entry and the field.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"quarantine file {path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"quarantine file {path}: not valid TOML: {exc}") from exc
    unknown_top = set(data) - {"quarantine"}
    problems = [f"unknown table or key {k!r} (entries are [[quarantine]])" for k in unknown_top]
    tables = data.get("quarantine", [])
    if not isinstance(tables, list):
        tables = []
        problems.append("'quarantine' must be a list of tables: write each entry as [[quarantine]]")
    entries = []
    for number, raw in enumerate(tables, 1):
        where = f"[[quarantine]] #{number}"
        found = _entry(raw, f"{path}:{where}")
        if isinstance(found, str):
            problems.append(f"{where}: {found}")
        else:
            entries.append(found)
    if len(problems) == 1:
        raise ConfigError(f"quarantine file {path}: {problems[0]}")
    if problems:
        lines = "".join(f"\n  - {p}" for p in problems)
        raise ConfigError(f"quarantine file {path}: {len(problems)} problems:{lines}")
    return entries


def _entry(raw: Any, line: str) -> QuarantineEntry | str:
    """The entry of one table, or what is wrong with it."""
    if not isinstance(raw, Mapping):
        return "is not a table"
    unknown = set(raw) - _FIELDS
    if unknown:
        return (
            f"unknown field(s) {', '.join(sorted(unknown))} (fields: {', '.join(sorted(_FIELDS))})"
        )
    missing = [f for f in ("test", "reason", "issue", "expires") if not raw.get(f)]
    if missing:
        return (
            f"missing {', '.join(missing)}: every entry says what, why, "
            "where it is tracked and until when"
        )
    expires = raw["expires"]
    if isinstance(expires, datetime.datetime) or not isinstance(expires, datetime.date):
        return f"expires = {expires!r} is not a date (write it as 2027-01-31, unquoted)"
    for field in ("test", "board", "reason", "issue"):
        if field in raw and not isinstance(raw[field], str):
            return f"{field} must be a string"
    return QuarantineEntry(
        test=raw["test"],
        board=raw.get("board", "*"),
        reason=raw["reason"],
        issue=raw["issue"],
        expires=expires,
        line=line,
    )


def find_entry(
    entries: Iterable[QuarantineEntry], test: str, board: str | None
) -> QuarantineEntry | None:
    """The first entry covering ``test`` on ``board``, or None."""
    return next((e for e in entries if e.matches(test, board)), None)
