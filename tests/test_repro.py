"""Repro folders: what a failed check leaves, what the harness may remove, and that
``et-hil repro`` reruns the case to the same verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.report.repro import (
    MARKER,
    case_folder_name,
    mark_run_folder,
    prune_replaced_runs,
    run_folder,
)

# ---------------------------------------------------------------- ownership


def _marked(root: Path, results: Path, run_id: str) -> Path:
    folder = run_folder(root, results, run_id)
    mark_run_folder(folder, results, run_id)
    (folder / "case").mkdir()
    return folder


def test_only_our_marked_folders_of_the_same_results_file_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "repro"
    results, other = tmp_path / "x.jsonl", tmp_path / "y.jsonl"
    replaced = _marked(root, results, "old")
    current = _marked(root, results, "new")
    other_results = _marked(root, other, "old")  # another results file in the same folder
    users = root / "notes"
    users.mkdir()
    (users / "todo.txt").write_text("the user's own file")
    look_alike = root / "x-zzz"  # named like ours, but nothing proves we made it
    look_alike.mkdir()
    forged = root / "x-forged"
    forged.mkdir()
    (forged / MARKER).write_text(json.dumps({"tool": "other", "results": str(results)}))
    damaged = root / "x-damaged"
    damaged.mkdir()
    (damaged / MARKER).write_text("{not json")
    elsewhere = tmp_path / "elsewhere"  # a link into the user's files, with our marker
    mark_run_folder(elsewhere, results, "old")
    (root / "x-link").symlink_to(elsewhere)

    removed = prune_replaced_runs(root, results, keep_run_id="new")

    assert removed == [replaced]
    assert not replaced.exists()
    for kept in (current, other_results, users / "todo.txt", look_alike, forged, damaged):
        assert kept.exists(), kept
    assert (elsewhere / MARKER).exists()


def test_case_folder_names_are_safe_and_distinct() -> None:
    a = case_folder_name("tests/test_x.py::test_a[host-conv 3x3/padded]")
    b = case_folder_name("tests/test_x.py::test_a[host-conv 3x3/padded]", call=2)
    assert "/" not in a
    assert " " not in a
    assert b == a + "-check2"
    assert case_folder_name("t::" + "x" * 300) != case_folder_name("t::" + "x" * 301)


# ---------------------------------------------------------------- end to end, through pytest

MISMATCH = """
import tinymodels as m

def test_mismatch(et_check):
    # The program is built from scale=1.0; the reference multiplies by 1.5.
    et_check(m.tiny(), m.x(), reference=m.tiny(scale=1.5))
"""


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_runs_never_delete_the_users_files_or_each_others_evidence(et_pytester):
    et_pytester.makepyfile(MISMATCH)
    out = et_pytester.path / "out"
    user_file = out / "repro" / "my-notes.txt"  # a user's file in the repro folder
    user_file.parent.mkdir(parents=True)
    user_file.write_text("keep me")

    et_pytester.runpytest_subprocess("--results=out/a.jsonl").assert_outcomes(failed=1)
    [first_a] = _records(out / "a.jsonl")
    et_pytester.runpytest_subprocess("--results=out/b.jsonl").assert_outcomes(failed=1)
    [first_b] = _records(out / "b.jsonl")

    # A second results file in the same folder leaves the first one's evidence alone.
    assert Path(first_a["repro"]).is_dir()
    assert Path(first_b["repro"]).is_dir()
    assert first_a["repro"] != first_b["repro"]
    assert user_file.read_text() == "keep me"

    # A new run of a.jsonl replaces a's records, and only then a's old repro folders.
    et_pytester.runpytest_subprocess("--results=out/a.jsonl").assert_outcomes(failed=1)
    [second_a] = _records(out / "a.jsonl")
    assert Path(second_a["repro"]).is_dir()
    assert not Path(first_a["repro"]).exists()
    assert Path(first_b["repro"]).is_dir()
    assert user_file.read_text() == "keep me"


@pytest.mark.slow
@pytest.mark.parametrize("board", ["host", "tosa"])
def test_a_failed_check_leaves_a_folder_that_reruns_to_the_same_verdict(et_pytester, board):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_mismatch(et_check):
            et_check(m.tiny(), m.x(), quantize="int8", reference=m.tiny(scale=1.5),
                     vs_float={"min_snr_db": 30})
        """
    )
    result = et_pytester.runpytest_subprocess(f"--board={board}")
    result.assert_outcomes(failed=1)
    [record] = _records(et_pytester.path / "et-hil-results" / "results.jsonl")
    repro = Path(record["repro"])
    result.stdout.fnmatch_lines([f"*repro: {repro}*", f"*rerun: et-hil repro {repro}*"])
    names = {p.name for p in repro.iterdir()}
    assert {
        "case.json",
        "artifact",
        "inputs.npz",
        "outputs.npz",
        "reference_fake_quant.npz",
        "reference_eager_float.npz",
        "rerun.sh",
    } <= names
    assert (repro / "artifact" / "program.pte").is_file()
    case = json.loads((repro / "case.json").read_text())
    assert case["board"] == board
    # the board agrees with fake-quant; the int8 model is held to the 1.5x model
    assert case["failure_class"] == "quantization_quality"
    assert case["command"] == f"et-hil repro {repro}"
    with np.load(repro / "inputs.npz") as inputs:
        assert inputs["in_0"].shape == (2, 8)

    # The same verdict, from the folder alone (run from another folder), with the same numbers.
    rerun = subprocess.run(
        [sys.executable, "-m", "harness.cli", "repro", str(repro)],
        capture_output=True,
        text=True,
        cwd=os.path.expanduser("~"),
        timeout=300,
        check=False,
    )
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "verdict: quantization_quality" in rerun.stdout
    snr = next(
        m["snr_db"]
        for c in record["comparisons"]
        if c["reference"] == "quantization"
        for m in c["metrics"]
    )
    assert f"{snr:.6g}" in rerun.stdout
