"""Repro folders: everything needed to rerun one failed check, and nothing else.

A failed check leaves a folder that stands on its own::

    case.json              board, tolerances, failure, versions, the rerun command,
                           the cache entry the artifact came from (ETRecord, references)
    artifact/              what a rerun needs of it: program.pte and metadata.json,
                           hard links to the cache entry's files (copies across filesystems)
    inputs.npz             the inputs the board ran (logical layout)
    outputs.npz            what the board gave (when it gave anything)
    reference_<name>.npz   the reference outputs it was compared with
    board.toml             the board file, for boards that are not built in
    run/                   the board's own files: logs, ETDump, command line

``et-hil repro DIR`` runs the program on the board again and prints the verdict.

Ownership: repro folders live under ``<results folder>/repro/<run folder>/``,
and each run folder carries a marker naming the results file and run that made
it. The harness removes only run folders whose marker it wrote for the same
results file, of runs that have ended and whose records were just dropped; a
folder of a live run, without a marker, or made for another results file, is
never touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from et_hil.boards.base import BoardOptions
from et_hil.boards.spec import BoardSpec
from et_hil.datafiles import builtin_board_dir
from et_hil.programs.artifact import METADATA_NAME, PTE_NAME, Artifact
from et_hil.report.keep import keep_file, keep_tree
from et_hil.tolerance import Tolerances

if TYPE_CHECKING:
    from et_hil.verdict.check import Evidence
    from et_hil.verdict.compare import Comparison

MARKER = ".et-hil-run.json"
CASE = "case.json"
# What a rerun reads of an artifact: every board runs the .pte itself.
RERUN_FILES = (PTE_NAME, METADATA_NAME)


# -- run folders and their ownership ------------------------------------------------------


def run_folder(repro_root: Path, results_path: Path, run_id: str) -> Path:
    """Where this run's repro folders go (created, with its marker, by the first one)."""
    return repro_root / f"{results_path.stem}-{run_id}"


