"""Tests of et_hil.programs.cache: hits, misses, corruption, --et-no-cache, concurrent builders."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from et_hil.programs import cache as cache_module
from et_hil.programs.cache import MANIFEST, ArtifactCache, verify_entry, write_manifest

KEY = "ab" + "0" * 62


class CountingBuilder:
    """Writes two files (one in a subfolder) and counts its calls."""

    def __init__(self, payload: bytes = b"program bytes") -> None:
        self.calls = 0
        self.payload = payload

    def __call__(self, folder: Path) -> None:
        self.calls += 1
        assert folder.is_dir()
        assert list(folder.iterdir()) == []  # always given an empty folder
        (folder / "model.pte").write_bytes(self.payload)
        (folder / "meta").mkdir()
        (folder / "meta" / "info.json").write_text(json.dumps({"call": self.calls}))


# ---------------------------------------------------------------- manifest


def test_write_manifest_and_verify(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("hello")
    write_manifest(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert set(manifest["files"]) == {"a.bin", "sub/b.txt"}
    # sha256("abc") is a well-known test vector
    assert manifest["files"]["a.bin"] == {
        "size": 3,
        "mtime_ns": (tmp_path / "a.bin").stat().st_mtime_ns,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }
    # the manifest is stamped after the files' clock tick: a later write changes their time
    newest = max(info["mtime_ns"] for info in manifest["files"].values())
    assert (tmp_path / MANIFEST).stat().st_mtime_ns > newest
    assert verify_entry(tmp_path) is None
    assert verify_entry(tmp_path, full=True) is None


def test_a_file_in_the_manifests_clock_tick_gets_no_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file stamped in the future stays "in the manifest's tick" however long
    # write_manifest waits: its time cannot tell a later write, so none is
    # recorded and every lookup hashes it.
    monkeypatch.setattr(cache_module, "SETTLE_MAX_S", 0.0)
    (tmp_path / "a.bin").write_bytes(b"abc")
    future = time.time_ns() + 3600 * 10**9
    os.utime(tmp_path / "a.bin", ns=(future, future))
    write_manifest(tmp_path)
    assert json.loads((tmp_path / MANIFEST).read_text())["files"]["a.bin"]["mtime_ns"] is None
    (tmp_path / "a.bin").write_bytes(b"abd")
    os.utime(tmp_path / "a.bin", ns=(future, future))
    assert verify_entry(tmp_path) == "a.bin: content differs from the manifest"


# ---------------------------------------------------------------- get_or_build


def test_miss_builds_once_then_hits(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    builder = CountingBuilder()

    folder, hit = cache.get_or_build(KEY, builder)
    assert hit is False
    assert builder.calls == 1
    assert folder == cache.entry_dir(KEY)
    assert folder == tmp_path / "cache" / "entries" / "ab" / KEY
    assert (folder / "model.pte").read_bytes() == b"program bytes"
    assert verify_entry(folder) is None

    again, hit = cache.get_or_build(KEY, builder)
    assert hit is True
    assert again == folder
    assert builder.calls == 1
    assert cache.lookup(KEY) == folder
    # nothing left behind in the staging area
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_different_keys_are_different_entries(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    first, _ = cache.get_or_build("11" + "a" * 62, CountingBuilder(b"one"))
    second, _ = cache.get_or_build("22" + "b" * 62, CountingBuilder(b"two"))
    assert first != second
    assert (first / "model.pte").read_bytes() == b"one"
    assert (second / "model.pte").read_bytes() == b"two"


def test_lookup_missing_key_is_none(tmp_path: Path) -> None:
    assert ArtifactCache(tmp_path).lookup(KEY) is None


def _flip_byte(folder: Path) -> None:
    # same size, different content
    path = folder / "model.pte"
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(folder: Path) -> None:
    (folder / "model.pte").write_bytes(b"pro")


def _keeping_time(change: Callable[[Path], None]) -> Callable[[Path], None]:
    # A write that restores the file's old time (cp -p, rsync -t, a crash that
    # loses data but not the inode's times): only the size can tell.
    def corrupt(folder: Path) -> None:
        st = (folder / "model.pte").stat()
        change(folder)
        os.utime(folder / "model.pte", ns=(st.st_atime_ns, st.st_mtime_ns))

    return corrupt


def _zero_fill(folder: Path) -> None:
    # same size, all zeros: what a crash before write-back can leave on some filesystems
    path = folder / "model.pte"
    path.write_bytes(bytes(path.stat().st_size))


def _delete_file(folder: Path) -> None:
    (folder / "meta" / "info.json").unlink()


def _delete_manifest(folder: Path) -> None:
    (folder / MANIFEST).unlink()


def _garble_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text("{not json")


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        pytest.param(
            _flip_byte, "model.pte: content differs from the manifest", id="bytes-changed"
        ),
        pytest.param(_truncate, "model.pte: size differs from the manifest", id="truncated"),
        pytest.param(
            _keeping_time(_truncate),
            "model.pte: size differs from the manifest",
            id="truncated-time-kept",
        ),
        pytest.param(_zero_fill, "model.pte: content differs from the manifest", id="zero-filled"),
        pytest.param(_delete_file, "meta/info.json: missing", id="file-deleted"),
        pytest.param(_delete_manifest, "manifest missing or unreadable", id="manifest-deleted"),
        pytest.param(_garble_manifest, "manifest missing or unreadable", id="manifest-garbled"),
    ],
)
def test_corrupt_entry_is_detected_and_rebuilt(
    tmp_path: Path, corrupt: Callable[[Path], None], problem: str
) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    builder = CountingBuilder()
    folder, _ = cache.get_or_build(KEY, builder)

    corrupt(folder)
    assert verify_entry(folder) == problem
    assert cache.lookup(KEY) is None

    rebuilt, hit = cache.get_or_build(KEY, builder)
    assert hit is False
    assert builder.calls == 2
    assert rebuilt == folder
    assert verify_entry(rebuilt) is None
    assert (rebuilt / "model.pte").read_bytes() == b"program bytes"
    assert json.loads((rebuilt / "meta" / "info.json").read_text()) == {"call": 2}
    # the corrupt entry was moved aside and deleted
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    # and the new entry is now a hit
    assert cache.get_or_build(KEY, builder) == (rebuilt, True)
    assert builder.calls == 2


def test_same_size_rewrite_with_old_time_needs_full_verify(tmp_path: Path) -> None:
    # The one change a quick hit does not see (same size, time put back): the
    # full verification finds it, and a cache made with full_verify rebuilds.
    builder = CountingBuilder()
    folder, _ = ArtifactCache(tmp_path).get_or_build(KEY, builder)
    _keeping_time(_flip_byte)(folder)

    assert verify_entry(folder) is None
    assert verify_entry(folder, full=True) == "model.pte: content differs from the manifest"
    strict = ArtifactCache(tmp_path, full_verify=True)
    assert strict.lookup(KEY) is None
    rebuilt, hit = strict.get_or_build(KEY, builder)
    assert (rebuilt, hit, builder.calls) == (folder, False, 2)
    assert (rebuilt / "model.pte").read_bytes() == b"program bytes"


def _program_builder(folder: Path) -> None:
    (folder / "program.pte").write_bytes(b"ET12" + bytes(range(256)) * 40)
    (folder / "metadata.json").write_text('{"model": "m"}')
    (folder / "etrecord.bin").write_bytes(b"etrecord" * 100)


def test_a_program_rewritten_in_place_with_size_and_time_kept_is_rebuilt(
    tmp_path: Path,
) -> None:
    # What a user hit: the program changed, its size and mtime kept, served and
    # crashing on every rerun. The program is hashed on every hit.
    cache = ArtifactCache(tmp_path)
    folder, _ = cache.get_or_build(KEY, _program_builder)
    program = folder / "program.pte"
    st = program.stat()
    data = bytearray(program.read_bytes())
    data[100] ^= 0x55
    program.write_bytes(bytes(data))
    os.utime(program, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (program.stat().st_size, program.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)

    assert cache.lookup(KEY) is None
    rebuilt, hit = cache.get_or_build(KEY, _program_builder)
    assert (rebuilt, hit) == (folder, False)
    assert verify_entry(rebuilt, full=True) is None


class HashCounter:
    """Counts the files hashed by et_hil.programs.cache."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = cache_module._sha256

        def counting(path: Path) -> str:
            self.names.append(path.name)
            return real(path)

        monkeypatch.setattr(cache_module, "_sha256", counting)


