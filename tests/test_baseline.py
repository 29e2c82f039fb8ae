"""Tests of et_hil.report.baseline: limits and where they come from, changes against a
baseline (hand-worked), and the baseline file (load, update, a stable text)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from et_hil.errors import ConfigError
from et_hil.report.baseline import (
    Baseline,
    Change,
    Limit,
    change_text,
    check_overrides,
    compare_figures,
    fmt,
    limit_for,
    table,
)
from et_hil.report.results import record_of
from tests.report_records import TOSA_RUN, TOSA_TEST, VELA_BUILD, VELA_TEST, typed

# TOSA_RUN's figures as a baseline keeps them (6 significant digits).
TOSA_BASELINE = {
    "execute_s@tosa-reference": 0.002706,
    "max_lsb@eager_float": 1.32411,
    "max_lsb@fake_quant": 0.0,
    "planned_memory_bytes": 144.0,
    "pte_bytes": 14368.0,
    "snr_db@eager_float": 40.2144,
    "snr_db@fake_quant": 100.0,  # bit-exact (inf), at the 100 dB ceiling
    "top1@eager_float": 1.0,
    "top1@fake_quant": 1.0,
}


def _tosa_run(**changes: object) -> dict[str, Any]:
    """TOSA_RUN with its eager-float metrics, sizes and time changed."""
    record: dict[str, Any] = json.loads(json.dumps(TOSA_RUN))
    eager = record["comparisons"][1]["metrics"][0]
    for key in ("snr_db", "max_lsb", "top1"):
        if key in changes:
            eager[key] = changes.pop(key)
    for key in ("pte_bytes", "planned_memory_bytes"):
        if key in changes:
            record["artifact"][key] = changes.pop(key)
    if "execute_s" in changes:
        record["timings"]["execute_s"] = changes.pop("execute_s")
    record.update(changes)
    return record


def _vela_build(**vela: object) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(json.dumps(VELA_BUILD))
    record["artifact"]["vela"].update(vela)
    return record


def _only(changes: list[Change]) -> Change:
    assert len(changes) == 1, changes
    return changes[0]


# ---------------------------------------------------------------- Limit.parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+2%", Limit(0.02, True, "fail", "+2%")),
        ("-1", Limit(1.0, False, "fail", "-1")),
        ("+0", Limit(0.0, False, "fail", "+0")),
        ("2%", Limit(0.02, True, "fail", "+2%")),  # no sign: written back with '+'
        ("warn +50%", Limit(0.5, True, "warn", "+50%")),
        ("warn: +50%", Limit(0.5, True, "warn", "+50%")),
        ("fail -0.01", Limit(0.01, False, "fail", "-0.01")),
        ("  +1.5 % ", Limit(0.015, True, "fail", "+1.5%")),
    ],
)
def test_limit_text_forms(text: str, expected: Limit) -> None:
    limit = Limit.parse(text, "here")
    assert limit.relative is expected.relative
    assert limit.action == expected.action
    assert limit.text == expected.text
    assert limit.amount == pytest.approx(expected.amount)


def test_limit_table_form() -> None:
    assert Limit.parse({"limit": "+5%", "action": "warn"}, "here") == Limit(
        0.05, True, "warn", "+5%"
    )
    assert Limit.parse({"limit": "warn +5%"}, "here").action == "warn"
    # The table's action is the one that counts.
    assert Limit.parse({"limit": "fail +5%", "action": "warn"}, "here").action == "warn"


@pytest.mark.parametrize("value", ["2 percent", "+2%%", "warn", "", "error +2%", 2, None])
def test_bad_limit_text_names_where_and_the_forms(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        Limit.parse(value, "boards/mine.toml [baseline]: pte_bytes")
    message = str(info.value)
    assert message.startswith("boards/mine.toml [baseline]: pte_bytes: limit ")
    assert "'+2%', '+0', '-1', 'warn +50%'" in message


@pytest.mark.parametrize(
    "value",
    [{"limit": "+2%", "action": "error"}, {"limit": "+2%", "severity": "high"}],
)
def test_bad_limit_table_names_where_and_its_keys(value: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        Limit.parse(value, "marker et_baseline")
    message = str(info.value)
    assert message.startswith("marker et_baseline: a limit table has 'limit' and 'action'")
    assert "('fail' or 'warn')" in message


def test_limit_allows_up_to_its_amount() -> None:
    limit = Limit.parse("+2%", "here")
    assert limit.allows(0.02)
    assert limit.allows(-0.5)  # better is always allowed
    assert not limit.allows(0.0201)
    assert Limit.parse("+0", "here").allows(0.0)
    assert not Limit.parse("+0", "here").allows(1.0)


# ---------------------------------------------------------------- limit_for


@pytest.mark.parametrize(
    ("figure", "text", "action"),
    [
        ("snr_db@eager_float", "-1", "fail"),
        ("max_lsb@fake_quant", "+1", "fail"),
        ("top1@eager_float", "-0.01", "fail"),
        ("vela.cycles_total", "+2%", "fail"),
        ("vela.sram_bytes", "+0", "fail"),
        ("planned_memory_bytes", "+0", "fail"),
        ("pte_bytes", "+2%", "fail"),
        ("pmu.npu_active_cycles@fvp-cycles", "+2%", "fail"),
        ("execute_s@host-wall", "+50%", "warn"),
        ("something.new", "+2%", "fail"),
    ],
)
def test_default_limits(figure: str, text: str, action: str) -> None:
    limit = limit_for(figure)
    assert (limit.text, limit.action) == (text, action)


@pytest.mark.parametrize(
    ("figure", "key"),
    [
        ("snr_db@eager_float", "snr_db@eager_float"),  # exactly
        ("snr_db@eager_float", "snr_db"),  # by base name
        ("vela.cycles_total", "vela.cycles_total"),
        ("vela.cycles_total", "cycles_total"),  # by last part
        ("pmu.npu_active_cycles@fvp-cycles", "npu_active_cycles"),
    ],
)
def test_override_key_forms(figure: str, key: str) -> None:
    # unsigned: the limit takes the figure's worse direction (SNR down, the rest up)
    limit = limit_for(figure, [{key: "warn 7"}])
    assert limit.text == ("-7" if figure.startswith("snr") else "+7")
    assert limit.action == "warn"


def test_exact_override_of_another_reference_does_not_apply() -> None:
    assert limit_for("snr_db@eager_float", [{"snr_db@fake_quant": "-3"}]).text == "-1"


def test_within_one_table_the_exact_name_wins() -> None:
    table_ = {"cycles_total": "+9%", "vela.cycles_total": "+8%"}
    assert limit_for("vela.cycles_total", [table_]).text == "+8%"
    table_ = {"snr_db": "-5", "snr_db@eager_float": "-2"}
    assert limit_for("snr_db@eager_float", [table_]).text == "-2"


def test_the_last_table_naming_a_figure_wins() -> None:
    board_file = {"vela.cycles_total": "+5%"}
    marker = {"cycles_total": "warn +10%"}
    unrelated = {"pte_bytes": "+0"}
    limit = limit_for("vela.cycles_total", [board_file, marker, unrelated])
    assert (limit.text, limit.action) == ("+10%", "warn")
    # ... in either order
    assert limit_for("vela.cycles_total", [marker, board_file]).text == "+5%"


def test_bad_override_names_where() -> None:
    with pytest.raises(ConfigError, match=r"^board x \[baseline\]: limit 'lots'"):
        limit_for("pte_bytes", [{"pte_bytes": "lots"}], where="board x [baseline]")
    with pytest.raises(ConfigError, match=r"^limit of pte_bytes: limit 'lots'"):
        limit_for("pte_bytes", [{"pte_bytes": "lots"}])


def test_limit_with_the_wrong_sign_for_its_figure_is_refused() -> None:
    # Fewer cycles are better, so '-2%' names the better direction.
    with pytest.raises(ConfigError):
        limit_for("vela.cycles_total", [{"cycles_total": "-2%"}])


# ---------------------------------------------------------------- compare_figures


def test_cycles_past_two_percent_is_a_regression() -> None:
    # 1538 -> 1570 cycles: +32 / 1538 = +2.0806%, past the default +2%.
    change = _only(compare_figures({"vela.cycles_total": 1570.0}, {"vela.cycles_total": 1538.0}))
    assert change.kind == "regression"
    assert change.action == "fail"
    assert change.change == pytest.approx(32 / 1538)
    assert change.change == pytest.approx(0.020806, abs=1e-6)
    assert (change.baseline, change.now, change.limit) == (1538.0, 1570.0, "+2%")
    assert change_text(change) == "+2.08%"


def test_cycles_within_two_percent_are_not_reported() -> None:
    # 1538 -> 1568 cycles: +30 / 1538 = +1.95%, within +2%.
    assert compare_figures({"vela.cycles_total": 1568.0}, {"vela.cycles_total": 1538.0}) == []


def test_fewer_cycles_is_an_improvement() -> None:
    # 1538 -> 1500 cycles: -38 / 1538 = -2.47%
    change = _only(compare_figures({"vela.cycles_total": 1500.0}, {"vela.cycles_total": 1538.0}))
    assert change.kind == "improvement"
    assert change_text(change) == "-2.47%"


def test_exactly_at_the_limit_is_allowed() -> None:
    # pte_bytes 5000 -> 5100: +100 / 5000 = +2.00% exactly; 5101 is +2.02%.
    assert compare_figures({"pte_bytes": 5100.0}, {"pte_bytes": 5000.0}) == []
    assert _only(compare_figures({"pte_bytes": 5101.0}, {"pte_bytes": 5000.0})).kind == (
        "regression"
    )


def test_snr_loss_past_one_db_is_a_regression() -> None:
    # 40.2144 -> 39.0 dB: -1.2144 dB, past -1 dB (absolute: SNR is already a log).
    change = _only(compare_figures({"snr_db@eager_float": 39.0}, {"snr_db@eager_float": 40.2144}))
    assert change.kind == "regression"
    assert change.change == pytest.approx(-1.2144)
    assert change_text(change) == "-1.214"
    # 40.2144 -> 39.5 dB: -0.7144 dB, within.
    assert compare_figures({"snr_db@eager_float": 39.5}, {"snr_db@eager_float": 40.2144}) == []


def test_snr_gain_is_an_improvement() -> None:
    # 40.2144 -> 42.0 dB: +1.7856 dB, and higher SNR is better.
    change = _only(compare_figures({"snr_db@eager_float": 42.0}, {"snr_db@eager_float": 40.2144}))
    assert change.kind == "improvement"
    assert change_text(change) == "+1.786"


def test_memory_may_not_grow_at_all() -> None:
    # sram 704 -> 705 bytes: +1 byte against '+0'; 704 -> 703 is an improvement.
    assert _only(compare_figures({"vela.sram_bytes": 705.0}, {"vela.sram_bytes": 704.0})).kind == (
        "regression"
    )
    assert _only(compare_figures({"vela.sram_bytes": 703.0}, {"vela.sram_bytes": 704.0})).kind == (
        "improvement"
    )


def test_growth_from_zero() -> None:
    # Absolute limit: 0 -> 16 flash bytes is +16 against '+0'.
    change = _only(
        compare_figures({"vela.off_chip_flash_bytes": 16.0}, {"vela.off_chip_flash_bytes": 0.0})
    )
    assert (change.kind, change.change, change_text(change)) == ("regression", 16.0, "+16")
    # Relative limit: 0 -> 100 bytes is an infinite fraction of 0.
    change = _only(compare_figures({"pte_bytes": 100.0}, {"pte_bytes": 0.0}))
    assert (change.kind, change.change, change_text(change)) == ("regression", math.inf, "+inf")


def test_max_lsb_may_grow_by_one_step() -> None:
    # 0 -> 1 step: within +1; 0 -> 2 steps: past it.
    assert compare_figures({"max_lsb@fake_quant": 1.0}, {"max_lsb@fake_quant": 0.0}) == []
    change = _only(compare_figures({"max_lsb@fake_quant": 2.0}, {"max_lsb@fake_quant": 0.0}))
    assert (change.kind, change.change) == ("regression", 2.0)


def test_losing_an_exact_match_is_a_regression() -> None:
    # SNR inf (bit-exact against fake-quant) counts as the 100 dB ceiling -> 60 dB: -40 dB.
    change = _only(compare_figures({"snr_db@fake_quant": 60.0}, {"snr_db@fake_quant": math.inf}))
    assert change.kind == "regression"
    assert change.change == -40.0
    assert change_text(change) == "-40"


def test_becoming_an_exact_match_is_an_improvement() -> None:
    change = _only(compare_figures({"snr_db@fake_quant": math.inf}, {"snr_db@fake_quant": 60.0}))
    assert (change.kind, change.change) == ("improvement", 40.0)  # 60 -> the 100 dB ceiling


def test_exact_match_both_times_is_no_change() -> None:
    assert compare_figures({"snr_db@fake_quant": math.inf}, {"snr_db@fake_quant": math.inf}) == []


def test_snr_above_the_ceiling_is_float_noise_and_never_a_change() -> None:
    # 141 dB (a float program's rounding noise on one CPU) against bit-exact on another
    assert compare_figures({"snr_db@eager_float": 141.2}, {"snr_db@eager_float": math.inf}) == []
    assert compare_figures({"snr_db@eager_float": 137.5}, {"snr_db@eager_float": 156.2}) == []


def test_rounding_to_six_digits_is_never_a_change() -> None:
    # The baseline keeps 6 significant digits; the run's full values round to them.
    now = {
        "snr_db@eager_float": 40.214426389205535,  # -> 40.2144
        "max_lsb@eager_float": 1.3241113046802797,  # -> 1.32411
        "vela.sram_bytes": 704.0000001,  # -> 704, even against a '+0' limit
        "vela.inference_time_s": 1.5380004e-06,  # -> 1.538e-06
    }
    baseline = {
        "snr_db@eager_float": 40.2144,
        "max_lsb@eager_float": 1.32411,
        "vela.sram_bytes": 704.0,
        "vela.inference_time_s": 1.538e-06,
    }
    assert compare_figures(now, baseline) == []


def test_real_record_against_its_own_baseline_is_no_change() -> None:
    baseline = Baseline({(TOSA_TEST, "tosa"): dict(TOSA_BASELINE)})
    assert baseline.changes_for(record_of(TOSA_RUN)) == []
    assert baseline.changes_for(record_of({**TOSA_RUN, "board": "host"})) is None  # no entry


def test_execute_time_below_the_noise_floor_is_not_a_change() -> None:
    # 0.2 ms -> 0.35 ms: +75% (past warn +50%), but only 0.15 ms <= the 5 ms floor.
    assert compare_figures({"execute_s@host-wall": 0.00035}, {"execute_s@host-wall": 0.0002}) == []
    # ... and 0.2 ms -> 0.1 ms is no improvement either.
    assert compare_figures({"execute_s@host-wall": 0.0001}, {"execute_s@host-wall": 0.0002}) == []


def test_slower_execution_past_the_floor_only_warns() -> None:
    # 10 ms -> 16 ms: +6 ms (past the 5 ms floor) and +60% (past +50%): a warning.
    change = _only(compare_figures({"execute_s@host-wall": 0.016}, {"execute_s@host-wall": 0.010}))
    assert (change.kind, change.action) == ("warning", "warn")
    assert change_text(change) == "+60.00%"


def test_warn_override_turns_a_regression_into_a_warning() -> None:
    # 1538 -> 1570 cycles (+2.08%) under 'warn +2%'.
    change = _only(
        compare_figures(
            {"vela.cycles_total": 1570.0},
            {"vela.cycles_total": 1538.0},
            [{"cycles_total": "warn +2%"}],
        )
    )
    assert (change.kind, change.action, change.limit) == ("warning", "warn", "+2%")


def test_new_and_missing_figures() -> None:
    changes = compare_figures(
        {"pte_bytes": 4640.0, "vela.cycles_total": 1538.0},
        {"pte_bytes": 4640.0, "top1@eager_float": 1.0},
    )
    assert [(c.figure, c.kind, c.baseline, c.now, c.change) for c in changes] == [
        ("top1@eager_float", "missing", 1.0, None, None),
        ("vela.cycles_total", "new", None, 1538.0, None),
    ]


def test_changes_are_sorted_by_figure() -> None:
    # cycles 1538 -> 2000 (+30%), sram 704 -> 800 (+96 bytes), pte 4640 -> 4000 (-13.8%)
    changes = compare_figures(
        {"vela.sram_bytes": 800.0, "pte_bytes": 4000.0, "vela.cycles_total": 2000.0},
        {"vela.sram_bytes": 704.0, "pte_bytes": 4640.0, "vela.cycles_total": 1538.0},
    )
    assert [(c.figure, c.kind) for c in changes] == [
        ("pte_bytes", "improvement"),
        ("vela.cycles_total", "regression"),
        ("vela.sram_bytes", "regression"),
    ]


# ---------------------------------------------------------------- table, change_text


def test_table_lists_regressions_and_warnings_by_default() -> None:
    changes = compare_figures(
        {"vela.cycles_total": 1570.0, "pte_bytes": 4000.0, "execute_s@x": 0.016},
        {"vela.cycles_total": 1538.0, "pte_bytes": 4640.0, "execute_s@x": 0.010},
    )
    lines = table(changes).splitlines()
    assert lines[0].split() == ["figure", "baseline", "now", "change", "limit"]
    assert [line.split() for line in lines[1:]] == [
        ["execute_s@x", "0.01", "0.016", "+60.00%", "+50%", "warning"],
        ["vela.cycles_total", "1538", "1570", "+2.08%", "+2%", "regression"],
    ]
    assert all(line == line.rstrip() for line in lines)
    # columns line up: every row's second cell starts where the header's does
    start = lines[0].index("baseline")
    assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:])
    improvements = table(changes, ("improvement",)).splitlines()
    assert [line.split()[0] for line in improvements[1:]] == ["pte_bytes"]


def test_table_of_new_and_missing_shows_dashes() -> None:
    changes = compare_figures({"pte_bytes": 4640.0}, {"top1@eager_float": 1.0})
    rows = [line.split() for line in table(changes, ("new", "missing")).splitlines()[1:]]
    assert rows == [
        ["pte_bytes", "-", "4640", "-", "+2%", "new"],
        ["top1@eager_float", "1", "-", "-", "-0.01", "missing"],
    ]


def test_change_text_forms() -> None:
    def text(change: float | None, limit: str) -> str:
        return change_text(Change("f", 1.0, 2.0, change, limit, "regression", "fail"))

    assert text(0.0208062, "+2%") == "+2.08%"
    assert text(-0.5, "warn +50%") == "-50.00%"
    assert text(math.inf, "+2%") == "+inf"
    assert text(-1.52, "-1") == "-1.52"
    assert text(123456.0, "+0") == "+1.235e+05"
    assert text(None, "+0") == "-"


# ---------------------------------------------------------------- Baseline.load


def test_load_a_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(ConfigError) as info:
        Baseline.load(path)
    message = str(info.value)
    assert message.startswith(f"baseline {path}: cannot read it (No such file or directory)")
    assert "et-hil baseline update RESULTS --baseline FILE" in message


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '{"test": "t", "figures": {}}',  # no board
        '{"test": "t", "board": "host", "figures": {"pte_bytes": "big"}}',
        '{"test": "t", "board": "host", "figures": {"pte_bytes": null}}',
        '{"test": "t", "board": "host", "figures": [1]}',
        "[1, 2]",
    ],
)
def test_load_names_the_file_and_line_of_a_bad_entry(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "baseline.jsonl"
    good = '{"test": "a", "board": "host", "figures": {"pte_bytes": 1}}'
    path.write_text(f"{good}\n\n{bad}\n")  # a blank line 2, then line 3
    with pytest.raises(ConfigError) as info:
        Baseline.load(path)
    assert str(info.value).startswith(f"baseline {path}:3: not a baseline entry")


def test_load_reads_entries_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "baseline.jsonl"
    path.write_text(
        '{"test": "a", "board": "host", "figures": {"pte_bytes": 1, "snr_db@x": "inf"}}\n'
        "\n"
        '{"test": "a", "board": "tosa", "figures": {"snr_db@x": Infinity}}\n'
    )
    baseline = Baseline.load(path)
    assert baseline.path == path
    assert baseline.entries == {
        ("a", "host"): {"pte_bytes": 1.0, "snr_db@x": math.inf},
        ("a", "tosa"): {"snr_db@x": math.inf},
    }
    assert baseline.entry("a", "tosa") == {"snr_db@x": math.inf}
    assert baseline.entry("a", "corstone320") is None


# ---------------------------------------------------------------- Baseline.update


def test_update_adds_the_figures_of_passed_and_built_tests() -> None:
    baseline = Baseline()
    counts = baseline.update(typed([TOSA_RUN, VELA_BUILD]))
    assert counts == {"added": 2, "changed": 0, "kept": 0}
    assert baseline.entries[(TOSA_TEST, "tosa")] == TOSA_BASELINE
    assert baseline.entries[(VELA_TEST, "corstone320")] == {
        "planned_memory_bytes": 144.0,
        "pte_bytes": 4640.0,
        "vela.cycles_npu": 760.0,
        "vela.cycles_total": 1538.0,
        "vela.inference_time_s": 1.538e-06,
        "vela.off_chip_flash_bytes": 0.0,
        "vela.sram_bytes": 704.0,
    }


def test_update_keeps_unchanged_entries_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "baseline.jsonl"
    first = Baseline()
    first.update(typed([TOSA_RUN, VELA_BUILD]))
    first.write(path)
    text = path.read_bytes()
    # A second run whose figures moved, each within its limit:
    #   snr 40.2144 -> 40.5 dB: +0.2856, within 1 dB
    #   max_lsb 1.32411 -> 1.9: +0.576, within 1 step
    #   pte 14368 -> 14400 bytes: +0.22%, within 2%
    #   execute 2.706 ms -> 3.5 ms: +29%, within 50%
    #   cycles 1538 -> 1510: -1.8%, within 2%
    again = Baseline.load(path)
    counts = again.update(
        typed(
            [
                _tosa_run(snr_db=40.5, max_lsb=1.9, pte_bytes=14400, execute_s=0.0035),
                _vela_build(cycles_total=1510),
            ]
        )
    )
    assert counts == {"added": 0, "changed": 0, "kept": 2}
    again.write(path)
    assert path.read_bytes() == text


def test_update_rewrites_a_figure_past_its_limit() -> None:
    baseline = Baseline({(TOSA_TEST, "tosa"): dict(TOSA_BASELINE)})
    # planned memory 144 -> 160 bytes: '+0' allows no move either way;
    # snr 40.2144 -> 38.0 dB: -2.2144, past 1 dB; pte +0.22% stays.
    counts = baseline.update(
        typed([_tosa_run(planned_memory_bytes=160, snr_db=38.0, pte_bytes=14400)])
    )
    assert counts == {"added": 0, "changed": 1, "kept": 0}
    entry = baseline.entries[(TOSA_TEST, "tosa")]
    assert entry["planned_memory_bytes"] == 160.0
    assert entry["snr_db@eager_float"] == 38.0
    assert entry["pte_bytes"] == 14368.0


def test_update_takes_an_improvement_past_the_limit() -> None:
    baseline = Baseline({(VELA_TEST, "corstone320"): {"vela.cycles_total": 1538.0}})
    # 1538 -> 1400 cycles: -8.97%, past 2% the better way: the new value is taken.
    baseline.update(typed([_vela_build(cycles_total=1400)]))
    assert baseline.entries[(VELA_TEST, "corstone320")]["vela.cycles_total"] == 1400.0


def test_update_rounds_to_six_digits() -> None:
    baseline = Baseline()
    baseline.update(typed([_tosa_run(snr_db=12.3456789, execute_s=0.0123456789)]))
    entry = baseline.entries[(TOSA_TEST, "tosa")]
    assert entry["snr_db@eager_float"] == 12.3457
    assert entry["execute_s@tosa-reference"] == 0.0123457


def test_update_uses_the_boards_limits() -> None:
    # pte 14368 -> 14400 bytes is within the default +2%, not within this board's '+0'.
    baseline = Baseline({(TOSA_TEST, "tosa"): dict(TOSA_BASELINE)})
    baseline.update(
        typed([_tosa_run(pte_bytes=14400)]),
        overrides_for=lambda board: [{"pte_bytes": "+0"}] if board == "tosa" else [],
    )
    assert baseline.entries[(TOSA_TEST, "tosa")]["pte_bytes"] == 14400.0


def test_build_only_record_keeps_the_run_figures() -> None:
    # The entry was written from a full run on the FVP; a --et-build-only run only has
    # the build's figures: cycles 1538 -> 1700 (+10.5%) is taken, SNR is kept.
    run_figures = {"snr_db@eager_float": 38.5, "execute_s@fvp-cycles": 0.25}
    baseline = Baseline({(VELA_TEST, "corstone320"): {"vela.cycles_total": 1538.0, **run_figures}})
    counts = baseline.update(typed([_vela_build(cycles_total=1700)]))
    assert counts["changed"] == 1
    entry = baseline.entries[(VELA_TEST, "corstone320")]
    assert entry["vela.cycles_total"] == 1700.0
    assert entry["snr_db@eager_float"] == 38.5
    assert entry["execute_s@fvp-cycles"] == 0.25
    assert entry["vela.sram_bytes"] == 704.0  # and the build's new figures are added


def test_run_record_replaces_the_entrys_figures() -> None:
    # A record that ran gives all its figures: one it no longer gives is dropped.
    old = {**TOSA_BASELINE, "vela.cycles_total": 1538.0}
    baseline = Baseline({(TOSA_TEST, "tosa"): old})
    baseline.update(typed([TOSA_RUN]))
    assert baseline.entries[(TOSA_TEST, "tosa")] == TOSA_BASELINE


@pytest.mark.parametrize("outcome", ["failed", "error"])
def test_failed_tests_are_not_taken(outcome: str) -> None:
    baseline = Baseline({(TOSA_TEST, "tosa"): dict(TOSA_BASELINE)})
    counts = baseline.update(
        typed(
            [
                _tosa_run(outcome=outcome, snr_db=3.0, pte_bytes=99999),
                {**VELA_BUILD, "outcome": outcome},
            ]
        )
    )
    assert counts == {"added": 0, "changed": 0, "kept": 1}
    assert baseline.entries == {(TOSA_TEST, "tosa"): TOSA_BASELINE}


def test_skipped_before_building_is_not_taken() -> None:
    # Real record: skipped before anything was built (no figures).
    skipped: dict[str, Any] = {
        "test": "suites/test_edge_cases.py::test_edge_float[corstone320-embedding_int64_ids]",
        "board": "corstone320",
        "outcome": "skipped",
        "ran": None,
        "artifact": {"pte_bytes": None, "planned_memory_bytes": None, "vela": None},
        "comparisons": [],
    }
    baseline = Baseline()
    assert baseline.update(typed([skipped])) == {"added": 0, "changed": 0, "kept": 0}
    assert baseline.entries == {}


def test_entries_of_tests_not_in_the_records_are_kept() -> None:
    other = {"pte_bytes": 1000.0}
    baseline = Baseline({("suites/other.py::t[host]", "host"): other})
    counts = baseline.update(typed([TOSA_RUN]))
    assert counts == {"added": 1, "changed": 0, "kept": 1}
    assert baseline.entries[("suites/other.py::t[host]", "host")] == other


# ---------------------------------------------------------------- dumps, write


def test_dumps_is_one_sorted_entry_per_line() -> None:
    baseline = Baseline(
        {
            ("b.py::t", "tosa"): {"pte_bytes": 2.0, "max_lsb@x": 1.0},
            ("a.py::t", "tosa"): {"pte_bytes": 3.0},
            ("a.py::t", "host"): {"pte_bytes": 4.0},
        }
    )
    assert baseline.dumps() == (
        '{"board": "host", "figures": {"pte_bytes": 4.0}, "test": "a.py::t"}\n'
        '{"board": "tosa", "figures": {"pte_bytes": 3.0}, "test": "a.py::t"}\n'
        '{"board": "tosa", "figures": {"max_lsb@x": 1.0, "pte_bytes": 2.0}, "test": "b.py::t"}\n'
    )
    assert Baseline().dumps() == ""


def test_dumps_does_not_depend_on_the_order_of_updates() -> None:
    one, two = Baseline(), Baseline()
    one.update(typed([TOSA_RUN, VELA_BUILD]))
    two.update(typed([VELA_BUILD, TOSA_RUN]))
    assert one.dumps() == two.dumps()


def test_written_file_loads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "baseline.jsonl"
    baseline = Baseline()
    baseline.update(typed([TOSA_RUN, VELA_BUILD]))
    baseline.write(path)
    assert not path.with_name(path.name + ".partial").exists()
    loaded = Baseline.load(path)
    assert loaded.entries == baseline.entries  # including snr inf
    assert loaded.dumps() == path.read_text()


def test_written_file_is_strict_json() -> None:
    baseline = Baseline()
    baseline.update(typed([TOSA_RUN]))

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    for line in baseline.dumps().splitlines():
        json.loads(line, parse_constant=refuse)


def test_a_change_read_back_from_a_results_file_takes_infinities_as_strings() -> None:
    # the results writer writes inf as "inf"; the summary and the report read it back
    change = Change.from_dict(
        {
            "figure": "x",
            "baseline": "inf",
            "now": 60.0,
            "change": "-inf",
            "limit": "-1",
            "kind": "regression",
            "action": "fail",
        }
    )
    assert (change.baseline, change.change) == (math.inf, -math.inf)
    assert fmt(change.baseline) == "inf"
    assert change_text(change) == "-inf"


def test_override_keys_must_name_a_figure_and_pmu_limits_apply() -> None:
    assert check_overrides({"cycles_totl": "+5%"}, "[baseline]") == [
        "[baseline]: cycles_totl: no such figure (figures: snr_db, max_lsb, top1, "
        "vela.cycles_total, vela.cycles_npu, vela.inference_time_s, vela.sram_bytes, "
        "vela.off_chip_flash_bytes, pte_bytes, planned_memory_bytes, execute_s, pmu, "
        "pmu.<counter>, their last parts, and NAME@QUALIFIER)"
    ]
    assert check_overrides({"pmu": "+5%", "cpu_cycles": "+1%"}, "[baseline]") == []
    # a PMU counter is worse when it grows: '-5%' is refused before any run
    [problem] = check_overrides({"cpu_cycles": "-5%"}, "[baseline]")
    assert "a larger cpu_cycles is worse" in problem
    assert limit_for("pmu.cpu_cycles@fvp-cycles", [{"pmu": "+5%"}]).text == "+5%"


def test_update_accepts_a_test_failed_only_by_its_regression() -> None:
    # the reviewer's way to accept a deliberate change: update from the failing run
    old = {**TOSA_BASELINE, "pte_bytes": 10000.0}
    baseline = Baseline({(TOSA_TEST, "tosa"): old})
    failed = {**TOSA_RUN, "outcome": "failed", "failure_class": "regression"}
    assert baseline.update(typed([failed])) == {"added": 0, "changed": 1, "kept": 0}
    assert baseline.entries[(TOSA_TEST, "tosa")]["pte_bytes"] == 14368.0


def test_whole_numbers_are_kept_exact() -> None:
    # a plan of 2,097,153 bytes is one byte more than 2 MiB: 6 digits would hide it
    baseline = Baseline()
    record = {**VELA_BUILD, "artifact": {**VELA_BUILD["artifact"], "planned_memory_bytes": 2097153}}
    baseline.update(typed([record]))
    assert baseline.entries[(VELA_TEST, "corstone320")]["planned_memory_bytes"] == 2097153.0


def test_the_committed_nightly_baseline_loads() -> None:
    path = Path(__file__).resolve().parent.parent / "baselines" / "nightly.jsonl"
    baseline = Baseline.load(path)
    assert len(baseline.entries) == len(path.read_text().splitlines())
    # every entry's figures are numbers, infinities (written "inf") included
    assert all(isinstance(v, float) for e in baseline.entries.values() for v in e.values())
    # and written back unchanged: the file is its own dumps
    assert baseline.dumps() == path.read_text()
