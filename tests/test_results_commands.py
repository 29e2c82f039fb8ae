"""Tests of the ``et-hil merge`` and ``et-hil baseline`` commands (et_hil.report.commands)
through et_hil.cli.main: exit codes, what they print, the files they write."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from et_hil.cli import main
from tests.report_records import TOSA_RUN, TOSA_TEST, VELA_BUILD, VELA_TEST


def results(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def sharded(record: dict[str, Any], shard: str) -> dict[str, Any]:
    return {**record, "shard": shard}


# ---------------------------------------------------------------- et-hil merge


def test_merge_names_a_shard_that_never_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = results(tmp_path / "shard-1.jsonl", sharded(TOSA_RUN, "1/2"))
    out, junit = tmp_path / "merged.jsonl", tmp_path / "junit.xml"
    assert main(["merge", str(one), "-o", str(out), "--junit", str(junit)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "missing: board tosa: shard(s) 2/2 never reported a record" in lines
    assert f"merged 1 records (tosa) into {out} and {junit}" in lines
    # the files are written all the same
    assert [json.loads(line)["test"] for line in out.read_text().splitlines()] == [TOSA_TEST]
    assert ET.parse(junit).getroot().find("testsuite").get("tests") == "1"  # type: ignore[union-attr]


def test_merge_allow_missing_exits_0_and_still_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = results(tmp_path / "shard-1.jsonl", sharded(TOSA_RUN, "1/2"))
    out = tmp_path / "merged.jsonl"
    assert main(["merge", str(one), "-o", str(out), "--allow-missing"]) == 0
    assert "missing: board tosa: shard(s) 2/2 never reported a record" in capsys.readouterr().out


def test_merge_of_every_shard_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = results(tmp_path / "shard-1.jsonl", sharded(TOSA_RUN, "1/2"))
    two = results(tmp_path / "shard-2.jsonl", sharded({**VELA_BUILD, "board": "tosa"}, "2/2"))
    again = results(tmp_path / "again.jsonl", sharded(TOSA_RUN, "1/2"))
    out = tmp_path / "merged.jsonl"
    assert main(["merge", str(one), str(two), str(again), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "missing:" not in text
    assert f"merged 2 records (tosa) into {out}" in text.splitlines()
    assert f"       1 records  {one}" in text.splitlines()
    assert "dropped 1 duplicate record(s); 0 record(s) of another run" in text
    merged = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["test"], r["board"]) for r in merged] == sorted(
        [(VELA_TEST, "tosa"), (TOSA_TEST, "tosa")]
    )


def test_merge_names_an_expected_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = results(tmp_path / "r.jsonl", TOSA_RUN)
    out = tmp_path / "merged.jsonl"
    assert main(["merge", str(one), "-o", str(out), "--expect-board", "corstone320"]) == 1
    assert "missing: board corstone320 never reported a record" in capsys.readouterr().out


def test_merge_of_a_missing_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = results(tmp_path / "shard-1.jsonl", sharded(TOSA_RUN, "1/2"))
    gone = tmp_path / "shard-2.jsonl"
    out = tmp_path / "merged.jsonl"
    assert main(["merge", str(one), str(gone), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"et-hil: error: results file {gone} does not exist")
    assert not out.exists()


# ---------------------------------------------------------------- et-hil baseline


def test_baseline_update_then_compare_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = results(tmp_path / "run.jsonl", TOSA_RUN, VELA_BUILD)
    base = tmp_path / "baseline.jsonl"
    assert main(["baseline", "update", str(run), "--baseline", str(base)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {base}: 2 entries (2 added, 0 changed, 0 kept)"
    ]
    lines = base.read_text().splitlines()
    assert [(json.loads(x)["test"], json.loads(x)["board"]) for x in lines] == [
        (VELA_TEST, "corstone320"),
        (TOSA_TEST, "tosa"),
    ]
    assert main(["baseline", "compare", str(run), "--baseline", str(base)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"0 regression(s) against {base} over 2 records"
    ]


def test_baseline_update_again_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = results(tmp_path / "run.jsonl", TOSA_RUN, VELA_BUILD)
    base = tmp_path / "baseline.jsonl"
    assert main(["baseline", "update", str(run), "--baseline", str(base)]) == 0
    text = base.read_bytes()
    assert main(["baseline", "update", str(run), "--baseline", str(base)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"wrote {base}: 2 entries (0 added, 0 changed, 2 kept)"
    )
    assert base.read_bytes() == text


def test_baseline_compare_fails_on_ten_percent_more_cycles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "baseline.jsonl"
    before = results(tmp_path / "before.jsonl", TOSA_RUN, VELA_BUILD)
    assert main(["baseline", "update", str(before), "--baseline", str(base)]) == 0
    capsys.readouterr()
    # Vela cycles up 10%: 1538 -> 1691.8, +10.00% against the default +2%.
    slower = json.loads(json.dumps(VELA_BUILD))
    slower["artifact"]["vela"]["cycles_total"] = 1538 * 1.1
    after = results(tmp_path / "after.jsonl", TOSA_RUN, slower)
    assert main(["baseline", "compare", str(after), "--baseline", str(base)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{VELA_TEST} on corstone320:"
    assert lines[1].split() == ["figure", "baseline", "now", "change", "limit"]
    assert lines[2].split() == [
        "vela.cycles_total",
        "1538",
        "1691.8",
        "+10.00%",
        "+2%",
        "regression",
    ]
    assert lines[-1] == f"1 regression(s) against {base} over 2 records"
    assert len(lines) == 4  # the TOSA record did not move


def test_baseline_compare_shows_improvements_without_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "baseline.jsonl"
    before = results(tmp_path / "before.jsonl", VELA_BUILD)
    assert main(["baseline", "update", str(before), "--baseline", str(base)]) == 0
    capsys.readouterr()
    # SRAM 704 -> 640 bytes: -64 bytes, an improvement against '+0'.
    smaller = json.loads(json.dumps(VELA_BUILD))
    smaller["artifact"]["vela"]["sram_bytes"] = 640
    after = results(tmp_path / "after.jsonl", smaller)
    assert main(["baseline", "compare", str(after), "--baseline", str(base)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["vela.sram_bytes", "704", "640", "-64", "+0", "improvement"]
    assert lines[-1] == f"0 regression(s) against {base} over 1 records"


@pytest.mark.parametrize("action", ["update", "compare"])
def test_baseline_of_a_missing_results_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    gone = tmp_path / "never-written.jsonl"
    base = tmp_path / "baseline.jsonl"
    assert main(["baseline", action, str(gone), "--baseline", str(base)]) == 2
    assert capsys.readouterr().err.strip() == (f"et-hil: error: results file {gone} does not exist")
    assert not base.exists()


def test_baseline_of_an_empty_results_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    base = tmp_path / "baseline.jsonl"
    assert main(["baseline", "update", str(empty), "--baseline", str(base)]) == 2
    assert f"results file {empty} has no records" in capsys.readouterr().err


def test_baseline_compare_without_a_baseline_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = results(tmp_path / "run.jsonl", TOSA_RUN)
    base = tmp_path / "no-baseline.jsonl"
    assert main(["baseline", "compare", str(run), "--baseline", str(base)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"et-hil: error: baseline {base}: cannot read it")