def test_a_hit_hashes_the_program_and_its_metadata_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ArtifactCache(tmp_path)
    folder, _ = cache.get_or_build(KEY, _program_builder)
    hashed = HashCounter(monkeypatch)
    for _ in range(3):
        assert cache.get_or_build(KEY, _program_builder) == (folder, True)
    assert hashed.names == ["metadata.json", "program.pte"] * 3


def test_a_hit_hashes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ... of the files it does not run (here every file: none is named program.pte)
    cache = ArtifactCache(tmp_path)
    folder, _ = cache.get_or_build(KEY, CountingBuilder(b"x" * 100_000))
    hashed = HashCounter(monkeypatch)
    for _ in range(3):
        assert cache.get_or_build(KEY, CountingBuilder()) == (folder, True)
    assert hashed.names == []
    assert verify_entry(folder, full=True) is None
    assert sorted(hashed.names) == ["info.json", "model.pte"]


def test_touched_files_are_hashed_once_then_restamped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copied or restored cache (new times, same bytes) is served after one
    # hash of the touched files, and its manifest takes the new times.
    cache = ArtifactCache(tmp_path)
    folder, _ = cache.get_or_build(KEY, CountingBuilder())
    later = time.time_ns() - 10**9  # in the past: not in the manifest's clock tick
    os.utime(folder / "model.pte", ns=(later, later))
    hashed = HashCounter(monkeypatch)

    assert cache.lookup(KEY) == folder
    assert hashed.names == ["model.pte"]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"]["model.pte"]["mtime_ns"] == later
    assert cache.lookup(KEY) == folder
    assert hashed.names == ["model.pte"]  # not hashed again
    assert list((tmp_path / "tmp").iterdir()) == []
    assert verify_entry(folder, full=True) is None


