"""Baselines and quarantine in pytest runs: deliberate regressions fail with the table.

Each regression is made the way it happens in a team: a board file's Vela
system config with a slower clock, a model that grew a layer, a change that
costs accuracy behind a loosened tolerance. The baseline is written from a real
run with ``et-hil baseline update`` and the next run compares with it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from et_hil.cli import main as et_hil

# A copy of the built-in corstone320 under another name: the baseline keys on it.
LAB = """
name = "lab320"
kind = "fvp"
target = "ethos-u85-256"
[vela]
system_config = "{config}"
memory_mode = "Shared_Sram"
extra_flags = ["--arena-cache-size=2097152"]
[fvp]
platform = "corstone320"
{extra}
"""

TEST_MODEL = """
import os

import torch
from torch import nn

from tinymodels import tiny, x


def model():
    base = tiny()
    if os.environ.get("ET_EXTRA_LAYER"):
        torch.manual_seed(1)
        return nn.Sequential(base, nn.Linear(4, 4)).eval()  # the layer someone added
    return base


def test_model(et_check):
    et_check(model(), x(), quantize=True)
"""


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def lab(pytester: pytest.Pytester, config: str = "Ethos_U85_SYS_DRAM_Mid", extra: str = "") -> str:
    pytester.makefile(".toml", lab=LAB.format(config=config, extra=extra))
    return "--et-board-file=lab.toml"


def baseline_from(pytester: pytest.Pytester, results: str) -> Path:
    """``et-hil baseline update`` over a run's results (as a user writes the baseline)."""
    baseline = pytester.path / "baseline.jsonl"
    assert (
        et_hil(["baseline", "update", str(pytester.path / results), "--baseline", str(baseline)])
        == 0
    )
    return baseline


@pytest.mark.timeout(240)  # took 79 s
def test_a_model_that_grew_a_layer_fails_with_the_table_and_shrinking_is_an_improvement(
    et_pytester, monkeypatch
):
    et_pytester.makepyfile(test_model=TEST_MODEL)
    board = [lab(et_pytester), "--et-board=lab320", "--et-build-only"]
    et_pytester.runpytest_subprocess(*board, "--et-results=base.jsonl").assert_outcomes(skipped=1)
    baseline = baseline_from(et_pytester, "base.jsonl")
    [entry] = [json.loads(line) for line in baseline.read_text().splitlines()]
    assert entry["board"] == "lab320"
    assert entry["figures"]["vela.cycles_total"] > 0

    monkeypatch.setenv("ET_EXTRA_LAYER", "1")
    result = et_pytester.runpytest_subprocess(
        *board, f"--et-baseline={baseline}", "--et-results=grown.jsonl"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*figure(s) regressed against baseline*::test_model[[]lab320[]] on lab320*",
            "*figure*baseline*now*change*limit*",
            "*vela.cycles_total*+2%*regression*",
            "*baseline *baseline.jsonl: * regressions, *",
        ]
    )
    [record] = records(et_pytester.path / "grown.jsonl")
    assert record["outcome"] == "failed"
    assert record["failure_class"] == "regression"
    kinds = {c["figure"]: c["kind"] for c in record["baseline"]["changes"]}
    assert kinds["vela.cycles_total"] == "regression"
    assert kinds["pte_bytes"] == "regression"  # one more weight matrix in the program

    # The other way round: a baseline of the grown model (from a run without
    # --et-baseline), and the smaller model improves on it without failing.
    baseline.unlink()
    et_pytester.runpytest_subprocess(*board, "--et-results=grown2.jsonl").assert_outcomes(skipped=1)
    baseline_from(et_pytester, "grown2.jsonl")
    monkeypatch.delenv("ET_EXTRA_LAYER")
    result = et_pytester.runpytest_subprocess(
        *board, f"--et-baseline={baseline}", "--et-results=small.jsonl"
    )
    result.assert_outcomes(skipped=1)  # build-only; no regression, so not failed
    result.stdout.fnmatch_lines(["*baseline *: 0 regressions, 0 warnings, * improvements*"])
    [record] = records(et_pytester.path / "small.jsonl")
    improved = {c["figure"] for c in record["baseline"]["changes"] if c["kind"] == "improvement"}
    assert {"vela.cycles_total", "pte_bytes"} <= improved


