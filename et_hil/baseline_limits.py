"""How far a tracked figure may move before it is a regression: the limits a
board file's ``[baseline]`` table and the ``et_baseline`` marker write, and the
figure names they may use.

Ground floor: a board file is checked against these at load
(:mod:`et_hil.boards.spec`), before any stage runs; the comparison of a run with
its baseline is :mod:`et_hil.report.baseline`'s, the figures of a record
:mod:`et_hil.report.figures`'.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from et_hil.errors import ConfigError
from et_hil.validation import Problem, find_problems

Action = Literal["fail", "warn"]

# How each figure's base name (before any '@') is read: True when a larger value is worse.
HIGHER_IS_WORSE: dict[str, bool] = {
    "snr_db": False,
    "max_lsb": True,
    "top1": False,
    "vela.cycles_total": True,
    "vela.cycles_npu": True,
    "vela.inference_time_s": True,
    "vela.sram_bytes": True,
    "vela.off_chip_flash_bytes": True,
    "pte_bytes": True,
    "planned_memory_bytes": True,
    "execute_s": True,
}
# PMU counters worth tracking, as the runner's log parser names them (et_hil.executor_runner.log).
PMU_FIGURES = ("npu_active_cycles", "cpu_cycles", "cpu_cycles_in_npu_delegate")


def base_name(figure: str) -> str:
    """A figure's name without its ``@qualifier``: ``snr_db@eager_float`` -> ``snr_db``."""
    return figure.partition("@")[0]


def higher_is_worse(figure: str) -> bool:
    """Whether a larger value of ``figure`` is a regression (PMU counters: yes)."""
    base = base_name(figure)
    if base.startswith("pmu."):
        return True
    return HIGHER_IS_WORSE.get(base, True)


# A limit's text: an optional action, a signed amount, an optional %. No named
# groups: the pattern is published in the board-file schema, and JSON Schema's
# regular expressions (ECMA-262) spell those differently from Python's.
LIMIT_PATTERN = r"^\s*(?:(fail|warn)\s*:?\s+)?([+-]?\d+(?:\.\d*)?)\s*(%)?\s*$"
_LIMIT = re.compile(LIMIT_PATTERN)
FORMS = "'+2%', '+0', '-1', 'warn +50%' (the sign is the worse direction; % makes it relative)"

LimitText = Annotated[
    str,
    msgspec.Meta(
        pattern=LIMIT_PATTERN,
        description="how far the figure may get worse: '+2%', '+0', '-1', 'warn +50%'",
        extra={"expect": f"a limit in one of the forms {FORMS}"},
    ),
]


def not_a_limit(where: str, value: Any) -> str:
    """The words for a limit whose text is not one of the forms."""
    return f"{where}: limit {value!r} is not one of the forms {FORMS}"


class LimitTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A limit written as a table: ``{ limit = "+2%", action = "warn" }`` (the
    table's action wins over one in the text)."""

    limit: LimitText
    action: Annotated[
        Action | None,
        msgspec.Meta(
            description="fail the test, or only report", extra={"expect": "'fail' or 'warn'"}
        ),
    ] = None

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        """A bad text says the forms; anything else says what a limit table holds."""
        if problem.key == "limit" and problem.kind == "invalid":
            return not_a_limit(problem.table, problem.value)
        got = (
            f"'{problem.key}'"
            if problem.kind == "unknown"
            else f"{problem.key} = {problem.value!r}"
        )
        if problem.key is None:
            got = repr(problem.value)
        return (
            f"{problem.table}: a limit table has 'limit' and 'action' ('fail' or 'warn'); got {got}"
        )


LimitValue: TypeAlias = LimitText | LimitTable
"""A limit as a board file's ``[baseline]`` declares it: its text, or a table."""
LimitWritten: TypeAlias = str | Mapping[str, str]
"""A limit as written (checked against :data:`LimitValue`): what board files, markers
and results records hold."""


def limit_problem(value: Any, where: str) -> str | None:
    """What is wrong with a limit as written (its text or a table), or ``None``."""
    if isinstance(value, Mapping):
        problems = find_problems(value, LimitTable, where)
        return str(problems[0]) if problems else None
    try:
        msgspec.convert(value, LimitText, strict=True)
    except msgspec.ValidationError:
        return not_a_limit(where, value)
    return None


@dataclasses.dataclass(frozen=True)
class Limit:
    """How far a figure may get worse before it is a regression.

    Attributes:
        amount: the allowed change in the worse direction (>= 0).
        relative: ``amount`` is a fraction of the baseline value (written ``+2%``),
            else it is in the figure's unit (``+0`` bytes, ``-1`` dB).
        action: ``fail`` fails the test; ``warn`` only reports it.
        text: the limit as written, for tables.
        signed: the text gave the worse direction's sign (else :func:`limit_for` puts
            the figure's own).
    """

    amount: float
    relative: bool
    action: Action
    text: str
    signed: bool = True

    @classmethod
    def parse(cls, value: Any, where: str) -> Limit:
        """A limit from its text (``"+2%"``, ``"-1"``, ``"warn +50%"``) or table
        (``{limit = "+2%", action = "warn"}``).

        The sign is the worse direction and must match the figure's (checked by
        :func:`limit_for` and :func:`check_overrides`); here it is kept in ``text``.

        Raises:
            ConfigError: naming ``where`` and the accepted forms.
        """
        if problem := limit_problem(value, where):
            raise ConfigError(problem)
        written: LimitValue = msgspec.convert(value, LimitValue, strict=True)
        text, action = (
            (written, None) if isinstance(written, str) else (written.limit, written.action)
        )
        match = _LIMIT.match(text)
        if match is None:  # cannot be: the declared type's pattern is this one
            raise ConfigError(not_a_limit(where, value))
        given_action, given_amount, percent = match.groups()
        amount = abs(float(given_amount))
        relative = percent is not None
        chosen: Action = "warn" if (action or given_action) == "warn" else "fail"
        text = given_amount + ("%" if relative else "")
        signed = text.startswith(("+", "-"))
        return cls(
            amount / 100 if relative else amount,
            relative,
            chosen,
            text if signed else "+" + text,
            signed,
        )

    def allows(self, change: float) -> bool:
        """Whether a change in the worse direction (>= 0 is worse) is within the limit."""
        return change <= self.amount + 1e-12


# Defaults by figure base name (see et_hil.report.figures); a pmu.* figure takes
# "pmu", anything unknown takes "*". Cycles may wobble a little when tools change;
# memory must not grow silently; accuracy is in its own units.
DEFAULT_LIMITS: dict[str, str] = {
    "snr_db": "-1",  # dB
    "max_lsb": "+1",  # quantization steps
    "top1": "-0.01",  # fraction of samples
    "vela.cycles_total": "+2%",
    "vela.cycles_npu": "+2%",
    "vela.inference_time_s": "+2%",
    "vela.sram_bytes": "+0",
    "vela.off_chip_flash_bytes": "+0",
    "pmu": "+2%",
    "pte_bytes": "+2%",
    "planned_memory_bytes": "+0",
    "execute_s": "warn +50%",  # wall time of a shared machine: report, never fail
    "*": "+2%",
}


def _short(figure: str) -> str:
    return base_name(figure).rpartition(".")[2]


def limit_for(figure: str, overrides: Iterable[Mapping[str, Any]] = (), where: str = "") -> Limit:
    """The limit of ``figure``: the last override that names it, else the default.

    An override key names a figure exactly (``snr_db@eager_float``), by base name
    (``snr_db``, ``vela.cycles_total``) or by its last part (``cycles_total``).
    """
    keys = (
        figure,
        base_name(figure),
        _short(figure),
        *(("pmu",) if figure.startswith("pmu.") else ()),
    )
    chosen: Any = None
    for table in overrides:
        for key in keys:
            if key in table:
                chosen = table[key]
                break
    if chosen is None:
        base = base_name(figure)
        chosen = DEFAULT_LIMITS.get(base) or (
            DEFAULT_LIMITS["pmu"] if base.startswith("pmu.") else DEFAULT_LIMITS["*"]
        )
    limit = Limit.parse(chosen, where or f"limit of {figure}")
    if problem := _sign_problem(figure, limit):
        raise ConfigError(f"{where or 'limit'}: {problem}")
    if not limit.signed:  # unsigned: the figure's worse direction
        sign = "+" if higher_is_worse(figure) else "-"
        limit = dataclasses.replace(limit, text=sign + limit.text[1:], signed=True)
    return limit


def _is_pmu(key: str) -> bool:
    base = base_name(key)
    return base == "pmu" or base.startswith("pmu.") or base in PMU_FIGURES


def _known_key(key: str) -> bool:
    """Whether an override key names a figure (exactly, by base or by last part)."""
    base = base_name(key)
    return _is_pmu(key) or any(b == base or _short(b) == base for b in HIGHER_IS_WORSE)


def _sign_problem(key: str, limit: Limit) -> str | None:
    """Why a limit's sign contradicts its figure's worse direction (None: it does not)."""
    known = [b for b in HIGHER_IS_WORSE if b in (key, base_name(key)) or _short(b) == key]
    if _is_pmu(key):
        worse_up = True
    elif known:
        worse_up = higher_is_worse(known[0])
    else:
        return None  # a figure this version does not know: no direction to check
    sign = "+" if worse_up else "-"
    if limit.signed and limit.text[0] != sign:
        direction = "larger" if worse_up else "smaller"
        return (
            f"limit {limit.text!r} for {key}: a {direction} {key} is worse, so its limit "
            f"is written '{sign}{limit.text[1:]}'"
        )
    return None


def figure_problem(key: str, value: Any, where: str) -> str | None:
    """What is wrong with a well-formed limit as the limit of the figure ``key``: a
    key that names no figure, a sign against the figure's worse direction.

    Raises:
        ConfigError: ``value`` is not a limit (see :func:`limit_problem`).
    """
    if not _known_key(key):
        return (
            f"{where}: {key}: no such figure (figures: {', '.join(HIGHER_IS_WORSE)}, "
            f"pmu, pmu.<counter>, their last parts, and NAME@QUALIFIER)"
        )
    if problem := _sign_problem(key, Limit.parse(value, f"{where}: {key}")):
        return f"{where}: {problem}"
    return None


def check_overrides(table: Mapping[str, Any], where: str) -> list[str]:
    """Problems of a limits table (a board file's ``[baseline]``, a marker's arguments)."""
    problems = []
    for key, value in table.items():
        problem = limit_problem(value, f"{where}: {key}") or figure_problem(str(key), value, where)
        if problem:
            problems.append(problem)
    return problems
