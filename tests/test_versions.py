"""The pins live in et_hil/versions.py; the copies that cannot read it must match it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from et_hil.boards.fvp import platform as fvp
from et_hil.versions import PINNED, docker_build_args

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def test_pyproject_pins_match() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name in PINNED:
            pins[requirement.name] = str(requirement.specifier)
    # tosa-tools and vela come through executorch[ethos-u]: pinned by it, not by us.
    assert pins == {name: f"=={PINNED[name]}" for name in ("torch", "executorch")}


def test_dockerfile_defaults_match_the_build_args() -> None:
    args = docker_build_args()
    assert args == {
        "TORCH_VERSION": PINNED["torch"],
        "EXECUTORCH_VERSION": PINNED["executorch"],
    }
    for name, value in args.items():
        defaults = re.findall(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
        assert defaults, name
        assert set(defaults) == {value}, name
    # No literal copy of a pin is left outside the ARG defaults.
    body = re.sub(r"^ARG .*$", "", DOCKERFILE, flags=re.MULTILINE)
    assert PINNED["executorch"] not in body
    assert PINNED["torch"] not in body


def test_dockerfile_fvp_labels_match_the_platform_files() -> None:
    # The FVP downloads are bound to their MD5 sums, so the Dockerfile keeps the
    # versions as literals; they must be the platform files' versions.
    labels = dict(re.findall(r'org\.et-hil\.fvp\.([\w-]+)="([^"]+)"', DOCKERFILE))
    assert labels
    for name, version in labels.items():
        assert fvp.load_platform(name).version == version
        assert f"_{version}_Linux64.tgz" in DOCKERFILE


def test_makefile_reads_the_torch_pin() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "et_hil" / "versions.py"), "torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == PINNED["torch"]
    assert "et_hil/versions.py torch" in (ROOT / "Makefile").read_text()