@pytest.mark.timeout(180)  # took 49 s
def test_a_board_file_with_a_slower_vela_clock_fails_unless_its_limit_warns(
    et_pytester,
):
    et_pytester.makepyfile(test_model=TEST_MODEL)
    run = ["--et-board=lab320", "--et-build-only"]
    lab(et_pytester)
    et_pytester.runpytest_subprocess(
        "--et-board-file=lab.toml", *run, "--et-results=base.jsonl"
    ).assert_outcomes(skipped=1)
    baseline = baseline_from(et_pytester, "base.jsonl")

    # Ethos_U85_SYS_DRAM_Low runs the NPU at 500 MHz, Mid (the baseline's) at 1 GHz.
    lab(et_pytester, config="Ethos_U85_SYS_DRAM_Low")
    result = et_pytester.runpytest_subprocess(
        "--et-board-file=lab.toml", *run, f"--et-baseline={baseline}", "--et-results=slow.jsonl"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vela.inference_time_s*+2%*regression*"])
    [record] = records(et_pytester.path / "slow.jsonl")
    [change] = [c for c in record["baseline"]["changes"] if c["figure"] == "vela.inference_time_s"]
    # fewer Hz, more seconds: at least +50% (cycles also change with the memory's speed)
    assert change["change"] > 0.5

    # The board file may say the figure only warns.
    lab(
        et_pytester,
        config="Ethos_U85_SYS_DRAM_Low",
        extra='[baseline]\ninference_time_s = "warn +2%"',
    )
    result = et_pytester.runpytest_subprocess(
        "--et-board-file=lab.toml", *run, f"--et-baseline={baseline}", "--et-results=warned.jsonl"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*0 regressions, * warnings*", "*warning*vela.inference_time_s*"])


@pytest.mark.timeout(180)  # took 40 s
def test_accuracy_lost_behind_a_loosened_tolerance_is_caught_by_the_baseline(
    et_pytester, monkeypatch
):
    et_pytester.makepyfile(
        test_snr="""
        import os

        from tinymodels import tiny, x


        def test_snr(et_check):
            calibration = None
            if os.environ.get("ET_WIDE_CALIBRATION"):
                # A change that widens the quantization range 30-fold: coarser steps,
                # less SNR against eager float; the loosened tolerance lets it pass.
                calibration = [(x(seed=s)[0] * 30,) for s in range(4)]
            et_check(tiny(), x(), quantize=True, calibration=calibration,
                     vs_float={"min_snr_db": 0, "max_lsb": 1e9})
        """
    )
    et_pytester.runpytest_subprocess("--et-board=host", "--et-results=base.jsonl").assert_outcomes(
        passed=1
    )
    baseline = baseline_from(et_pytester, "base.jsonl")
    monkeypatch.setenv("ET_WIDE_CALIBRATION", "1")
    result = et_pytester.runpytest_subprocess(
        "--et-board=host", f"--et-baseline={baseline}", "--et-results=now.jsonl"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*snr_db@eager_float*-1*regression*"])
    [record] = records(et_pytester.path / "now.jsonl")
    [snr] = [c for c in record["baseline"]["changes"] if c["figure"] == "snr_db@eager_float"]
    assert snr["change"] < -1.0  # dB, past the default -1 dB limit


def quarantine_file(pytester: pytest.Pytester, expires: str, test: str = "*test_known*") -> None:
    pytester.makefile(
        ".toml",
        quarantine=textwrap.dedent(
            f"""
            [[quarantine]]
            test = "{test}"
            board = "host"
            reason = "the runtime rounds this op differently"
            issue = "https://example.invalid/issues/7"
            expires = {expires}
            """
        ),
    )


KNOWN = """
def test_known(board):
    assert False, "the known failure"

def test_other(board):
    pass
"""


def test_a_quarantined_failure_runs_is_recorded_and_does_not_fail_the_run(et_pytester):
    et_pytester.makepyfile(KNOWN)
    quarantine_file(et_pytester, "2999-12-31")
    result = et_pytester.runpytest("--et-quarantine=quarantine.toml", "-rx")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "host *passed 1, failed 0, errors 0, skipped 0, quarantined 1;*",
            "*quarantine: 1 known failure(s) did not fail the run*",
            "*quarantined until 2999-12-31: the runtime rounds*",
        ]
    )
    known = [
        r
        for r in records(et_pytester.path / "et-hil-results" / "results.jsonl")
        if "known" in r["test"]
    ]
    [record] = known
    assert record["outcome"] == "failed"  # the true outcome stays in the record
    assert "the known failure" in record["message"]
    assert record["quarantine"]["issue"] == "https://example.invalid/issues/7"
    assert record["quarantine"]["expired"] is False


def test_an_expired_quarantine_entry_fails_loudly(et_pytester):
    et_pytester.makepyfile(KNOWN)
    quarantine_file(et_pytester, "2020-01-31")
    result = et_pytester.runpytest("--et-quarantine=quarantine.toml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*quarantine entry *quarantine.toml:[[][[]quarantine[]][]] #1 expired on 2020-01-31*"]
    )


def test_a_quarantined_test_that_passes_says_to_drop_its_entry(et_pytester):
    et_pytester.makepyfile(KNOWN)
    quarantine_file(et_pytester, "2999-12-31", test="*test_other*")
    result = et_pytester.runpytest("--et-quarantine=quarantine.toml")
    result.assert_outcomes(passed=1, failed=1)  # test_known is not quarantined here
    result.stdout.fnmatch_lines(["*passed while quarantined (drop its entry): *test_other*"])


def test_a_bad_quarantine_file_is_a_usage_error_naming_entry_and_field(et_pytester):
    et_pytester.makepyfile(KNOWN)
    et_pytester.makefile(".toml", quarantine='[[quarantine]]\ntest = "x"\nexpires = "soon"\n')
    result = et_pytester.runpytest("--et-quarantine=quarantine.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*quarantine file *quarantine.toml*[[]quarantine[]][]] #1: missing reason, issue*"]
    )


def test_a_bad_baseline_limit_in_a_marker_is_a_usage_error(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.et_baseline(cycles_total="fast please")
        def test_x(board):
            pass
        """
    )
    result = et_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_x*et_baseline: cycles_total: limit 'fast please' is not one of*"]
    )