def test_a_manifest_without_times_is_verified_then_restamped(tmp_path: Path) -> None:
    # Entries written before times were recorded: hashed once, then quick.
    cache = ArtifactCache(tmp_path)
    folder, _ = cache.get_or_build(KEY, CountingBuilder())
    manifest = json.loads((folder / MANIFEST).read_text())
    for info in manifest["files"].values():
        del info["mtime_ns"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert cache.lookup(KEY) == folder
    restamped = json.loads((folder / MANIFEST).read_text())["files"]
    assert all(isinstance(info["mtime_ns"], int) for info in restamped.values())
    # and a corrupt old-style entry is still refused
    (folder / MANIFEST).write_text(json.dumps(manifest))
    _flip_byte(folder)
    assert cache.lookup(KEY) is None


def test_disabled_cache_always_builds_and_close_removes_scratch(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = ArtifactCache(root, enabled=False)
    builder = CountingBuilder()

    first, hit1 = cache.get_or_build(KEY, builder)
    second, hit2 = cache.get_or_build(KEY, builder)
    assert (hit1, hit2) == (False, False)
    assert builder.calls == 2
    assert first != second
    assert first.parent == second.parent
    for folder in (first, second):
        assert (folder / "model.pte").read_bytes() == b"program bytes"
        assert verify_entry(folder) is None
    assert cache.lookup(KEY) is None
    # the cache root is never touched
    assert not root.exists()

    scratch = first.parent
    assert scratch.is_dir()
    cache.close()
    assert not scratch.exists()
    cache.close()  # a second close is harmless


def test_failing_builder_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = ArtifactCache(root)

    def broken(folder: Path) -> None:
        (folder / "half.pte").write_bytes(b"half")
        raise RuntimeError("lowering failed")

    with pytest.raises(RuntimeError, match="lowering failed"):
        cache.get_or_build(KEY, broken)
    assert not cache.entry_dir(KEY).exists()
    assert list((root / "tmp").iterdir()) == []
    assert cache.lookup(KEY) is None

    # the key can still be built afterwards
    builder = CountingBuilder()
    folder, hit = cache.get_or_build(KEY, builder)
    assert hit is False
    assert verify_entry(folder) is None


# ---------------------------------------------------------------- concurrency


def _slow_build_worker(root: str, key: str, counter: str, barrier: Any, results: Any) -> None:
    def build(folder: Path) -> None:
        time.sleep(0.3)
        with open(counter, "a", encoding="utf-8") as f:
            f.write("built\n")
        (folder / "model.pte").write_bytes(b"shared program")

    barrier.wait(timeout=30)
    folder, hit = ArtifactCache(Path(root)).get_or_build(key, build)
    results.put((str(folder), hit))


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    root = tmp_path / "cache"
    counter = tmp_path / "builds.txt"
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_slow_build_worker, args=(str(root), KEY, str(counter), barrier, results)
        )
        for _ in range(4)
    ]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=30)
        assert p.exitcode == 0

    assert counter.read_text().splitlines() == ["built"]
    folders = {folder for folder, _ in outcomes}
    assert folders == {str(ArtifactCache(root).entry_dir(KEY))}
    assert sorted(hit for _, hit in outcomes) == [False, True, True, True]
    assert verify_entry(Path(folders.pop())) is None
    assert list((root / "tmp").iterdir()) == []
