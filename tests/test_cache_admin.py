"""``et-hil cache``: info, verify, prune (least recently used first, never an entry a
session holds), and a program corrupted in place rebuilt by a real pytest run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from et_hil.cli import main
from et_hil.programs import cache_admin
from et_hil.programs.cache import ArtifactCache

DAY = 86400.0


def _entry(cache: ArtifactCache, key: str, size: int, age_s: float) -> Path:
    def build(folder: Path) -> None:
        (folder / "program.pte").write_bytes(os.urandom(size))
        (folder / "metadata.json").write_text("{}")

    folder, _ = cache.get_or_build(key, build)
    used = time.time() - age_s
    os.utime(folder, (used, used))  # when a session last used it
    return folder


def _key(n: int) -> str:
    return f"{n:02d}" + "e" * 62


def test_prune_older_than_then_least_recently_used_until_under_size(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    ancient = _entry(cache, _key(1), 1000, 40 * DAY)
    old = _entry(cache, _key(2), 1000, 10 * DAY)
    older = _entry(cache, _key(3), 1000, 20 * DAY)
    recent = _entry(cache, _key(4), 1000, 1 * DAY)
    cache.close()
    assert [e.folder for e in cache_admin.entries(tmp_path)] == [ancient, older, old, recent]

    pruned = cache_admin.prune(tmp_path, older_than_s=30 * DAY)
    assert [e.folder for e in pruned.removed] == [ancient]
    room = sum(e.size for e in cache_admin.entries(tmp_path) if e.folder in (old, recent))
    pruned = cache_admin.prune(tmp_path, max_bytes=room)  # two entries' worth
    assert [e.folder for e in pruned.removed] == [older]
    assert pruned.remaining == room
    assert old.is_dir()
    assert recent.is_dir()
    assert pruned.freed == pruned.removed[0].size


def test_a_hit_marks_the_entry_as_recently_used(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    first = _entry(cache, _key(1), 10, 5 * DAY)
    _entry(cache, _key(2), 10, 3 * DAY)
    assert cache.lookup(_key(1)) == first  # used now: the other one is older
    cache.close()
    pruned = cache_admin.prune(tmp_path, max_bytes=1)
    assert [e.key for e in pruned.removed] == [_key(2), _key(1)]


def test_an_entry_held_by_another_process_is_never_pruned(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    held = _entry(cache, _key(1), 100, 9 * DAY)
    free = _entry(cache, _key(2), 100, 8 * DAY)
    cache.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from et_hil.programs.cache import "
            f"ArtifactCache; c = ArtifactCache(Path({str(tmp_path)!r})); "
            f"assert c.lookup({_key(1)!r}); print('holding', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        pruned = cache_admin.prune(tmp_path, max_bytes=0)
        assert [e.folder for e in pruned.removed] == [free]
        assert [e.folder for e in pruned.in_use] == [held]
        assert (held / "program.pte").is_file()
    finally:
        holder.kill()
        holder.communicate()  # waits, and closes its stdout pipe
    # Its holder gone, the entry is free to go (the kernel dropped the lock).
    assert [e.folder for e in cache_admin.prune(tmp_path, max_bytes=0).removed] == [held]
    assert list((tmp_path / "locks").glob("*.use")) == []  # no lock files left behind


@pytest.mark.parametrize(
    ("text", "size"),
    [("800", 800), ("500M", 500 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29), ("10k", 10240)],
)
def test_sizes_read_like_du(text: str, size: int) -> None:
    assert cache_admin.parse_size(text) == size


def test_bad_sizes_and_ages_are_usage_errors(tmp_path: Path, capsys) -> None:
    for argv in (["--max-size", "lots"], ["--older-than", "soon"]):
        with pytest.raises(SystemExit) as exc:
            main(["cache", "prune", "--build-cache", str(tmp_path), *argv])
        assert exc.value.code == 2
    assert "not a size: 'lots' (e.g. 500M, 2G)" in capsys.readouterr().err
    assert main(["cache", "prune", "--build-cache", str(tmp_path)]) == 2
    assert "needs --max-size SIZE, --older-than AGE or both" in capsys.readouterr().err
    assert cache_admin.parse_age("30d") == 30 * DAY
    assert cache_admin.parse_age("90") == 90


def _fake_runner(cache_dir: Path, name: str, sha: str | None = None) -> Path:
    elf = cache_dir / "firmware" / name / "arm_executor_runner.elf"
    elf.parent.mkdir(parents=True)
    elf.write_bytes(b"\x7fELF runner " + name.encode())
    digest = sha or hashlib.sha256(elf.read_bytes()).hexdigest()
    elf.with_name(elf.name + ".json").write_text(
        json.dumps({"elf_sha256": digest, "operators": ["aten::add.out"]})
    )
    return elf


def test_verify_names_every_broken_artifact_and_runner(tmp_path: Path, capsys) -> None:
    cache = ArtifactCache(tmp_path)
    good = _entry(cache, _key(1), 100, 0)
    bad = _entry(cache, _key(2), 100, 0)
    cache.close()
    etrecord = bad / "program.pte"
    st = etrecord.stat()
    etrecord.write_bytes(bytes(st.st_size))
    os.utime(etrecord, ns=(st.st_atime_ns, st.st_mtime_ns))
    _fake_runner(tmp_path, "aaaa")
    broken_elf = _fake_runner(tmp_path, "bbbb", sha="0" * 64)

    assert main(["cache", "verify", "--build-cache", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"artifact {bad}: program.pte: content differs from the manifest" in out
    assert f"runner {broken_elf}: ELF differs from the SHA-256 in its build record" in out
    assert "checked 2 artifacts and 2 runner builds" in out
    assert "2 broken" in out

    assert main(["cache", "verify", "--remove", "--build-cache", str(tmp_path)]) == 1
    assert capsys.readouterr().out.count("  removed") == 2
    assert not bad.exists()
    assert not broken_elf.exists()
    assert good.is_dir()
    assert main(["cache", "verify", "--build-cache", str(tmp_path)]) == 0
    assert "all intact" in capsys.readouterr().out


def test_info_shows_artifacts_firmware_and_sources(tmp_path: Path, capsys) -> None:
    cache = ArtifactCache(tmp_path)
    _entry(cache, _key(1), 2 << 20, 2 * DAY)
    cache.close()
    _fake_runner(tmp_path, "aaaa")
    tree = tmp_path / "firmware" / "tree-123"
    tree.mkdir()
    (tree / "CMakeCache.txt").write_bytes(bytes(1 << 20))
    bundle = tmp_path / "sources" / "abcd"
    bundle.mkdir(parents=True)
    (bundle / ".unpacked").write_text("abcd\n")
    (bundle / "executorch.c").write_bytes(bytes(3 << 20))

    assert main(["cache", "info", "--build-cache", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path}: 6.0 MiB"
    assert lines[1].startswith("  artifacts:                  1  2.0 MiB (least recently used 2.0")
    assert lines[2] == "  runner firmware builds:     1  0.0 MiB"
    assert lines[3] == "    aaaa  0.0 MiB ELF"
    assert lines[4] == "  firmware build trees:       1  1.0 MiB"
    assert lines[5] == "  unpacked source bundles:    1  3.0 MiB"


# ---------------------------------------------------------------- through real sessions

HOLDING = """
import pathlib
import time

