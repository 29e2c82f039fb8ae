"""Quiet, honest runs in a user's repository: the plugin adds no warning of its own,
and the third-party noise the docs say is silenced is silenced, in captured logs
and in the warnings summary, while the user's own warnings and logs still show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AS_INSTALLED = Path(__file__).resolve().parent / "as_installed.py"


def _first_test_of_the_docs() -> str:
    text = (ROOT / "docs" / "getting-started.md").read_text()
    section = text.split("<!-- example: first-test -->", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def _pytest_as_installed(folder: Path, *args: str) -> str:
    """pytest in ``folder``, with the plugin found as a user's install finds it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(AS_INSTALLED), "-p", "no:cacheprovider", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_first_test_in_a_fresh_folder_ends_with_no_warnings(tmp_path):
    (tmp_path / "test_classifier.py").write_text(_first_test_of_the_docs())
    out = _pytest_as_installed(
        tmp_path, "--et-board=host", f"--et-build-cache={tmp_path / 'cache'}"
    )
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ 2 passed in [\d.]+s( \(.*\))? =+", last), out
    assert "warning" not in out.lower(), out


NOISY = """
import logging
import warnings

import torch


class Scaled(torch.nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.fc = torch.nn.Linear(16, 4)
        self.scale = scale

    def forward(self, x):
        return self.fc(x) * self.scale


def test_fails_with_the_per_layer_table(et_check):
    warnings.warn("the user's own warning", UserWarning)
    logging.getLogger("mine").warning("the user's own log line")
    torch.manual_seed(0)
    model = Scaled().eval()
    torch.manual_seed(0)
    et_check(model, (torch.randn(2, 16),), quantize="int8", reference=Scaled(1.5).eval(),
             vs_float={"min_snr_db": 40})
"""


@pytest.mark.slow
@pytest.mark.timeout(180)  # took 58 s
def test_a_failure_shows_the_users_warnings_and_logs_and_no_library_noise(tmp_path):
    (tmp_path / "test_noisy.py").write_text(NOISY)
    out = _pytest_as_installed(
        tmp_path, "--et-board=host", "--et-debug=always", f"--et-build-cache={tmp_path / 'cache'}"
    )
    assert "1 failed, 1 warning in" in out, out
    assert "per-layer table:" in out  # the debug pass ran
    assert "UserWarning: the user's own warning" in out
    assert "the user's own log line" in out
    for noise in ("Failed to load", "Detected no triton", "register_constant", "not writable"):
        assert noise not in out, f"{noise!r} in:\n{out}"