def mark_run_folder(folder: Path, results_path: Path, run_id: str) -> None:
    """Create a run folder with the marker that proves et-hil made it, and for whom."""
    marker = folder / MARKER
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(
        marker,
        {
            "tool": "et-hil",
            "results": str(results_path.resolve()),
            "run_id": run_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def prune_replaced_runs(repro_root: Path, results_path: Path, keep: Collection[str]) -> list[Path]:
    """Remove the run folders of earlier runs of ``results_path`` (whose records a
    new run has just dropped). Only folders with our marker for this very results
    file are removed, and never those of the runs in ``keep`` or of a run still
    live (:mod:`et_hil.report.sessions`: a failure message it printed names them);
    everything else under ``repro_root`` is left as it is."""
    from et_hil.report.sessions import live_runs

    removed: list[Path] = []
    if not repro_root.is_dir():
        return removed
    keep = {*keep, *live_runs(results_path)}
    wanted = str(results_path.resolve())
    for folder in sorted(repro_root.iterdir()):
        marker = folder / MARKER
        if folder.is_symlink() or not folder.is_dir() or not marker.is_file():
            continue
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # not provably ours
        if owner.get("tool") != "et-hil" or owner.get("results") != wanted:
            continue
        if owner.get("run_id") in keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def case_folder_name(nodeid: str, call: int = 1) -> str:
    """A file-system-safe, unique name for a test's (n-th check's) repro folder."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:8]  # long ids may share a prefix
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120] + "-" + digest
    return name if call == 1 else f"{name}-check{call}"


# -- writing one case ----------------------------------------------------------------------


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(dict(data), indent=1, sort_keys=True, default=str) + "\n")


def _save_arrays(path: Path, arrays: Sequence[npt.NDArray[Any]]) -> None:
    np.savez(path, **{f"out_{i}": np.asarray(a) for i, a in enumerate(arrays)})


def _load_arrays(path: Path) -> list[npt.NDArray[Any]]:
    with np.load(path, allow_pickle=False) as data:
        return [data[f"out_{i}"] for i in range(len(data.files))]


def keeper(
    folder: Path, *, test: str | None = None, owner: tuple[Path, str] | None = None
) -> Callable[[Evidence], Path]:
    """What keeps a failed check's evidence as a repro folder in ``folder`` (the
    ``keep`` hook of :func:`et_hil.verdict.check.check_model`).

    Args:
        folder: the repro folder to write.
        test: the test id the folder names (pytest's node id).
        owner: (results file, run id) the folder belongs to, see :func:`save_case`.
    """

    def keep(evidence: Evidence) -> Path:
        return save_case(
            folder,
            artifact=evidence.artifact,
            spec=evidence.spec,
            inputs=evidence.inputs,
            references=evidence.references,
            tolerances=evidence.tolerances,
            outputs=evidence.outputs,
            run_dir=evidence.run_dir,
            failure_class=evidence.failure_class,
            message=evidence.message,
            test=test,
            timeout_s=evidence.timeout_s,
            debug_buffer_size=evidence.debug_buffer_size,
            owner=owner,
            options=evidence.options,
            runner_elf=evidence.runner_elf,
        )

    return keep


def save_case(
    folder: Path,
    *,
    artifact: Artifact,
    spec: BoardSpec,
    inputs: Sequence[npt.NDArray[Any]],
    references: Mapping[str, Sequence[npt.NDArray[Any]]],
    tolerances: Tolerances,
    outputs: Sequence[npt.NDArray[Any]] | None,
    run_dir: Path | None,
    failure_class: str,
    message: str,
    test: str | None = None,
    timeout_s: float | None = None,
    debug_buffer_size: int = 0,
    owner: tuple[Path, str] | None = None,
    options: BoardOptions | None = None,
    runner_elf: Path | None = None,
) -> Path:
    """Write a repro folder for one failed check; returns it.

    Of the artifact, only what a rerun needs is kept (the program and its
    metadata), as hard links to the cache entry's files: they outlive a cleared
    or pruned cache and cost no space while the cache has them (copies where a
    link cannot be made). The run folder's copy of the program is linked to the
    same bytes. ``case.json`` names the cache entry, where the ETRecord and the
    fake-quant reference stay. ``owner`` (results file, run id) marks the parent
    run folder as the harness's (see :func:`mark_run_folder`). ``runner_elf``: the
    firmware that ran the program, which a rerun reuses while it is in the cache.
    """
    from et_hil.versions import tool_versions

    if owner is not None:
        mark_run_folder(folder.parent, *owner)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    kept = folder / "artifact"
    for name in RERUN_FILES:
        if (artifact.folder / name).is_file():
            keep_file(artifact.folder / name, kept / name)
    np.savez(folder / "inputs.npz", **{f"in_{k}": np.asarray(a) for k, a in enumerate(inputs)})
    if outputs is not None:
        _save_arrays(folder / "outputs.npz", outputs)
    for name, arrays in references.items():
        _save_arrays(folder / f"reference_{name}.npz", arrays)
    if run_dir is not None and run_dir.is_dir():
        keep_tree(run_dir, folder / "run", known=[kept / PTE_NAME])
    board_file = None
    if spec.path is not None and spec.path.is_file() and spec.path.parent != builtin_board_dir():
        board_file = "board.toml"
        shutil.copyfile(spec.path, folder / board_file)
    command = f"et-hil repro {folder}"
    _write_json(
        folder / CASE,
        {
            "test": test,
            "board": spec.name,
            "board_file": board_file,
            "board_file_origin": str(spec.path) if spec.path else None,
            # command-line settings of the board (runner ELF, FVP mode and backends)
            "board_options": dataclasses.asdict(options) if options else None,
            # the firmware that ran: a rerun takes it from the build cache, byte for byte
            "runner_elf": (
                {"path": str(runner_elf), "sha256": _file_sha256(runner_elf)}
                if runner_elf is not None and Path(runner_elf).is_file()
                else None
            ),
            "artifact_key": artifact.key,
            # the whole artifact (ETRecord, fake-quant reference) while the cache keeps it
            "artifact_folder": str(artifact.folder),
            "model": artifact.model_name,
            "target": artifact.target,
            "quantized": artifact.quantized,
            "references": list(references),
            "tolerances": tolerances.as_dict(),
            "timeout_s": timeout_s,
            "debug_buffer_size": debug_buffer_size,
            "failure_class": failure_class,
            "message": message,
            "versions": tool_versions(),
            "command": command,
        },
    )
    rerun = folder / "rerun.sh"
    rerun.write_text('#!/bin/sh\nexec et-hil repro "$(dirname "$0")" "$@"\n')
    rerun.chmod(0o755)
    return folder


# -- rerunning one case --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """A repro folder, read back."""

    folder: Path
    data: Mapping[str, Any]
    artifact: Artifact
    inputs: list[npt.NDArray[Any]]
    references: dict[str, list[npt.NDArray[Any]]]
    tolerances: Tolerances

    @property
    def board(self) -> str:
        """The board the case failed on."""
        return str(self.data["board"])


def load_case(folder: Path) -> Case:
    """Read a repro folder.

    Raises:
        ConfigError: the folder is not a repro folder, or is incomplete.
    """
    from et_hil.errors import ConfigError

    folder = Path(folder).expanduser().resolve()
    case_file = folder / CASE
    if not case_file.is_file():
        raise ConfigError(
            f"{folder} is not a repro folder (no {CASE}); failed tests' repro folders are "
            "under <results folder>/repro/, and each failure message names its folder"
        )
    try:
        data = json.loads(case_file.read_text())
        artifact = Artifact.from_folder(
            data["artifact_key"], folder / "artifact", cache_hit=True, obtain_s=0.0
        )
        with np.load(folder / "inputs.npz", allow_pickle=False) as npz:
            inputs = [npz[f"in_{k}"] for k in range(len(npz.files))]
        references = {
            name: _load_arrays(folder / f"reference_{name}.npz") for name in data["references"]
        }
        tolerances = Tolerances.from_dict(data["tolerances"])
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"repro folder {folder} is incomplete or damaged: {exc}") from exc
    return Case(folder, data, artifact, inputs, references, tolerances)


def board_files_of(case: Case) -> list[Path]:
    """The board file a case needs beyond the built-in ones."""
    name = case.data.get("board_file")
    return [case.folder / name] if name else []


def _dataclass_from(cls: type[Any], saved: Mapping[str, Any]) -> Any:
    """A dataclass of options from its saved JSON form (paths and tuples restored)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = saved.get(field.name)
        if value is None:
            continue
        if isinstance(value, str) and "Path" in str(field.type):
            value = Path(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return cls(**values)


def _options(saved: Mapping[str, Any] | None) -> BoardOptions | None:
    """The board options a case ran with, from ``case.json``."""
    if not saved:
        return None
    from et_hil.boards import registry

    options: BoardOptions = _dataclass_from(BoardOptions, {**saved, "kind_options": None})
    kind_options = {}
    for kind_name, value in (saved.get("kind_options") or {}).items():
        kind = registry.kinds().get(kind_name)
        if kind is not None and kind.options_type is not None and isinstance(value, Mapping):
            kind_options[kind_name] = _dataclass_from(kind.options_type, value)
    return dataclasses.replace(options, kind_options=kind_options)


@dataclasses.dataclass(frozen=True)
class RerunSetup:
    """Which board a rerun uses and with which options, and what to tell the user."""

    spec: BoardSpec
    options: BoardOptions
    notes: tuple[str, ...]


def _own_options(cache_dir: Path | None) -> BoardOptions:
    """The options this machine's own settings give (as ``et-hil boards`` makes them)."""
    from et_hil.boards.command_options import environment_options
    from et_hil.programs.cache import default_cache_dir

    return environment_options(cache_dir or default_cache_dir())


def _cached_runner(case: Case) -> tuple[Path | None, str]:
    """The runner ELF the case ran, when this machine still has it byte for byte.

    The folder names it by path and SHA-256; it is used only from outside the
    folder (a folder from elsewhere cannot bring its own firmware along: a runner
    reads and writes host files through semihosting), and only when its bytes are
    the ones that ran (the build cache's runners, or a runner of your own).
    """
    saved = case.data.get("runner_elf") or {}
    path = Path(saved["path"]) if saved.get("path") else None
    if path is None:
        return None, ""
    if path.resolve().is_relative_to(case.folder):
        return None, f"the runner ELF it names ({path}) is inside the folder: not used"
    if not path.is_file():
        return None, f"the runner ELF it ran ({path}) is gone"
    if _file_sha256(path) != saved.get("sha256"):
        return None, f"the runner ELF it ran ({path}) has changed since"
    return path, f"the runner ELF it ran: {path} (the same bytes)"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rerun_setup(
    case: Case,
    board_name: str | None = None,
    extra_board_files: Sequence[str | Path] = (),
    *,
    trust_folder: bool = False,
    cache_dir: Path | None = None,
    runner_elf: str | Path | None = None,
) -> RerunSetup:
    """The board and options a rerun of ``case`` uses.

    A repro folder is data from wherever it came from: its own board file (whose
    flash, reset and build commands run on this machine) and its saved options
    (FVP folder, image, environment) are used only with ``trust_folder``.
    Otherwise the board of that name is this machine's own (built in, or from
    ``extra_board_files``), with this machine's settings. The runner is
    ``runner_elf`` if given, else the one the case ran while this machine still
    has it, byte for byte (:func:`_cached_runner`).

    Raises:
        ConfigError: the board is defined only by the folder's board file, and it
            is not trusted (the message says what to do).
    """
    from et_hil.boards.spec import load_boards, resolve_board_names
    from et_hil.errors import ConfigError

    notes: list[str] = []
    wanted = board_name or case.board
    folder_files = board_files_of(case)
    if trust_folder:
        boards = load_boards([*folder_files, *extra_board_files])
        options = _options(case.data.get("board_options")) or _own_options(cache_dir)
        if folder_files and board_name is None:
            notes.append(f"board '{wanted}' from the folder's {folder_files[0].name} (trusted)")
    else:
        boards = load_boards(list(extra_board_files))
        if folder_files and board_name is None and wanted not in boards:
            raise ConfigError(
                f"repro folder {case.folder} ran on board '{wanted}', defined by its own "
                f"{folder_files[0].name}; a board file from elsewhere can run commands on this "
                f"machine (flash, reset, build), so it is not used unless you ask: give your own "
                f"board file (--board-file YOURS.toml, with a board '{wanted}'), another board "
                f"(--board NAME), or --trust-board-file to use the folder's"
            )
        options = _own_options(cache_dir)
        if folder_files and board_name is None:
            path = boards[wanted].path
            origin = "built in" if path is None or path.parent == builtin_board_dir() else path
            notes.append(
                f"board '{wanted}' is yours ({origin}), not the folder's {folder_files[0].name} "
                "(--trust-board-file uses that one and its commands)"
            )
    name = resolve_board_names([wanted], boards)[0]
    if runner_elf is not None:
        options = dataclasses.replace(options, runner_elf=Path(runner_elf).expanduser().resolve())
    elif board_name is None:
        runner, note = _cached_runner(case)
        if note:
            notes.append(note)
        if runner is not None:
            options = dataclasses.replace(options, runner_elf=runner)
    return RerunSetup(boards[name], options, tuple(notes))


def rerun(
    case: Case,
    board_name: str | None = None,
    extra_board_files: Sequence[str | Path] = (),
    work_dir: Path | None = None,
    *,
    setup: RerunSetup | None = None,
) -> tuple[str, tuple[Comparison, ...]]:
    """Run a case's program again on its board (or ``board_name``) and judge it with
    the case's own references and limits (the board as :func:`rerun_setup` chooses
    it, unless ``setup`` is given).

    Returns:
        The verdict (``pass``, or the failure class: ``numeric_mismatch``,
        ``degenerate``, ``quantization_quality``) and the comparisons.

    Raises:
        HarnessError: the board cannot run here, or the run failed again (its
            failure class is the verdict).
    """
    from et_hil.boards import make_board
    from et_hil.errors import BoardUnavailable
    from et_hil.verdict.compare import compare_with_references, failure_class_of
    from et_hil.verdict.degenerate import degenerate_outputs

    setup = setup or rerun_setup(case, board_name, extra_board_files)
    work = work_dir or case.folder / "rerun"
    shutil.rmtree(work, ignore_errors=True)
    board = make_board(setup.spec, work / "logs", setup.options)
    availability = board.availability()
    if not availability.ok:
        raise BoardUnavailable(setup.spec.name, availability.reason, availability.hint)
    board.open()
    try:
        run = board.run(
            case.artifact,
            case.inputs,
            run_dir=work / "run",
            timeout_s=case.data.get("timeout_s"),
            debug_buffer_size=int(case.data.get("debug_buffer_size") or 0),
            expected=next(iter(case.references.values()), None),
        )
    finally:
        board.close()
    comparisons = compare_with_references(
        run.outputs, case.references, case.artifact, case.tolerances
    )
    degenerate = degenerate_outputs(
        list(run.outputs),
        case.references["eager_float"],
        case.references.get("fake_quant"),
        case.artifact.output_scales if case.artifact.quantized else None,
    )
    failure = failure_class_of(comparisons, degenerate)
    return (str(failure) if failure else "pass"), comparisons


def main(
    folder: str,
    board: str | None,
    board_files: Sequence[str],
    *,
    trust_board_file: bool = False,
    cache_dir: Path | None = None,
    runner_elf: str | None = None,
) -> int:
    """``et-hil repro DIR``: rerun, print the verdict; exit 0 on pass, 1 on failure."""
    from et_hil.errors import HarnessError
    from et_hil.verdict.compare import format_table

    case = load_case(Path(folder))
    setup = rerun_setup(
        case,
        board,
        board_files,
        trust_folder=trust_board_file,
        cache_dir=cache_dir,
        runner_elf=runner_elf,
    )
    print(
        f"repro {case.folder}\n  test {case.data.get('test')}\n  model '{case.data['model']}' "
        f"on board '{setup.spec.name}' (failed before as {case.data['failure_class']})"
    )
    for note in setup.notes:
        print(f"  {note}")
    try:
        verdict, comparisons = rerun(case, setup=setup)
    except HarnessError as exc:
        print(f"verdict: {exc.failure_class}\n{exc}")
        return 1
    print(format_table(comparisons))
    print(f"verdict: {verdict}")
    if verdict == "pass" and _failed_by_layers(str(case.data.get("message") or "")):
        # The per-layer pass needs the model, which a repro folder does not hold.
        print(
            "  this case failed by its per-layer table (outputs within rounding of "
            "fake-quant, a layer diverging on its own: divergence.csv here); a rerun "
            f"judges outputs only. Rerun the test to confirm: pytest '{case.data.get('test')}'"
        )
        return 1
    return 0 if verdict == "pass" else 1


def _failed_by_layers(message: str) -> bool:
    """True when a case's saved failure table (the failed rows of
    :func:`~et_hil.verdict.compare.format_table`, reference first) holds a row of
    the per-layer confirmation (:mod:`et_hil.verdict.confirm`)."""
    from et_hil.verdict.confirm import REFERENCE

    return any(line.split()[:1] == [REFERENCE] for line in message.splitlines())
