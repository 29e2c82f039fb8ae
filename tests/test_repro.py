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

from et_hil.report.repro import (
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

    removed = prune_replaced_runs(root, results, keep={"new"})

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
@pytest.mark.timeout(360)  # took 110 s
def test_runs_never_delete_the_users_files_or_each_others_evidence(et_pytester):
    et_pytester.makepyfile(MISMATCH)
    out = et_pytester.path / "out"
    user_file = out / "repro" / "my-notes.txt"  # a user's file in the repro folder
    user_file.parent.mkdir(parents=True)
    user_file.write_text("keep me")

    et_pytester.runpytest_subprocess("--et-results=out/a.jsonl").assert_outcomes(failed=1)
    [first_a] = _records(out / "a.jsonl")
    et_pytester.runpytest_subprocess("--et-results=out/b.jsonl").assert_outcomes(failed=1)
    [first_b] = _records(out / "b.jsonl")

    # A second results file in the same folder leaves the first one's evidence alone.
    assert Path(first_a["repro"]).is_dir()
    assert Path(first_b["repro"]).is_dir()
    assert first_a["repro"] != first_b["repro"]
    assert user_file.read_text() == "keep me"

    # A new run of a.jsonl replaces a's records, and only then a's old repro folders.
    et_pytester.runpytest_subprocess("--et-results=out/a.jsonl").assert_outcomes(failed=1)
    [second_a] = _records(out / "a.jsonl")
    assert Path(second_a["repro"]).is_dir()
    assert not Path(first_a["repro"]).exists()
    assert Path(first_b["repro"]).is_dir()
    assert user_file.read_text() == "keep me"


@pytest.mark.slow
@pytest.mark.parametrize("board", ["host", "tosa"])
@pytest.mark.timeout(180)  # took 49 s (tosa)
def test_a_failed_check_leaves_a_folder_that_reruns_to_the_same_verdict(et_pytester, board):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_mismatch(et_check):
            et_check(m.tiny(), m.x(), quantize="int8", reference=m.tiny(scale=1.5),
                     vs_float={"min_snr_db": 30})
        """
    )
    result = et_pytester.runpytest_subprocess(f"--et-board={board}")
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
        [sys.executable, "-m", "et_hil.cli", "repro", str(repro)],
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


# ---------------------------------------------------------------- size at real scale


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_real_models_repro_folder_links_its_program_and_reruns_after_the_cache_is_gone(
    et_pytester, tmp_path
):
    from et_hil.report.keep import own_bytes

    et_pytester.makepyfile(resnet18=(Path(__file__).parent / "resnet18.py").read_text())
    et_pytester.makepyfile(
        test_big="""
        import resnet18 as r

        def test_resnet18(et_check):
            et_check(r.resnet18(), r.image(), reference=r.resnet18(seed=1))
        """
    )
    cache = tmp_path / "cache"
    result = et_pytester.runpytest_subprocess(f"--et-build-cache={cache}", "--et-debug=off")
    result.assert_outcomes(failed=1)
    [record] = _records(et_pytester.path / "et-hil-results" / "results.jsonl")
    repro, artifact = Path(record["repro"]), Path(record["artifact"]["folder"])
    assert record["artifact"]["pte_bytes"] > 40e6  # a real model: 11.7 M float parameters

    # What the folder used to hold: a full copy of the artifact, and all the rest.
    own = own_bytes(repro, shared_with=cache)
    before = _folder_bytes(artifact) + own
    print(f"repro folder: {own / 1e6:.2f} MB of its own, was {before / 1e6:.1f} MB")
    assert own < 0.1 * before
    program = repro / "artifact" / "program.pte"
    assert program.stat().st_ino == (artifact / "program.pte").stat().st_ino  # one copy on disk
    assert {p.name for p in (repro / "artifact").iterdir()} == {"program.pte", "metadata.json"}
    assert json.loads((repro / "case.json").read_text())["artifact_folder"] == str(artifact)

    # The cache cleared, the folder still reruns to the same verdict and numbers.
    assert (
        subprocess.run(
            [sys.executable, "-m", "et_hil.cli", "cache", "clear", "--build-cache", str(cache)],
            check=False,
        ).returncode
        == 0
    )
    assert not artifact.exists()
    rerun = subprocess.run(
        [sys.executable, "-m", "et_hil.cli", "repro", str(repro)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "verdict: numeric_mismatch" in rerun.stdout
    max_abs = record["comparisons"][0]["metrics"][0]["max_abs"]
    assert f"max_abs_err  {max_abs:.6g}" in rerun.stdout


# ---------------------------------------------------------------- folders from elsewhere


class _Hostile:
    """Unpickling this writes a file: what a planted pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pickle ran')",))


HOSTILE_BOARD = """
name = "{name}"
kind = "serial"
target = "tosa-int"
[serial]
port = "/dev/null"
[serial.flash]
method = "command"
command = ["sh", "-c", "echo flashed > {marker}"]
[serial.reset]
method = "command"
command = ["sh", "-c", "echo reset > {marker}"]
"""


def _tosa_case(builder, tmp_path: Path, board_file_name: str | None) -> Path:
    import torch

    from et_hil.boards.spec import load_boards
    from et_hil.report.repro import save_case
    from et_hil.tolerance import Tolerance, Tolerances

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    x = torch.randn(2, 8)
    artifact = builder.build(model, (x,), target="tosa-int", board="tosa", quantize="int8")
    spec = load_boards()["tosa"]
    folder = save_case(
        tmp_path / "from-elsewhere",
        artifact=artifact,
        spec=spec,
        inputs=[x.numpy()],
        references={"eager_float": [model(x).detach().numpy()]},
        tolerances=Tolerances(Tolerance(max_lsb=1), Tolerance(min_snr_db=10), Tolerance(atol=1)),
        outputs=None,
        run_dir=None,
        failure_class="crash",
        message="it crashed",
    )
    if board_file_name is not None:
        case = json.loads((folder / "case.json").read_text())
        case.update(board=board_file_name, board_file="board.toml")
        (folder / "case.json").write_text(json.dumps(case))
    return folder


def _repro(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "et_hil.cli", "repro", str(folder), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_planted_pickle_and_the_folders_board_commands_never_run(builder, tmp_path):
    import pickle

    folder = _tosa_case(builder, tmp_path, board_file_name="tosa")
    pickled, commanded = tmp_path / "pickle-ran", tmp_path / "command-ran"
    payload = pickle.dumps(_Hostile(pickled))
    # the stored program, and the lowered-program file older versions unpickled
    (folder / "artifact" / "program.pte").unlink()  # a link to the cache: replace, not edit
    (folder / "artifact" / "program.pte").write_bytes(payload)
    (folder / "artifact" / "lowered_program.pkl").write_bytes(payload)
    (folder / "board.toml").write_text(HOSTILE_BOARD.format(name="tosa", marker=commanded))

    done = _repro(folder)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "board 'tosa' is yours (built in), not the folder's board.toml" in done.stdout
    assert "verdict: crash" in done.stdout
    assert "is not a readable ExecuTorch program" in done.stdout
    assert not pickled.exists()
    assert not commanded.exists()


@pytest.mark.slow
def test_the_folders_own_board_file_is_used_only_when_asked(builder, tmp_path):
    folder = _tosa_case(builder, tmp_path, board_file_name="their-tosa")
    (folder / "board.toml").write_text('name = "their-tosa"\nkind = "tosa"\ntarget = "tosa-int"\n')
    refused = _repro(folder)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "ran on board 'their-tosa', defined by its own board.toml" in refused.stderr
    assert "--trust-board-file to use the folder's" in refused.stderr

    trusted = _repro(folder, "--trust-board-file")
    assert "board 'their-tosa' from the folder's board.toml (trusted)" in trusted.stdout
    assert "verdict: " in trusted.stdout
    assert "numeric_mismatch" in trusted.stdout or "verdict: pass" in trusted.stdout

    mine = tmp_path / "mine.toml"
    mine.write_text('name = "their-tosa"\nkind = "tosa"\ntarget = "tosa-int"\n')
    own = _repro(folder, "--board-file", str(mine))
    assert f"board 'their-tosa' is yours ({mine})" in own.stdout


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.timeout(600)  # a cold runner build: 3.5 min
def test_a_qemu_repro_runs_from_the_cached_runner_without_the_source_bundle(et_pytester, tmp_path):
    from et_hil.boards import make_board
    from et_hil.boards.spec import load_boards
    from et_hil.firmware.service import ensure_runner, request_for
    from et_hil.programs.cache import default_cache_dir

    spec = load_boards()["qemu-m55"]
    if not make_board(spec, tmp_path / "logs").availability().ok:
        pytest.skip("qemu-m55 cannot run here")
    cache = default_cache_dir()
    elf = ensure_runner(request_for(spec.settings.firmware), cache_dir=cache).elf
    et_pytester.makepyfile(MISMATCH)
    et_pytester.runpytest_subprocess(
        "--et-board=qemu-m55", "--et-debug=off", f"--et-runner-elf=qemu-m55={elf}"
    ).assert_outcomes(failed=1)
    [record] = _records(et_pytester.path / "et-hil-results" / "results.jsonl")
    repro = Path(record["repro"])
    assert json.loads((repro / "case.json").read_text())["runner_elf"]["path"] == str(elf)

    # A pip user's machine: no source bundle anywhere; the runner is in the build cache.
    env = {**os.environ, "ET_HIL_THIRD_PARTY": str(tmp_path / "no-bundle"),
           "ET_HIL_CACHE_DIR": str(cache)}  # fmt: skip
    rerun = subprocess.run(
        [sys.executable, "-m", "et_hil.cli", "repro", str(repro)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert f"the runner ELF it ran: {elf} (the same bytes)" in rerun.stdout
    assert "verdict: numeric_mismatch" in rerun.stdout
