"""Bring your own program: ``et-hil run PROGRAM --board NAME`` and the ``et_run``
fixture on .pte and BundleIO .bpte files, and what a test states must be delegated."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from et_hil.errors import ConfigError
from et_hil.programs.program_file import read_program
from et_hil.verdict.delegation import DelegationSpec

# ---------------------------------------------------------------- reading program files


def test_a_file_that_is_not_a_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"program .*missing.pte: cannot read it"):
        read_program(tmp_path / "missing.pte")
    text = tmp_path / "notes.pte"
    text.write_text("just some notes, not a program")
    with pytest.raises(ConfigError, match=r"neither an ExecuTorch program .* reads b' som' there"):
        read_program(text)


# ---------------------------------------------------------------- delegation requirements

REPORT = {
    "partitions": [
        {"backend": "TOSABackend", "ops": {"aten.convolution.default": 2, "aten.relu.default": 2}}
    ],
    "cpu_ops": {"quantized_decomposed.quantize_per_tensor.default": 1, "aten.mean.dim": 1},
    "cpu_fallback": {"aten.mean.dim": 1},
}


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"partitions": 1, "delegated": ["aten.convolution"], "cpu": ["aten.mean"]}, []),
        ({"partitions": 2}, ["1 delegated partition(s), 2 required"]),
        (
            {"delegated": {"aten.convolution": 3}},
            ["aten.convolution: 2 delegated, at least 3 required"],
        ),
        (
            {"delegated": ["aten.mean", "aten.add"]},
            [
                "aten.mean must be delegated; on the CPU: aten.mean.dim x1",
                "aten.add must be delegated; no partition holds it",
            ],
        ),
        (
            {"cpu": []},
            ["aten.mean.dim x1 stays on the CPU; allowed: the boundary quantize/dequantize"],
        ),
        ({"cpu": {"aten.mean": 0}}, ["aten.mean: 1 on the CPU, at most 0 allowed"]),
    ],
)
def test_delegation_requirements(spec: dict, problems: list[str]) -> None:
    assert DelegationSpec.from_mapping(spec, "t").problems(REPORT) == problems


def test_a_bad_delegation_requirement_names_the_test() -> None:
    with pytest.raises(ValueError, match=r"t::x: et_delegation takes .*got \['cpus'\]"):
        DelegationSpec.from_mapping({"cpus": []}, "t::x")
    with pytest.raises(ValueError, match=r"the count of 'aten\.add' must be an int"):
        DelegationSpec.from_mapping({"delegated": {"aten.add": "2"}}, "t::x")


DELEGATION = """
import pytest
import tinymodels as m


@pytest.mark.et_delegation(partitions=1, delegated=["aten.linear"], cpu=[])
def test_as_stated(et_check):
    et_check(m.tiny(), m.x(), quantize="int8")


@pytest.mark.et_delegation(partitions=2)
def test_more_partitions_than_it_has(et_check):
    et_check(m.tiny(), m.x(), quantize="int8")
"""


@pytest.mark.slow
def test_a_test_states_what_must_be_delegated(et_pytester):
    et_pytester.makepyfile(DELEGATION)
    result = et_pytester.runpytest_subprocess(
        "--et-board=tosa", "--et-board=host", "--et-debug=off"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*DelegationError [[]cpu_fallback[]]: model 'Tiny' on board 'tosa' is not delegated "
         "as the test requires: 1 delegated partition(s), 2 required*"]
    )  # fmt: skip
    records = {
        r["test"].split("::")[1]: r
        for r in map(
            json.loads, (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
        )
    }
    assert records["test_more_partitions_than_it_has[tosa]"]["failure_class"] == "cpu_fallback"
    assert records["test_more_partitions_than_it_has[host]"]["full_delegation"].startswith(
        "not applicable"
    )


# ---------------------------------------------------------------- et-hil run

BUILDS_BUNDLES = """
from pathlib import Path

import pytest
import tinymodels as m
from et_hil import bundle_program

OUT = Path("bundles")


def test_int8(et_build, et_check, board):
    artifact = et_build(m.tiny(), m.x(), quantize="int8")
    # what its check compares with: the fake-quant reference, in LSB
    bundle_program(artifact, m.x(), OUT / f"int8-{board.spec.name}.bpte")
    et_check(m.tiny(), m.x(), quantize="int8")


