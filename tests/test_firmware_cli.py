"""``et-hil firmware build``: requests, the content-keyed cache, kernel lists
selected from programs, and the messages of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from et_hil.cli import main
from et_hil.executor_runner.build_record import record_path
from et_hil.firmware.ops import ops_in_program
from et_hil.firmware.service import FirmwareRequest
from et_hil.programs.builder import Builder
from et_hil.programs.cache import ArtifactCache, default_cache_dir
from tests.test_qemu_board import SmallCNN, _need_tools, image


def test_a_request_names_the_command_that_rebuilds_it() -> None:
    request = FirmwareRequest(ops=("aten::add.out",), intermediate_buffer_bytes=4096)
    assert request.flags() == ["--ops", "aten::add.out", "--intermediate-buffer", "4096"]
    assert FirmwareRequest(cmsis=False, method_pool_bytes=1 << 20).flags() == [
        "--wide",
        "--no-cmsis",
        "--intermediate-buffer",
        "0",
        "--method-pool",
        "1048576",
    ]


def test_ops_from_a_missing_path_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["firmware", "build", "--ops-from", str(tmp_path / "nothing")]) == 2
    assert f"--ops-from {tmp_path / 'nothing'}: no such file or folder" in capsys.readouterr().err


def test_a_missing_source_bundle_is_named_with_the_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ET_HIL_THIRD_PARTY", str(tmp_path / "no-bundle"))
    args = ["firmware", "build", "--wide", "--build-cache", str(tmp_path / "cache")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"no source bundle at {tmp_path / 'no-bundle'}" in err
    assert "set ET_HIL_THIRD_PARTY" in err


def test_a_non_qemu_board_takes_no_firmware_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["firmware", "build", "--board", "corstone320"]) == 2
    assert "kind 'fvp' boards take no et-hil firmware build" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.timeout(600)  # took 64 s; a cold build tree: minutes
def test_kernels_selected_from_a_program(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A relink of the shared build tree (the wide runner's, built first by CI)."""
    _need_tools()
    artifact = Builder(ArtifactCache(tmp_path / "cache")).build(
        SmallCNN(), (image(),), target="portable", board="qemu-m55", quantize="int8"
    )
    cache = default_cache_dir()
    args = ["firmware", "build", "--ops-from", str(artifact.pte_path), "--build-cache", str(cache)]
    assert main(args) == 0
    out = capsys.readouterr().out
    elf = Path(next(line for line in out.splitlines() if "runner: /" in line).split(": ", 1)[1])
    if "cached in" in out:
        # An earlier run of this test in this checkout left this runner in the cache
        # (CI's clean clone has none): take it out, so that this run relinks it.
        shutil.rmtree(elf.parent)
        assert main(args) == 0
        out = capsys.readouterr().out
    # the build said what it was doing, as it did it
    assert f"  building {elf.parent.name} (log: " in out
    assert "  compiling: " in out
    assert "  linking arm_executor_runner" in out
    record = json.loads(record_path(elf).read_text())
    program_ops = set(ops_in_program(artifact.pte_path.read_bytes()))
    assert program_ops <= set(record["operators"])
    assert not record["wide"]
    assert "quantized_decomposed::quantize_per_tensor.out" in program_ops
    # the same request again: from the cache, at once
    assert main(args) == 0
    assert "cached in" in capsys.readouterr().out


LOG = """$ bash build_executor_runner.sh --pte=semihosting
-- The C compiler identification is GNU 13.2.1
-- Configuring done (2.1s)
[  1%] Creating directories for 'flatcc_ep'
[  4%] Building C object cmsis-nn.dir/Source/arm_minimum_s8.c.obj
[  8%] Building C object cmsis-nn.dir/Source/arm_convolve_s4.c.obj
[ 13%] Building C object cmsis-nn.dir/Source/arm_depthwise_conv_s8.c.obj
[ 98%] Linking CXX static library libarm_portable_ops_lib.a
-- Configuring done (0.4s)
[ 50%] Building CXX object CMakeFiles/arm_executor_runner.dir/arm_executor_runner.cpp.obj
[100%] Linking CXX executable arm_executor_runner
"""


