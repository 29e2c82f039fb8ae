"""The suites on the genuine upstream runner give the host's verdicts.

One run of ``pytest suites -n 2`` in a fresh process, as a user runs it, on four
boards at once:

* ``host``: the ExecuTorch runtime of the installed wheel (the reference verdicts);
* ``qemu-m55``: the genuine runner on QEMU through the qemu board kind;
* ``corstone300-genuine``: the corstone boards' own FVP code path (command line,
  local executor, run folder, log and ETDump reading), answered by
  ``tests/genuine_fvp``, which runs the genuine runner on QEMU;
* ``qemu-m55-cmsis``: the same runner with int8 programs on its CMSIS-NN kernels.

Any difference between host and the first two is a bug: same programs, same
kernels (compiled for the M55), same tolerances. The CMSIS-NN board runs other
programs (cortex_m operators), so it must pass on its own.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.boards.qemu.kind import QemuSettings
from harness.build.cache import default_cache_dir
from harness.firmware.service import ensure_runner, request_for
from tests.test_qemu_board import _need_tools

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GENUINE_FVP = ROOT / "tests" / "genuine_fvp"
BOARDS = ("host", "qemu-m55", "corstone300-genuine", "qemu-m55-cmsis")


def run_suites(tmp_path: Path, elf: Path) -> list[dict[str, Any]]:
    results = tmp_path / "results.jsonl"
    env = dict(os.environ)
    env["PATH"] = f"{GENUINE_FVP}{os.pathsep}{env['PATH']}"
    env["ET_HIL_DOUBLE_PYTHON"] = sys.executable
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "suites"),
            *(f"--board={name}" for name in BOARDS),
            f"--board-file={GENUINE_FVP / 'corstone300-portable.toml'}",
            f"--runner-elf=corstone300-genuine={elf}",
            "-n",
            "2",
            f"--build-cache={tmp_path / 'cache'}",
            f"--results={results}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in results.read_text().splitlines()]


def by_test(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[str, str | None]]]:
    """Per test (board left out of its id): each board's outcome and failure class."""
    table: dict[str, dict[str, tuple[str, str | None]]] = collections.defaultdict(dict)
    names = sorted(BOARDS, key=len, reverse=True)  # qemu-m55-cmsis before qemu-m55
    pattern = re.compile(r"\[(" + "|".join(map(re.escape, names)) + r")-?")
    for r in records:
        test = pattern.sub("[", r["test"]).replace("[]", "")
        table[test][r["board"]] = (r["outcome"], r["failure_class"])
    return table


@pytest.mark.timeout(1800)
def test_the_suites_on_the_genuine_runner_give_the_host_verdicts(tmp_path: Path) -> None:
    _need_tools()
    elf = ensure_runner(request_for(QemuSettings().firmware), cache_dir=default_cache_dir()).elf
    records = run_suites(tmp_path, elf)
    table = by_test(records)

    differ = {
        test: boards
        for test, boards in table.items()
        if not boards["host"] == boards["qemu-m55"] == boards["corstone300-genuine"]
    }
    assert differ == {}
    # every portable program that runs on host ran on the genuine runner (seen: 34
    # of the 56 suite tests; the others skip on all three with the same reasons)
    ran = [t for t, boards in table.items() if boards["qemu-m55"][0] == "passed"]
    assert len(ran) >= 30

    genuine = [r for r in records if r["board"] == "corstone300-genuine" and r.get("ran")]
    assert genuine, "the FVP path ran nothing"
    facts = genuine[0]["board_facts"]
    assert facts["where"] == "local"
    assert facts["firmware"]["elf_sha256"] == facts["runner_elf_sha256"]
    assert facts["firmware"]["operator_count"] > 200  # the wide kernel list
    assert "operators" not in facts["firmware"]  # a wide list stays in the build record

    cmsis = [r for r in records if r["board"] == "qemu-m55-cmsis"]
    failed = [(r["test"], r["failure_class"]) for r in cmsis if r["outcome"] == "failed"]
    assert failed == []
    assert sum(r["outcome"] == "passed" for r in cmsis) >= 30
