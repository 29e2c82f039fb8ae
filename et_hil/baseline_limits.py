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
from typing import Any, Literal

from et_hil.errors import ConfigError

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


_LIMIT = re.compile(
    r"^\s*(?:(?P<action>fail|warn)\s*:?\s+)?(?P<amount>[+-]?\d+(?:\.\d*)?)\s*(?P<pct>%)?\s*$"
)


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
        action: str | None = None
        if isinstance(value, Mapping):
            unknown = set(value) - {"limit", "action"}
            action = value.get("action")
            if unknown or action not in (None, "fail", "warn"):
                raise ConfigError(
                    f"{where}: a limit table has 'limit' and 'action' ('fail' or 'warn'); "
                    f"got {dict(value)}"
                )
            value = value.get("limit")
        match = _LIMIT.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f"{where}: limit {value!r} is not one of the forms '+2%', '+0', '-1', "
                "'warn +50%' (the sign is the worse direction; % makes it relative)"
            )
        amount = abs(float(match["amount"]))
        relative = match["pct"] is not None
        chosen: Action = "warn" if (action or match["action"]) == "warn" else "fail"
        text = match["amount"] + ("%" if relative else "")
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


def check_overrides(table: Mapping[str, Any], where: str) -> list[str]:
    """Problems of a limits table (a board file's ``[baseline]``, a marker's arguments)."""
    problems = []
    for key, value in table.items():
        try:
            limit = Limit.parse(value, f"{where}: {key}")
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not _known_key(str(key)):
            problems.append(
                f"{where}: {key}: no such figure (figures: {', '.join(HIGHER_IS_WORSE)}, "
                f"pmu, pmu.<counter>, their last parts, and NAME@QUALIFIER)"
            )
        elif problem := _sign_problem(str(key), limit):
            problems.append(f"{where}: {problem}")
    return problems