def test_a_builds_progress_is_read_from_its_log_as_it_grows(tmp_path: Path) -> None:
    import threading
    import time

    from et_hil.firmware.progress import BuildProgress

    log = tmp_path / "build.log"
    log.write_text("an earlier build's log\n[100%] Linking CXX executable old\n")
    heard: list[str] = []

    def build() -> None:  # writes its log afresh, a line at a time, as a build does
        with log.open("w") as f:
            for line in LOG.splitlines(keepends=True):
                f.write(line)
                f.flush()
                time.sleep(0.02)

    with BuildProgress(log, heard.append):
        writer = threading.Thread(target=build)
        writer.start()
        writer.join()
    assert heard == [
        "configuring (CMake)",
        "compiling: 1% (flatcc_ep)",
        "compiling: 13% (arm_depthwise_conv_s8.c)",
        "compiling: 98% (libarm_portable_ops_lib.a)",
        "configuring (CMake)",
        "compiling: 50% (arm_executor_runner.cpp)",
        "linking arm_executor_runner",
    ]


def _git_repo(folder: Path, files: dict[str, str]) -> Path:
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", *files], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    return folder


def test_a_pip_user_makes_the_source_bundle_from_git_checkouts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from et_hil.firmware.bundle_make import SUBMODULES
    from et_hil.firmware.sources import find_sources_problem, unpack_bundle

    if shutil.which("zstd") is None or shutil.which("git") is None:
        pytest.skip("zstd and git are needed")
    src = tmp_path / "src"
    executorch = _git_repo(
        src / "executorch",
        {
            "version.txt": "1.5.1\n",
            "examples/arm/executor_runner/standalone/CMakeLists.txt": "project(runner)\n",
            "third-party/README.md": "submodules\n",
            "backends/xnnpack/third-party/README.md": "submodules\n",
        },
    )
    for name, where in SUBMODULES.items():
        _git_repo(executorch / where, {"CMakeLists.txt": f"project({name})\n"})
    arm = {
        name: _git_repo(src / name, {"README.md": f"{name}\n"})
        for name in ("CMSIS_6", "CMSIS-NN", "core_driver")
    }
    out = tmp_path / "bundle"
    args = ["firmware", "bundle", "--out", str(out), "--executorch", str(executorch),
            "--cmsis6", str(arm["CMSIS_6"]), "--cmsis-nn", str(arm["CMSIS-NN"]),
            "--core-driver", str(arm["core_driver"])]  # fmt: skip
    assert main(args) == 0
    assert f"export ET_HIL_THIRD_PARTY={out}" in capsys.readouterr().out

    # what the firmware build unpacks and checks, laid out as it expects
    root = unpack_bundle(out, tmp_path / "cache")
    assert (root / "executorch/examples/arm/executor_runner/standalone/CMakeLists.txt").is_file()
    for name, where in SUBMODULES.items():
        assert (root / "executorch" / where / "CMakeLists.txt").read_text() == f"project({name})\n"
    for name in ("cmsis6", "cmsis-nn", "core_driver"):
        assert (root / name / "README.md").is_file()
    monkeypatch.setenv("ET_HIL_THIRD_PARTY", str(out))
    assert find_sources_problem(None) is None


def test_a_bundle_needs_the_submodules_checked_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    executorch = tmp_path / "executorch"
    (executorch / "examples/arm/executor_runner").mkdir(parents=True)
    args = ["firmware", "bundle", "--out", str(tmp_path / "b"), "--executorch", str(executorch),
            "--cmsis6", "c6", "--cmsis-nn", "cnn", "--core-driver", "cd"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ExecuTorch submodule third-party/flatbuffers is not checked out" in err
    assert f"git -C {executorch} submodule update --init third-party/flatbuffers" in err
    assert main(["firmware", "bundle", "--out", str(tmp_path / "b")]) == 2
    assert "needs --executorch, --cmsis6, --cmsis-nn, --core-driver" in capsys.readouterr().err