import tinymodels as m


def test_holds_its_program_while_the_cache_is_pruned(et_check):
    et_check(m.tiny(), m.x())
    pathlib.Path("built").touch()
    deadline = time.monotonic() + 300
    while not pathlib.Path("pruned").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    et_check(m.tiny(), m.x())  # its program is still there, from the cache
"""


@pytest.mark.slow
def test_prune_max_size_spares_the_entry_a_running_session_holds(et_pytester, tmp_path):
    cache_dir = tmp_path / "cache"
    cache = ArtifactCache(cache_dir)
    others = [_entry(cache, _key(n), 400_000, (10 - n) * DAY) for n in range(3)]
    cache.close()
    et_pytester.makepyfile(HOLDING)
    session = et_pytester.popen(
        [sys.executable, "-m", "pytest", f"--et-build-cache={cache_dir}", "--et-debug=off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (et_pytester.path / "built").exists():
            assert session.poll() is None, session.communicate()[0].decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # the program and the front it was lowered from (et_hil.programs.front)
        held = [e for e in cache_admin.entries(cache_dir) if e.folder not in others]
        assert sorted(e.kind for e in held) == ["artifact", "front"]
        used = time.time() - 30 * DAY  # the least recently used of all: pruned first if it could
        for entry in held:
            os.utime(entry.folder, (used, used))
        limit = sum(e.size for e in held) + 500_000  # room for the held entries and one other
        done = subprocess.run(
            [sys.executable, "-m", "et_hil.cli", "cache", "prune", "--max-size", str(limit),
             "--build-cache", str(cache_dir)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "kept 1 artifacts and 1 fronts a running session holds" in done.stdout
        left = cache_admin.entries(cache_dir)
        assert sum(e.size for e in left) <= limit
        kept = [e.folder for e in sorted(held, key=lambda e: e.key)]
        assert [e.folder for e in left] == [*kept, others[2]]  # the oldest free ones went
        (et_pytester.path / "pruned").touch()
        out = session.communicate(timeout=300)[0].decode()
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert session.returncode == 0, out
    records = [
        json.loads(x)
        for x in (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
    ]
    assert [c["artifact"]["cache_hit"] for c in records[0]["checks"]] == [False, True]


CORRUPTED = """
import tinymodels as m


def test_runs_its_program(et_check):
    et_check(m.tiny(seed=7), m.x())
"""


@pytest.mark.slow
def test_a_program_corrupted_in_place_is_rebuilt_not_run(et_pytester, tmp_path):
    cache_dir = tmp_path / "cache"
    et_pytester.makepyfile(CORRUPTED)
    args = (f"--et-build-cache={cache_dir}", "--et-debug=off")
    et_pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    [program] = cache_dir.glob("entries/*/*/program.pte")
    st = program.stat()
    program.write_bytes(b"\xff" * st.st_size)  # garbage the runtime would choke on
    os.utime(program, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and time kept

    et_pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    [record] = [
        json.loads(x)
        for x in (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
    ]
    assert record["artifact"]["cache_hit"] is False
    assert program.read_bytes()[4:8] == b"ET12"  # a program again