def test_float_mismatch(et_build, et_check, board):
    if board.spec.name == "tosa":
        pytest.skip("tosa runs quantized programs only")
    artifact = et_build(m.tiny(), m.x())
    reference = m.tiny(scale=1.5)
    bundle_program(artifact, m.x(), OUT / f"float-{board.spec.name}.bpte", model=reference)
    et_check(m.tiny(), m.x(), reference=reference)
"""

BOARDS = ("host", "tosa", "qemu-m55")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "et_hil.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _value(out: str, metric: str) -> str:
    return re.search(rf"{metric}\s+(\S+)", out).group(1)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.timeout(600)  # a cold runner build: 3.5 min
def test_et_hil_run_gives_the_verdict_of_the_test_that_built_the_bundle(et_pytester):
    from et_hil.boards import make_board
    from et_hil.boards.spec import load_boards
    from et_hil.firmware.service import ensure_runner, request_for
    from et_hil.programs.cache import default_cache_dir

    spec = load_boards()["qemu-m55"]
    qemu = make_board(spec, et_pytester.path / "logs")
    if not qemu.availability().ok:
        pytest.skip(f"qemu-m55: {qemu.availability().reason}")
    # The runner from the shared firmware cache (CI builds it before the tests).
    elf = ensure_runner(request_for(spec.settings.firmware), cache_dir=default_cache_dir()).elf
    et_pytester.makepyfile(BUILDS_BUNDLES)
    result = et_pytester.runpytest_subprocess(
        *(f"--et-board={b}" for b in BOARDS), f"--et-runner-elf=qemu-m55={elf}", "--et-debug=off"
    )
    result.assert_outcomes(passed=3, failed=2, skipped=1)
    records = {
        r["test"].split("::")[1]: r
        for r in map(
            json.loads, (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
        )
    }
    ran = 0
    for board in BOARDS:
        for kind in ("int8", "float"):
            test = f"test_{'int8' if kind == 'int8' else 'float_mismatch'}[{board}]"
            record = records[test]
            if record["outcome"] == "skipped":
                continue
            done = _cli("run", f"bundles/{kind}-{board}.bpte", "--board", board,
                        "--runner-elf", f"qemu-m55={elf}", "-o", f"out/{kind}-{board}",
                        cwd=et_pytester.path)  # fmt: skip
            verdict = "pass" if record["outcome"] == "passed" else "numeric_mismatch"
            assert f"verdict: {verdict}" in done.stdout, done.stdout + done.stderr
            assert done.returncode == (0 if verdict == "pass" else 1)
            metric = record["comparisons"][0]["metrics"][0]
            if kind == "int8":  # compared as the test did: in LSB of the output's scale
                assert float(_value(done.stdout, "max_err_lsb")) == metric["max_lsb"]
            else:
                assert f"{float(_value(done.stdout, 'max_abs_err')):.6g}" == (
                    f"{metric['max_abs']:.6g}"
                )
            ran += 1
    assert ran == 5


RUNS_PROGRAMS = """
import numpy as np
import pytest


def test_bundle(et_run):
    result = et_run("good.bpte")
    assert result.compared and result.passed


def test_bundle_whose_outputs_differ(et_run):
    et_run("good.bpte", expected=[np.zeros((2, 4), dtype=np.float32)])


def test_plain_program(et_run):
    result = et_run("program.pte")
    assert not result.compared
    assert result.inputs_from.startswith("all ones")
"""


@pytest.mark.slow
def test_the_et_run_fixture_runs_a_program_file_on_the_tests_board(et_pytester, builder):
    import tinymodels as m  # the et_pytester's model file

    from et_hil import bundle_program

    artifact = builder.build(m.tiny(), m.x(), target="portable", board="host")
    bundle_program(artifact, m.x(), et_pytester.path / "good.bpte", model=m.tiny())
    (et_pytester.path / "program.pte").write_bytes(artifact.pte_path.read_bytes())
    et_pytester.makepyfile(RUNS_PROGRAMS)
    result = et_pytester.runpytest_subprocess("--et-board=host")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*program good.bpte on board 'host': outputs differ from the expected ones*",
         "*bundled*out[[]0[]]*max_abs_err*FAIL*"]
    )  # fmt: skip
    records = {
        r["test"].split("::")[1]: r
        for r in map(
            json.loads, (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
        )
    }
    plain = records["test_plain_program[host]"]
    assert plain["comparisons"] == []
    assert plain["timings"]["fidelity"] == "host-wall"
    assert plain["etdump"]
    assert records["test_bundle_whose_outputs_differ[host]"]["failure_class"] == "numeric_mismatch"
