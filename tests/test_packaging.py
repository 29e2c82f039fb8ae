"""The wheel a user installs: built from this checkout, installed in a fresh venv,
it brings every built-in board (the top-level ``boards/`` and ``fvp/`` folders are
mapped into the package at build time; see :mod:`et_hil.datafiles`)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_BOARDS = sorted(p.stem for p in (ROOT / "boards").glob("*.toml"))


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_lists_every_builtin_board(tmp_path: Path) -> None:
    assert len(BUILTIN_BOARDS) >= 7, BUILTIN_BOARDS  # host, tosa, 3 Corstones, 2 QEMU
    # --no-build-isolation: hatchling from the dev extra (no download in the test)
    _run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "wheels"), "-q"],
        cwd=tmp_path,
    )  # fmt: skip
    [wheel] = (tmp_path / "wheels").glob("et_hil-*.whl")
    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run([str(venv / "bin" / "pip"), "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    # et-hil's dependencies (torch, executorch ...) are borrowed from this venv rather
    # than downloaded again: a .pth line adds its site-packages after the fresh one's,
    # so the wheel's et_hil is the one imported (checked below), not the checkout's.
    fresh_site = next((venv / "lib").glob("python3*/site-packages"))
    (fresh_site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import et_hil; print(et_hil.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True, env=env,
    ).stdout  # fmt: skip
    assert where.startswith(str(fresh_site)), where

    listing = subprocess.run(
        [str(venv / "bin" / "et-hil"), "boards"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True, env=env,
    ).stdout  # fmt: skip
    listed = sorted(line.split()[0] for line in listing.splitlines()[1:] if line.strip())
    assert listed == BUILTIN_BOARDS
    # the FVP boards read their platform files (fvp/): the product and its version
    assert "FVP_Corstone_SSE-320 (FVP 11.27_25)" in listing
